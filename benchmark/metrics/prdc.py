"""`prdc`: precision, recall, density and coverage of generated against real images.

Precision and recall: Kynkäänniemi et al. 2019 (arXiv:1904.06991); density and coverage: Naeem
et al. 2020 (arXiv:2002.09797), computed by the authors' `prdc` package (PyPI) with k nearest
neighbours, in the same domain feature net and on the same N generated / N real test images as
`fd` (eval.fid_samples), so the two can be read side by side.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pydantic

from benchmark.metrics.registry import Column, Metric, Needs, Setting, Unavailable


class Params(pydantic.BaseModel):
    """PRDC's k nearest neighbours (Naeem et al. 2020, arXiv:2002.09797; default 5)."""

    model_config = pydantic.ConfigDict(extra="forbid")

    prdc_k: pydantic.PositiveInt = pydantic.Field(
        5, description="nearest neighbours k (the authors' default 5)"
    )


def precision_recall_density_coverage(
    real_features: np.ndarray, fake_features: np.ndarray, nearest_k: int = 5
) -> dict[str, float]:
    """`prdc.compute_prdc` on (N, D) real and (M, D) fake features; returns floats
    {precision, recall, density, coverage}. Precision, recall and coverage are in [0, 1];
    density is unbounded above (about 1 for identical distributions). Raises ValueError when
    a set has no more than `nearest_k` + 1 points (the k-th neighbour excluding itself)."""
    from prdc import compute_prdc

    real = np.asarray(real_features, dtype=np.float64)
    fake = np.asarray(fake_features, dtype=np.float64)
    for name, x in (("real", real), ("fake", fake)):
        if x.ndim != 2:
            raise ValueError(f"{name} features: shape {x.shape} is not allowed; allowed: (N, D)")
        if len(x) < nearest_k + 2:
            raise ValueError(
                f"{name} features: N={len(x)} is too few for k={nearest_k}; allowed: N >= "
                f"{nearest_k + 2}"
            )
    with contextlib.redirect_stdout(io.StringIO()):  # prdc prints the set sizes
        scores = compute_prdc(real, fake, nearest_k)
    return {k: float(v) for k, v in scores.items()}


def compute(ctx, params: Params) -> tuple[dict[str, float], dict[str, str]]:
    """PRDC in the domain net's 128-d features (the ones `fd_<dataset>` uses)."""
    from importlib.metadata import version

    if not isinstance(ctx.feature_net, tuple):
        raise Unavailable(ctx.feature_net or "no domain feature net")
    real, fake = ctx.image_pair()
    net, _ = ctx.feature_net
    scores = precision_recall_density_coverage(
        ctx.domain_features(real), ctx.domain_features(fake), params.prdc_k
    )
    ds, n = ctx.dataset_name, len(real)
    values = {f"{k}_{ds}": v for k, v in scores.items()}
    values["prdc_k"] = float(params.prdc_k)
    note = (
        f"prdc {version('prdc')} (Kynkäänniemi et al. 2019; Naeem et al. 2020), k={params.prdc_k},"
        f" in the {getattr(net, 'num_features', '?')}-d features of fd_{ds}; {n} generated vs "
        f"{n} real test images"
    )
    return values, {"prdc": note}


def check(params: Params, eval_config, setting: Setting) -> tuple[str, str] | None:
    """(key, why) when eval.fid_samples exceeds the test split or is too small for k, else None."""
    n = eval_config.fid_samples
    if n > setting.n_test:
        return "eval.fid_samples", (
            f"{n} is more than the test split (dataset.n_test = {setting.n_test}); "
            "allowed: <= n_test"
        )
    if n < params.prdc_k + 2:
        return "eval.prdc_k", (
            f"{params.prdc_k} is too many neighbours for N = eval.fid_samples = {n}; "
            f"allowed: <= {n - 2}"
        )
    return None


METRIC = Metric(
    name="prdc",
    description="precision, recall, density, coverage (the authors' prdc package) of N "
    "generated vs N real test images in the domain feature net of fd_<dataset>",
    columns=(
        Column("precision_{dataset}", "Precision ({key}{size})", ".3f", better="higher"),
        Column("recall_{dataset}", "Recall ({key}{size})", ".3f", better="higher"),
        Column("density_{dataset}", "Density ({key}{size})", ".3f", better="higher"),
        Column("coverage_{dataset}", "Coverage ({key}{size})", ".3f", better="higher"),
    ),
    compute=compute,
    params=Params,
    needs=Needs(feature_net=True),
    records=("prdc_k",),
    provenance=(("PRDC", "prdc", None),),
    shared=("fid_samples",),
    check=check,
)
