"""ELBO = -(recon + KL) in nats with β = 1, so it is comparable across β (test-split pass)."""

from __future__ import annotations

from benchmark.metrics.registry import Column, Metric


def compute(ctx, params) -> tuple[dict[str, float], dict[str, str]]:
    """One-sample ELBO of the test split, nats per image (Kingma & Welling, arXiv:1312.6114)."""
    return {"elbo": ctx.test_pass["elbo"], "recon": ctx.test_pass["recon"]}, {}


METRIC = Metric(
    name="elbo",
    description="one-sample ELBO -(recon + KL) in nats with beta = 1, test split",
    columns=(Column("elbo", "ELBO (nats)", ".1f", better="higher", unit="nats"),),
    compute=compute,
    records=("recon",),
    always=True,
)
