"""What a trial's evaluation costs, per registered metric, on a conv4 VAE over 32×32
dSprites-like images.

Each metric is timed the way `benchmark.evaluate` computes it in a trial: its registry
`compute(ctx, params)` on a fresh `EvalContext` (so that no cache shared with an earlier metric
hides its cost), after the one test-split pass that every trial makes (MSE/KL/ELBO, the
posterior means for active units). An untrained model costs what a trained one does. The
sizes are the registry's defaults (the paper protocol), or with `quick` its `test_params` (the
cheap test profiles); either way the cost is also given per 1,000 points, so it scales to the
other size. A "point" is a test image (test pass, NLL, at the stated k), a factor-sampled
image (MIG), a train or test code (DCI, SAP, modularity), a vote of 64 images (FactorVAE,
BetaVAE scores, plus FactorVAE's variance points) or a generated-and-real image pair (FD/KID,
PRDC; only when the domain feature net is cached: this harness never trains one). Seconds are
the harness's clock (`train_throughput.clock`: the process's CPU time unless --clock wall).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pydantic
import torch

from benchmark.config import EvalConfig, load_sweep
from benchmark.evaluate import EvalContext
from benchmark.feature_nets import FeatureNetError, load_or_train
from benchmark.metrics import registry
from benchmark.perf import train_throughput
from benchmark.trial import build_model, load_trial_data

Row = dict[str, Any]

# Knob suffixes that count a metric's points (see the module docstring for what a point is).
_COUNTS = ("_points", "_num_train", "_num_test", "_num_eval", "_num_variance_estimate")


class _Spread(EvalContext):
    """The context of a trained model's spread of codes: posterior means x 100."""

    def representation(self):
        rep = super().representation()
        return lambda images: 100.0 * rep(images)


def points(metric: registry.Metric, params: pydantic.BaseModel, cfg: Any) -> int:
    """Number of points `metric` processes with `params` (0: not counted)."""
    if metric.needs.feature_net:
        return int(cfg.fid_samples)
    return sum(
        int(v) for k, v in params.model_dump().items() if k.endswith(_COUNTS) and v is not None
    )


def measure_eval(
    device: torch.device, *, quick: bool, feature_nets: Path, n_test: int = 2000
) -> tuple[list[Row], list[str]]:
    """Per metric: rows {metric, n, seconds, per_1000, setting}; and one-line skip notes.

    `quick`: the registry's test sizes (and 500 FD/KID samples) instead of the defaults.
    NLL is timed at k = 100 and k = 1000. Raises what loading the data or the model raises.
    """
    config = load_sweep("sweeps/beta_tradeoff.yaml", overrides=[
        "grid.beta=[4]", "grid.seed=[0]", "dataset.n_train=2000", f"dataset.n_test={n_test}",
    ]).trials[0].config  # fmt: skip
    data = load_trial_data(config)
    torch.manual_seed(0)
    model = build_model(config, data).to(device).eval()
    rows: list[Row] = []
    skipped: list[str] = []
    try:
        net: Any = load_or_train("dsprites", 32, feature_nets, train_if_missing=False,
                                 progress=lambda _: None)  # fmt: skip
    except FeatureNetError as e:
        net = str(e).splitlines()[0]

    def context(cfg: Any) -> EvalContext:
        return _Spread(model, data, cfg, device=device, seed=0, feature_net=net,
                           dataset_name="dsprites")  # fmt: skip

    clock = train_throughput.clock  # the harness's clock: CPU time by default (1 thread)
    base = EvalConfig(metrics=[], fid_samples=500 if quick else 2000)
    with torch.no_grad():
        shared = context(base)
        t0 = clock()
        shared.run_test_pass()
        seconds = clock() - t0
    rows.append({"metric": "test pass: mse+kl+elbo (+means)", "n": n_test, "seconds": seconds,
                 "per_1000": 1000 * seconds / n_test, "setting": "one pass"})  # fmt: skip
    runs: list[tuple[str, registry.Metric, dict[str, Any]]] = []
    for m in registry.metrics():
        if m.always and m.name != "active_units":
            continue  # in the test pass above
        sizes = dict(m.test_params) if quick else {}
        if m.name == "nll":
            for k in (100, 1000):
                n = (20 if k == 100 else 4) if quick else (500 if k == 100 else 50)
                runs.append((f"nll k={k}", m, {"nll_k": k, "nll_points": n}))
            continue
        runs.append((m.name, m, sizes))
    for label, m, sizes in runs:
        cfg = base.model_copy(update={**sizes, "metrics": [m.name]})
        params = m.params_of(cfg)
        ctx = context(cfg)
        ctx.test_pass, ctx.means = shared.test_pass, shared.means  # made once per trial
        with torch.no_grad():
            t0 = clock()
            try:
                m.compute(ctx, params)
            except Exception as e:  # noqa: BLE001 - a metric that cannot run is noted, not fatal
                skipped.append(f"{label}: skipped ({str(e).strip().splitlines()[0]})")
                continue
            seconds = clock() - t0
        n = points(m, params, cfg)
        setting = ", ".join(f"{k}={v}" for k, v in params.model_dump().items() if v is not None)
        rows.append({"metric": label, "n": n, "seconds": seconds,
                     "per_1000": 1000 * seconds / n if n else float("nan"),
                     "setting": setting or "-"})  # fmt: skip
    return rows, skipped
