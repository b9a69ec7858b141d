"""Training checkpoints: everything needed to continue a trial bit for bit where it stopped.

A checkpoint holds the model, optimiser and LR-scheduler state, the global torch RNG state (the
reparameterisation noise), the batch-order generator and the epoch's permutation, the step and
the training curve so far. It is written atomically (tmp + rename), so a kill during the write
leaves the previous checkpoint intact, and read with `torch.load(weights_only=True)`: loading a
checkpoint never runs code from the file. An unreadable checkpoint (truncated, corrupt) is set
aside and the trial starts from step 0: it costs the steps it held, never the trial.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from benchmark.atomic import atomic_path
from benchmark.readback import set_aside

FORMAT = 2  # 2: LR scheduler state, and a 4th window sum (gradient norm)


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Write `state` (tensors and plain values) with the current FORMAT to `path` atomically.

    A kill during the write leaves the previous checkpoint intact (`benchmark.atomic`); the
    parent folder is created. Raises what `torch.save` raises for an unpicklable value.
    """
    with atomic_path(path) as tmp:
        torch.save({"format": FORMAT, **state}, tmp)


def load_checkpoint(
    path: str | Path, trial_hash: str, problems: list[str] | None = None
) -> dict[str, Any] | None:
    """The checkpoint at `path` if it exists and belongs to `trial_hash`, else None.

    A checkpoint of another config (the sweep file was edited) or of another format is ignored,
    so the trial starts from step 0 rather than continuing someone else's model. An unreadable
    one is renamed `state.pt.corrupt-<time>` (`benchmark.readback.set_aside`), a line saying so
    is appended to `problems`, and None is returned. Raises `pickle.UnpicklingError` for a
    file that holds pickled objects (weights_only refuses to run code from it).
    """
    path = Path(path)
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict):
            raise ValueError(f"holds a {type(state).__name__}, not a dict")
    except Exception as e:  # noqa: BLE001 - torch raises RuntimeError, EOFError, ... on bad bytes
        if "Weights only load failed" in str(e):
            raise  # not damage: a file with pickled code in it, which must never be trusted
        first = (str(e).splitlines() or [""])[0]
        aside = set_aside(path, f"{type(e).__name__}: {first}")
        if problems is not None:
            problems.append(
                f"checkpoint {path.name} was unreadable ({type(e).__name__}: {first}); set aside "
                f"as {aside.name}, trained from step 0"
            )
        return None
    if state.get("format") != FORMAT or state.get("trial_hash") != trial_hash:
        return None
    return state
