"""The training loop: the split is one tensor on the device and a batch is an index slice.

No per-sample Dataset/DataLoader: at these model sizes Python-level collation would cost more
than the model (see `python -m benchmark.perf`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from benchmark.config import TrainConfig
from variants.base import Variant


class Diverged(RuntimeError):
    """The loss became NaN or infinite; the trial stops at once."""

    def __init__(self, step: int, value: float):
        self.step, self.value = step, value
        super().__init__(f"loss is {value} at step {step}")


@dataclass
class TrainResult:
    steps: int
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)
    resumed_from: int = 0  # the step a checkpoint resumed from (0: trained from scratch)

    @property
    def images_per_second(self) -> float:
        return self.history[-1]["images_per_second"] if self.history else 0.0


def kl_weight(step: int, warmup_steps: int) -> float:
    """Linear KL warm-up: 1/w, 2/w, ... up to 1 over the first `warmup_steps` steps."""
    return 1.0 if warmup_steps <= 0 else min(1.0, (step + 1) / warmup_steps)


def train(
    model: Variant,
    x: torch.Tensor,
    cfg: TrainConfig,
    *,
    seed: int,
    y: torch.Tensor | None = None,
    on_log: Callable[[int, dict[str, float]], None] | None = None,
    resume: dict[str, Any] | None = None,
    save: Callable[[dict[str, Any]], None] | None = None,
    checkpoint_every: int = 0,
    batch_transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> TrainResult:
    """Train `model` in place with Adam on the device-resident split `x` (and labels `y`).

    Every `checkpoint_every` steps (0: never) the full training state goes to `save`; passing
    that state back as `resume` continues from it and gives bitwise the same model as an
    uninterrupted run on the same device. `batch_transform` (None: none) maps each image
    batch before the loss, e.g. dynamic binarisation (`benchmark.data.binarize`).
    """
    device = x.device
    n, batch = x.shape[0], cfg.batch_size
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    gen = torch.Generator(device=device).manual_seed(seed)
    order, pos = torch.randperm(n, generator=gen, device=device), 0
    # .item() forces a device sync; on CUDA check only at log steps to keep the GPU busy.
    check_every = 1 if device.type == "cpu" else cfg.log_every
    sums = torch.zeros(3, device=device)
    history: list[dict[str, float]] = []
    start = 0
    if resume is not None:
        model.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        gen.set_state(resume["batch_generator"])
        order, pos = resume["order"].to(device), int(resume["pos"])
        sums = resume["sums"].to(device)
        history = list(resume["history"])
        start = int(resume["step"])
        _set_rng_state(resume["rng"], device)
    warmup = cfg.kl_warmup_steps
    if warmup is None:
        warmup = model.default_kl_warmup_steps
    model.train()
    t0 = t_log = time.perf_counter()
    for step in range(start, cfg.steps):
        if pos + batch > n:  # a new epoch: reshuffle, drop the ragged tail
            order, pos = torch.randperm(n, generator=gen, device=device), 0
        idx = order[pos : pos + batch]
        pos += batch
        xb = x.index_select(0, idx)
        if batch_transform is not None:
            xb = batch_transform(xb)
        out = model.loss(
            xb,
            None if y is None else y.index_select(0, idx),
            kl_weight=kl_weight(step, warmup),
            free_bits=cfg.free_bits,
        )
        optimizer.zero_grad(set_to_none=True)
        out.total.backward()
        optimizer.step()
        sums += torch.stack([out.total.detach(), out.recon.detach(), out.kl.detach()])
        last = step + 1 == cfg.steps
        if (step + 1) % check_every == 0 or last:
            value = out.total.item()
            if not math.isfinite(value):
                raise Diverged(step + 1, value)
        if (step + 1) % cfg.log_every == 0 or last:
            now = time.perf_counter()
            done_in_window = (step % cfg.log_every) + 1
            loss, recon, kl = (sums / done_in_window).tolist()
            if not all(map(math.isfinite, (loss, recon, kl))):
                raise Diverged(step + 1, loss)
            record = {
                "step": step + 1,
                "train_loss": loss,
                "train_recon": recon,
                "train_kl": kl,
                "kl_weight": kl_weight(step, warmup),
                "images_per_second": done_in_window * batch / max(now - t_log, 1e-9),
            }
            history.append(record)
            if on_log is not None:
                on_log(step + 1, record)
            sums.zero_()
            t_log = now
        due = checkpoint_every and (step + 1) % checkpoint_every == 0
        if save is not None and due and not last:
            save({
                "step": step + 1,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "batch_generator": gen.get_state(),
                "order": order.cpu(),
                "pos": pos,
                "sums": sums.cpu(),
                "history": history,
                "rng": _rng_state(device),
            })  # fmt: skip
    return TrainResult(cfg.steps, time.perf_counter() - t0, history, start)


def _rng_state(device: torch.device) -> dict[str, torch.Tensor]:
    # The global generator draws the reparameterisation noise (torch.randn_like in the variants).
    state = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict[str, torch.Tensor], device: torch.device) -> None:
    torch.set_rng_state(state["cpu"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)
