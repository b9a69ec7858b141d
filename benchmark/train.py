"""The training loop: the split is one tensor on the device and a batch is an index slice.

No per-sample Dataset/DataLoader: at these model sizes Python-level collation would cost more
than the model (see `python -m benchmark.perf`). The optimiser is Adam (Kingma & Ba 2014,
arXiv:1412.6980) in its fused kernel where the device has one (else the multi-tensor one);
options: bf16 autocast, gradient clipping, a cosine (with linear warm-up) or reduce-on-plateau
learning-rate schedule (Loshchilov & Hutter 2016, arXiv:1608.03983), spectral normalisation of
the decoder (Miyato et al. 2018, arXiv:1802.05957), channels_last memory format for the conv nets
and torch.compile.
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
    """What the training loop did: steps, wall time (s), the logged curve, the resumed-from step."""

    steps: int
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)
    resumed_from: int = 0  # the step a checkpoint resumed from (0: trained from scratch)

    @property
    def images_per_second(self) -> float:
        """Training throughput at the last logged step (images/s); 0 with no log."""
        return self.history[-1]["images_per_second"] if self.history else 0.0


def kl_weight(step: int, warmup_steps: int) -> float:
    """Linear KL warm-up: 1/w, 2/w, ... up to 1 over the first `warmup_steps` steps."""
    return 1.0 if warmup_steps <= 0 else min(1.0, (step + 1) / warmup_steps)


def make_optimizer(params: Any, lr: float) -> torch.optim.Adam:
    """Adam with the fused kernel where the device has one, else the multi-tensor (foreach) one.

    Both compute Adam's update; they differ from the one-tensor-at-a-time loop only in the order
    of floating-point operations (last-bit differences), and are deterministic on the CPU.
    """
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, TypeError):  # a device or dtype without the fused kernel
        return torch.optim.Adam(params, lr=lr, foreach=True)


def cosine_factor(step: int, warmup: int, total: int) -> float:
    """LR multiplier of step `step` (0-based): linear warm-up (step+1)/warmup over `warmup`
    steps, then half a cosine from 1 down to 0 at step `total` (arXiv:1608.03983, no restarts)."""
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1.0 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


def make_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig) -> Any:
    """The LR scheduler of `cfg.lr_schedule`: None (constant), a per-step LambdaLR (cosine) or a
    ReduceLROnPlateau stepped with the mean train loss of each `log_every` window (plateau)."""
    if cfg.lr_schedule == "cosine":
        warmup, total = cfg.lr_warmup_steps, cfg.steps
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: cosine_factor(step, warmup, total)
        )
    if cfg.lr_schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, factor=cfg.lr_plateau_factor, patience=cfg.lr_plateau_patience
        )
    return None


def spectral_norm_decoder(model: torch.nn.Module) -> int:
    """Spectral normalisation (arXiv:1802.05957) of every Linear/Conv layer of `model.decoder`,
    in place (torch.nn.utils.parametrizations.spectral_norm, one power iteration per step).

    Layers already normalised are left alone. Returns the number of layers normalised now.
    """
    from torch.nn.utils import parametrize
    from torch.nn.utils.parametrizations import spectral_norm

    layers = (torch.nn.Linear, torch.nn.modules.conv._ConvNd)
    count = 0
    for module in model.decoder.modules():
        if isinstance(module, layers) and not parametrize.is_parametrized(module, "weight"):
            spectral_norm(module)
            count += 1
    return count


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
    """Train `model` in place with Adam on the device-resident split `x` (B, C, H, W) in [0, 1]
    (and labels `y`, (B,)), as `cfg` says (precision, clipping, LR schedule, spectral norm).

    Every `checkpoint_every` steps (0: never) the full training state (model, optimiser, LR
    scheduler, RNGs, batch order) goes to `save`; passing that state back as `resume` continues
    from it and gives bitwise the same model as an uninterrupted run on the same device.
    Raises `Diverged` when the loss stops being finite. On CUDA the host syncs with the device
    only at log steps. `batch_transform` (None: none) maps each image batch
    before the loss, e.g. dynamic binarisation (`benchmark.data.binarize`).
    """
    device = x.device
    n, batch = x.shape[0], cfg.batch_size
    if cfg.spectral_norm_decoder:
        spectral_norm_decoder(model)
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)  # 4-D weights only; Linear ones unchanged
    channels_last = cfg.channels_last and x.dim() == 4
    optimizer = make_optimizer(model.parameters(), cfg.lr)
    scheduler = make_scheduler(optimizer, cfg)
    loss_fn = torch.compile(model.loss) if cfg.compile else model.loss
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16")
    params = [p for p in model.parameters() if p.requires_grad]
    gen = torch.Generator(device=device).manual_seed(seed)
    order, pos = torch.randperm(n, generator=gen, device=device), 0
    # .item() forces a device sync; on CUDA check only at log steps to keep the GPU busy.
    check_every = 1 if device.type == "cpu" else cfg.log_every
    # Window sums of loss, recon, kl and (with clipping) the pre-clip gradient norm.
    sums, no_norm = torch.zeros(4, device=device), torch.zeros((), device=device)
    history: list[dict[str, float]] = []
    start = 0
    if resume is not None:
        model.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(resume["scheduler"])
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
        if channels_last:  # the batch too: oneDNN then keeps every activation channels_last
            xb = xb.contiguous(memory_format=torch.channels_last)
        lr = optimizer.param_groups[0]["lr"]
        with autocast:
            out = loss_fn(
                xb,
                None if y is None else y.index_select(0, idx),
                kl_weight=kl_weight(step, warmup),
                free_bits=cfg.free_bits,
            )
        optimizer.zero_grad(set_to_none=True)
        out.total.backward()
        parts = [out.total.detach(), out.recon.detach(), out.kl.detach()]
        if cfg.grad_clip is not None:
            parts.append(torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip, foreach=True))
        else:
            parts.append(no_norm)
        optimizer.step()
        if cfg.lr_schedule == "cosine":
            scheduler.step()
        sums += torch.stack([p.float() for p in parts])
        last = step + 1 == cfg.steps
        if (step + 1) % check_every == 0 or last:
            value = out.total.item()
            if not math.isfinite(value):
                raise Diverged(step + 1, value)
        if (step + 1) % cfg.log_every == 0 or last:
            now = time.perf_counter()
            done_in_window = (step % cfg.log_every) + 1
            loss, recon, kl, grad_norm = (sums / done_in_window).tolist()
            if not all(map(math.isfinite, (loss, recon, kl))):
                raise Diverged(step + 1, loss)
            record = {
                "step": step + 1,
                "train_loss": loss,
                "train_recon": recon,
                "train_kl": kl,
                "kl_weight": kl_weight(step, warmup),
                "lr": lr,
                "images_per_second": done_in_window * batch / max(now - t_log, 1e-9),
            }
            if cfg.grad_clip is not None:
                record["grad_norm"] = grad_norm  # the window's mean norm before clipping
            if cfg.lr_schedule == "plateau":
                scheduler.step(loss)
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
                "scheduler": None if scheduler is None else scheduler.state_dict(),
                "batch_generator": gen.get_state(),
                "order": order.cpu(),
                "pos": pos,
                "sums": sums.cpu(),
                "history": history,
                "rng": _rng_state(device),
            })  # fmt: skip
    return TrainResult(cfg.steps, time.perf_counter() - t0, history, start)


def _rng_state(device: torch.device) -> dict[str, torch.Tensor]:
    # The global generator draws the reparameterisation noise (`variants.losses.reparameterise`).
    state = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict[str, torch.Tensor], device: torch.device) -> None:
    torch.set_rng_state(state["cpu"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)
