"""Training checkpoints: everything needed to continue a trial bit for bit where it stopped.

A checkpoint holds the model, optimiser and LR-scheduler state, the global torch RNG state (the
reparameterisation noise), the batch-order generator and the epoch's permutation, the step and
the training curve so far. It is written atomically (tmp + rename), so a kill during the write
leaves the previous checkpoint intact, and read with `torch.load(weights_only=True)`: loading a
checkpoint never runs code from the file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

FORMAT = 2  # 2: LR scheduler state, and a 4th window sum (gradient norm)


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save({"format": FORMAT, **state}, tmp)
    tmp.replace(path)


def load_checkpoint(path: str | Path, trial_hash: str) -> dict[str, Any] | None:
    """The checkpoint at `path` if it exists and belongs to `trial_hash`, else None.

    A checkpoint of another config (the sweep file was edited) or of another format is ignored,
    so the trial starts from step 0 rather than continuing someone else's model.
    """
    path = Path(path)
    if not path.is_file():
        return None
    state = torch.load(path, map_location="cpu", weights_only=True)
    if state.get("format") != FORMAT or state.get("trial_hash") != trial_hash:
        return None
    return state
