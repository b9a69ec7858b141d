"""What a trial's evaluation costs, per metric, on a conv4 VAE over 32×32 dSprites-like images.

Timed the way `benchmark.evaluate` computes each metric (an untrained model costs what a trained
one does): the one-pass MSE/KL/ELBO over the test split, importance-sampled NLL at k = 100 and
1000, MIG on `mig_points` fresh images, FD/KID on 2,000 samples in the domain feature net (only
when that net is cached: this harness never trains one), and, where another module provides it,
`benchmark.perf.disentanglement.time_metrics()`. Costs are seconds per 1,000 test examples,
except MIG and FD/KID (per call, at the stated N).
"""

from __future__ import annotations

import importlib
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmark.config import EvalConfig, load_sweep
from benchmark.evaluate import evaluate, image_quality
from benchmark.feature_nets import FeatureNetError, load_or_train
from benchmark.metrics import mig
from benchmark.trial import build_model, load_trial_data

Row = dict[str, Any]


def measure_eval(
    device: torch.device, *, quick: bool, feature_nets: Path, fid_samples: int = 2000,
    mig_points: int = 10_000,
) -> tuple[list[Row], list[str]]:  # fmt: skip
    """Rows (metric, N, seconds, seconds per 1,000 examples) and one-line skip notes."""
    n_test = 2000
    config = load_sweep("sweeps/beta_tradeoff.yaml", overrides=[
        "grid.beta=[4]", "grid.seed=[0]", "dataset.n_train=2000", f"dataset.n_test={n_test}",
    ]).trials[0].config  # fmt: skip
    data = load_trial_data(config)
    torch.manual_seed(0)
    model = build_model(config, data).to(device).eval()
    rows: list[Row] = []
    skipped: list[str] = []

    def add(metric: str, n: int, seconds: float, per: int | None = 1000) -> None:
        rows.append({"metric": metric, "n": n, "seconds": seconds,
                     "per_1000": seconds * 1000 / n if per else float("nan")})  # fmt: skip

    cfg = EvalConfig(metrics=["mse", "kl", "elbo"])
    t0 = time.perf_counter()
    evaluate(model, data, cfg, device=device, seed=0)
    add("mse+kl+elbo (+active units)", n_test, time.perf_counter() - t0)

    with torch.no_grad():
        for k, m in ((100, 20 if quick else 100), (1000, 4 if quick else 20)):
            x = data.x_test[:m].to(device)
            t0 = time.perf_counter()
            model.log_likelihood(x, None, k=k)
            add(f"nll k={k}", m, time.perf_counter() - t0)

        imgs_n = mig_points
        t0 = time.perf_counter()
        imgs, factors = data.sample_factors(imgs_n, np.random.default_rng(0))
        codes = torch.cat([model.encode(imgs[s : s + 1000].to(device)).mean.cpu()
                           for s in range(0, imgs_n, 1000)])  # fmt: skip
        mig(codes.numpy(), factors, n_bins=20)
        add(f"mig ({imgs_n} points, incl. drawing them)", imgs_n, time.perf_counter() - t0, None)

    try:
        net = load_or_train("dsprites", 32, feature_nets, train_if_missing=False,
                            progress=lambda _: None)  # fmt: skip
    except FeatureNetError as e:
        skipped.append(f"FD/KID: skipped ({str(e).splitlines()[0]})")
    else:
        n = min(fid_samples, n_test)
        ev = EvalConfig(metrics=["fid"], fid_samples=n, kid_subset_size=min(1000, n))
        t0 = time.perf_counter()
        image_quality(model, data, ev, device, 0, net, "dsprites")
        add(f"fd+kid ({n} samples, incl. sampling)", n, time.perf_counter() - t0, None)

    try:
        extra = importlib.import_module("benchmark.perf.disentanglement")
    except ImportError:
        skipped.append("disentanglement metrics: skipped (benchmark.perf.disentanglement "
                       "not present)")  # fmt: skip
    else:
        for name, seconds in dict(extra.time_metrics()).items():
            rows.append({"metric": name, "n": mig_points, "seconds": float(seconds),
                         "per_1000": float("nan")})  # fmt: skip
    return rows, skipped
