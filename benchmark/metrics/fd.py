"""`fd`: Fréchet distance and KID of generated against real test images (formerly `fid`).

Produces `fd_<dataset>` and `kid_<dataset>` in the dataset's domain feature net and, when the
Inception weights are on disk, `fid_inception` (Heusel et al. 2017, arXiv:1706.08500; KID:
Bińkowski et al. 2018, arXiv:1801.01401). N = eval.fid_samples samples from the prior against
the first N test images; see `benchmark.metrics.fid` for the conventions.
"""

from __future__ import annotations

import time

import pydantic

from benchmark.metrics.registry import Column, Metric, Needs, Setting

# Inception-v3 pool3 features: FID needs more samples than this for a full-rank covariance.
INCEPTION_DIM = 2048


class Params(pydantic.BaseModel):
    """FD/KID knobs: KID's subset size and where the Inception weights for fid_inception are."""

    model_config = pydantic.ConfigDict(extra="forbid")

    kid_subset_size: pydantic.PositiveInt | None = pydantic.Field(
        None,
        description="KID subset size; null: min(1000, fid_samples) (torchmetrics' default 1000, "
        "capped at N so that any valid N works)",
    )
    inception_weights: str | None = pydantic.Field(
        None,
        description="weights-inception-2015-12-05-6726825d.pth for fid_inception (default: "
        "$VAEBENCH_INCEPTION_WEIGHTS, then $TORCH_HOME/hub/checkpoints/)",
    )


def compute(ctx, params: Params) -> tuple[dict[str, float], dict[str, str]]:
    """FD/KID in the domain net's features and, when possible, Inception FID.

    Label-conditioned variants sample with the real images' labels (see EvalContext)."""
    from benchmark.feature_nets import metric_name
    from benchmark.metrics.fid import (
        domain_fd_note,
        frechet_distance_and_kid,
        inception_fid,
        inception_note,
        inception_skip_reason,
        inception_weights,
    )

    n = ctx.cfg.fid_samples
    real, fake = ctx.image_pair()
    values: dict[str, float] = {"fid_samples": float(n)}
    notes: dict[str, str] = {}
    name = metric_name(ctx.dataset_name)
    t0 = time.perf_counter()
    if isinstance(ctx.feature_net, tuple):
        net, info = ctx.feature_net
        scores = frechet_distance_and_kid(
            real, fake, net, kid_subset_size=kid_subset(params, n), seed=ctx.seed
        )
        values[name] = scores["fd"]
        values["kid_" + ctx.dataset_name] = scores["kid_mean"]
        values["kid_" + ctx.dataset_name + "_std"] = scores["kid_std"]
        notes["fd"] = domain_fd_note(name, n, info) + (
            f"; KID: {scores['kid_subsets']} subsets of {scores['kid_subset_size']}"
        )
    else:
        notes["fd"] = f"{name} not computed: {ctx.feature_net or 'no domain feature net'}"
    skip = inception_skip_reason(params.inception_weights)
    if skip is None and n <= INCEPTION_DIM:
        skip = (
            f"fid_inception not computed: N={n} is not more than the {INCEPTION_DIM} Inception "
            f"features; allowed: eval.fid_samples > {INCEPTION_DIM}"
        )
    if skip is None:
        weights = inception_weights(params.inception_weights)
        values["fid_inception"] = inception_fid(real, fake, weights)["fd"]
        notes["fid_inception"] = inception_note(n)
    else:
        notes["fid_inception"] = skip
    values["fid_seconds"] = time.perf_counter() - t0
    return values, notes


def kid_subset(params: Params, n: int) -> int:
    """The KID subset size for N samples: the configured one, else min(1000, N)."""
    return params.kid_subset_size if params.kid_subset_size is not None else min(1000, n)


def check(params: Params, eval_config, setting: Setting) -> tuple[str, str] | None:
    """N within the test split, a KID subset within N, an existing weights file, and N above
    the feature dimension (below it the covariance is singular and FD is dominated by bias)."""
    from pathlib import Path

    n = eval_config.fid_samples
    if n > setting.n_test:
        return "eval.fid_samples", (
            f"{n} is more than the test split (dataset.n_test = {setting.n_test}); "
            "allowed: <= n_test"
        )
    if params.inception_weights is not None:
        if not Path(params.inception_weights).expanduser().is_file():
            return "eval.inception_weights", (
                f"{params.inception_weights!r} does not exist; allowed: the path of "
                "weights-inception-2015-12-05-6726825d.pth, or null"
            )
    if n <= setting.feature_dim:
        return "eval.fid_samples", (
            f"N={n} is too few for a Fréchet distance in the {setting.feature_dim}-d features "
            f"of fd_{setting.dataset} (its covariance would be singular); allowed: >= "
            f"{setting.feature_dim + 1}"
        )
    if params.kid_subset_size is not None and not 2 <= params.kid_subset_size <= n:
        return "eval.kid_subset_size", (
            f"{params.kid_subset_size} is not allowed; allowed: 2 .. eval.fid_samples ({n}), "
            "or null for min(1000, N)"
        )
    if params.inception_weights is not None and n <= INCEPTION_DIM:
        return "eval.fid_samples", (
            f"N={n} is too few for fid_inception in {INCEPTION_DIM}-d Inception features "
            f"(eval.inception_weights is set); allowed: >= {INCEPTION_DIM + 1}"
        )
    return None


METRIC = Metric(
    name="fd",
    description="Fréchet distance and KID of N generated vs N real test images in the "
    "dataset's domain feature net (fd_<dataset>, kid_<dataset>), and Inception FID when its "
    "weights are on disk (fid_inception)",
    columns=(
        Column("fd_{dataset}", "FD ({key}{size})", ".1f", better="lower"),
        Column("fid_inception", "FID (Inception{size})", ".1f", better="lower"),
        Column("kid_{dataset}", "KID ({key}{size})", ".2f", better="lower"),
    ),
    compute=compute,
    params=Params,
    test_params={"kid_subset_size": 50},
    needs=Needs(feature_net=True),
    records=("fid_samples", "fid_seconds", "kid_{dataset}_std"),
    provenance=(
        ("FD / KID", "fd", "not computed in this sweep"),
        ("FID (Inception)", "fid_inception", None),
    ),
    shared=("fid_samples",),
    deprecated_names=("fid",),
    check=check,
)
