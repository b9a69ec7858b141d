"""KL(q(z|x) || p(z)) in nats, the test-split batch mean (from the test-split pass)."""

from __future__ import annotations

from benchmark.metrics.registry import Column, Metric


def compute(ctx, params) -> tuple[dict[str, float], dict[str, str]]:
    """The variant's KL term (`variants.losses`), mean over test images, nats."""
    return {"kl": ctx.test_pass["kl"]}, {}


METRIC = Metric(
    name="kl",
    description="KL(q(z|x) || p(z)) in nats, mean over the test split",
    # No better direction: a small KL can mean posterior collapse as well as a simple code.
    columns=(Column("kl", "KL (nats)", ".2f", unit="nats"),),
    compute=compute,
    always=True,
)
