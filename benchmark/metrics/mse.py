"""Mean squared reconstruction error per pixel on the test split (from the test-split pass)."""

from __future__ import annotations

from benchmark.metrics.registry import Column, Metric


def compute(ctx, params) -> tuple[dict[str, float], dict[str, str]]:
    """Per-pixel squared error between x and `reconstruct(x)` (posterior mean), on [0, 1]."""
    return {"mse": ctx.test_pass["mse"]}, {}


METRIC = Metric(
    name="mse",
    description="per-pixel squared error of the posterior-mean reconstruction, test split",
    columns=(Column("mse", "MSE", ".4f", better="lower"),),
    compute=compute,
    always=True,
)
