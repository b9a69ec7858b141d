"""Importance-sampled negative log-likelihood -log p(x) of the first test images.

The estimator is the variant's `log_likelihood(x, y, k)` (IWAE bound with k samples, Burda et
al. 2016, arXiv:1509.00519), in nats per image and as bits per dimension.
"""

from __future__ import annotations

import math

import pydantic

from benchmark.metrics.registry import Column, Metric, Needs, Setting


class Params(pydantic.BaseModel):
    """The IS-NLL knobs: importance samples per image and how many test images."""

    model_config = pydantic.ConfigDict(extra="forbid")

    nll_k: pydantic.PositiveInt = pydantic.Field(100, description="importance samples per image")
    nll_points: pydantic.PositiveInt = pydantic.Field(
        500, description="the first nll_points test images; at most dataset.n_test"
    )


def compute(ctx, params: Params) -> tuple[dict[str, float], dict[str, str]]:
    """-mean log p(x) over the first `nll_points` test images (nats) and bits/dim."""
    import torch

    x_all, y_all = ctx.data.x_test, ctx.data.y_test
    x = x_all[: params.nll_points].to(ctx.device)
    y = None if y_all is None else y_all[: params.nll_points].to(ctx.device)
    log_px = torch.cat([
        ctx.model.log_likelihood(x[sl], None if y is None else y[sl], k=params.nll_k)
        for sl in (slice(s, s + 50) for s in range(0, x.shape[0], 50))
    ])  # fmt: skip
    nll = -log_px.mean().item()
    pixels = math.prod(ctx.data.image_shape)
    values = {
        "nll": nll,
        "bits_per_dim": nll / (pixels * math.log(2)),
        "nll_k": float(params.nll_k),
    }
    return values, {"nll": f"importance sampling, k={params.nll_k}, first {x.shape[0]} test images"}


def check(params: Params, eval_config, setting: Setting) -> tuple[str, str] | None:
    """('eval.nll_points', why) when nll_points exceeds the test split, else None."""
    if params.nll_points > setting.n_test:
        return "eval.nll_points", (
            f"{params.nll_points} is more than the test split (dataset.n_test = "
            f"{setting.n_test}); allowed: <= n_test"
        )
    return None


METRIC = Metric(
    name="nll",
    description="importance-sampled -log p(x) (nats) and bits/dim on the first test images",
    columns=(
        Column("nll", "NLL (nats)", ".1f", better="lower", unit="nats"),
        Column("bits_per_dim", "NLL (bits/dim)", ".3f", better="lower", unit="bits/dim"),
    ),
    compute=compute,
    params=Params,
    test_params={"nll_k": 5, "nll_points": 32},
    needs=Needs(continuous_latents=True),
    records=("nll_k",),
    check=check,
)
