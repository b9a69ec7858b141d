"""Training throughput of `benchmark.train.train` against a bare PyTorch loop.

Both loops train the same architecture (same initial weights) on the same device-resident data
with the same batch size, optimiser and loss; the bare loop is the minimal hand-written
version (random index batches, no logging, no divergence checks). The ratio is the overhead of
our loop.
"""

from __future__ import annotations

import copy
import time

import torch
import torch.nn.functional as F

from benchmark.config import TrainConfig, load_sweep
from benchmark.train import train
from benchmark.trial import build_model, load_trial_data
from variants.base import Variant


def bare_loop(model: Variant, x: torch.Tensor, steps: int, batch: int, lr: float) -> None:
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        xb = x[torch.randint(0, x.shape[0], (batch,), device=x.device)]
        mean, logvar = model.encoder(xb).chunk(2, dim=-1)
        z = mean + torch.randn_like(mean) * (0.5 * logvar).exp()
        recon = F.binary_cross_entropy_with_logits(model.decoder(z), xb, reduction="sum")
        kl = 0.5 * (mean.pow(2) + logvar.exp() - 1 - logvar).sum()
        loss = (recon + 4.0 * kl) / batch
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def _timed(fn) -> float:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def measure(
    sweep_file: str = "sweeps/beta_tradeoff.yaml", steps: int = 400, repeats: int = 3,
    device: str | None = None,
) -> dict[str, float]:  # fmt: skip
    """Images per second of both loops on the sweep's first trial (best of `repeats`)."""
    config = load_sweep(sweep_file, overrides=["grid.beta=[4]", "grid.seed=[0]"]).trials[0].config
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    data = load_trial_data(config)
    x = data.x_train.to(dev)
    torch.manual_seed(0)
    model = build_model(config, data).to(dev)
    cfg = TrainConfig(**{**config.train.model_dump(), "steps": steps})
    batch = cfg.batch_size
    ours, bare = [], []
    warm = TrainConfig(**{**cfg.model_dump(), "steps": 20})
    train(copy.deepcopy(model), x, warm, seed=0)
    bare_loop(copy.deepcopy(model), x, 20, batch, cfg.lr)
    for _ in range(repeats):  # interleaved, so drift in machine load hits both alike
        m = copy.deepcopy(model)
        ours.append(steps * batch / _timed(lambda m=m: train(m, x, cfg, seed=0)))
        m = copy.deepcopy(model)
        bare.append(steps * batch / _timed(lambda m=m: bare_loop(m, x, steps, batch, cfg.lr)))
    return {
        "ours": max(ours), "bare": max(bare), "ratio": max(ours) / max(bare),
        "batch": batch, "steps": steps, "image": "x".join(map(str, data.image_shape)),
        "architecture": config.architecture, "device": str(dev),
        "threads": torch.get_num_threads(),
    }  # fmt: skip
