"""Registry declarations of disentanglement_lib's scores: DCI, SAP, modularity/explicitness,
the FactorVAE and the BetaVAE score (the array-level functions are in `dci`, `sap`,
`modularity`, `factor_vae`, `beta_vae`; see those modules for definitions and papers).

Protocol in a trial (disentanglement_lib's, Locatello et al. 2019, arXiv:1811.12359): the
representation is the posterior mean; observations are drawn from the dataset's factor
sampler (`EvalContext.ground_truth`; single-valued factors dropped); each metric draws from its
own `np.random.RandomState(seed)`, seeded with the trial's seed. The sizes are `eval.<metric>_*`
knobs (defaults: disentanglement_lib's; test settings: its cheap profiles) and are logged with
the scores.
"""

from __future__ import annotations

import numpy as np
import pydantic

from benchmark.metrics.registry import Column, Metric, Needs

_STRICT = pydantic.ConfigDict(extra="forbid")


def _codes(ctx, num_train: int, num_test: int, batch_size: int, seed: int):
    from benchmark.metrics.ground_truth import sample_codes

    grid, rep = ctx.ground_truth(), ctx.representation()
    rs = np.random.RandomState(seed)
    z_train, y_train = sample_codes(grid, rep, num_train, rs, batch_size)
    z_test, y_test = sample_codes(grid, rep, num_test, rs, batch_size)
    return z_train, y_train, z_test, y_test


def _note(name: str, params: pydantic.BaseModel, ctx) -> str:
    knobs = ", ".join(f"{k}={v}" for k, v in params.model_dump().items())
    return (
        f"disentanglement_lib {name} on posterior means of images drawn from the factor "
        f"sampler ({', '.join(ctx.ground_truth_names())}); {knobs}; RandomState(trial seed)"
    )


def _records(params: pydantic.BaseModel) -> dict[str, float]:
    return {k: float(v) for k, v in params.model_dump().items()}


# --- DCI (Eastwood & Williams 2018) ---------------------------------------------------------


class DCIParams(pydantic.BaseModel):
    """DCI's points: train and test codes (disentanglement_lib's defaults 10000 / 5000)."""

    model_config = _STRICT
    dci_num_train: pydantic.PositiveInt = pydantic.Field(10_000, description="train codes")
    dci_num_test: pydantic.PositiveInt = pydantic.Field(5_000, description="test codes")


def _dci(ctx, p: DCIParams):
    from benchmark.metrics.dci import BATCH_SIZE, dci

    scores = dci(*_codes(ctx, p.dci_num_train, p.dci_num_test, BATCH_SIZE, ctx.seed),
                 random_state=0)  # fmt: skip
    values = {f"dci_{k}": v for k, v in scores.items()} | _records(p)
    return values, {"dci": _note("DCI (gradient-boosted trees)", p, ctx)}


DCI = Metric(
    provenance=(("DCI", "dci", None),),
    name="dci",
    description="DCI disentanglement, completeness, informativeness (Eastwood & Williams "
    "2018), disentanglement_lib's gradient-boosted-tree importances",
    columns=(
        Column("dci_disentanglement", "DCI-D", ".3f", better="higher"),
        Column("dci_completeness", "DCI-C", ".3f", better="higher"),
        Column("dci_informativeness_test", "DCI-I (test acc.)", ".3f", better="higher"),
    ),
    compute=_dci,
    params=DCIParams,
    test_params={"dci_num_train": 1000, "dci_num_test": 500},
    needs=Needs(factors=True, continuous_latents=True, min_latent_dim=2),
    records=("dci_informativeness_train", "dci_num_train", "dci_num_test"),
)


# --- SAP (Kumar et al. 2018, arXiv:1711.00848) ----------------------------------------------


class SAPParams(pydantic.BaseModel):
    """SAP's points: train and test codes (disentanglement_lib's defaults 10000 / 5000)."""

    model_config = _STRICT
    sap_num_train: pydantic.PositiveInt = pydantic.Field(10_000, description="train codes")
    sap_num_test: pydantic.PositiveInt = pydantic.Field(5_000, description="test codes")


def _sap(ctx, p: SAPParams):
    from benchmark.metrics.sap import BATCH_SIZE, sap

    score = sap(*_codes(ctx, p.sap_num_train, p.sap_num_test, BATCH_SIZE, ctx.seed))
    return {"sap": score} | _records(p), {"sap": _note("SAP (discrete factors)", p, ctx)}


SAP = Metric(
    provenance=(("SAP", "sap", None),),
    name="sap",
    description="SAP score (Kumar et al. 2018, arXiv:1711.00848), disentanglement_lib's "
    "protocol with discrete factors",
    columns=(Column("sap", "SAP", ".3f", better="higher"),),
    compute=_sap,
    params=SAPParams,
    test_params={"sap_num_train": 1000, "sap_num_test": 500},
    needs=Needs(factors=True, continuous_latents=True, min_latent_dim=2),
    records=("sap_num_train", "sap_num_test"),
)


# --- Modularity and explicitness (Ridgeway & Mozer 2018, arXiv:1802.05312) -------------------


class ModularityParams(pydantic.BaseModel):
    """Modularity and explicitness: train/test codes and histogram bins per latent."""

    model_config = _STRICT
    modularity_num_train: pydantic.PositiveInt = pydantic.Field(10_000, description="train codes")
    modularity_num_test: pydantic.PositiveInt = pydantic.Field(5_000, description="test codes")
    modularity_bins: int = pydantic.Field(20, ge=2, description="histogram bins per latent")


def _modularity(ctx, p: ModularityParams):
    from benchmark.metrics.modularity import BATCH_SIZE, modularity_explicitness

    codes = _codes(ctx, p.modularity_num_train, p.modularity_num_test, BATCH_SIZE, ctx.seed)
    scores = modularity_explicitness(*codes, n_bins=p.modularity_bins)
    return dict(scores) | _records(p), {"modularity": _note("modularity/explicitness", p, ctx)}


MODULARITY = Metric(
    provenance=(("Modularity", "modularity", None),),
    name="modularity",
    description="modularity and explicitness (Ridgeway & Mozer 2018, arXiv:1802.05312), "
    "disentanglement_lib's protocol",
    columns=(
        Column("modularity", "Modularity", ".3f", better="higher"),
        Column("explicitness_score_test", "Explicitness (test)", ".3f", better="higher"),
    ),
    compute=_modularity,
    params=ModularityParams,
    test_params={"modularity_num_train": 1000, "modularity_num_test": 500},
    needs=Needs(factors=True, continuous_latents=True),
    records=(
        "explicitness_score_train",
        "modularity_num_train",
        "modularity_num_test",
        "modularity_bins",
    ),  # fmt: skip
)


# --- FactorVAE score (Kim & Mnih 2018, arXiv:1802.05983) ------------------------------------


class FactorVAEParams(pydantic.BaseModel):
    """FactorVAE score: training and evaluation votes and the points for the global variances."""

    model_config = _STRICT
    factor_vae_num_train: pydantic.PositiveInt = pydantic.Field(10_000, description="votes")
    factor_vae_num_eval: pydantic.PositiveInt = pydantic.Field(5_000, description="eval votes")
    factor_vae_num_variance_estimate: int = pydantic.Field(
        10_000, ge=2, description="points for the global variances"
    )


def _factor_vae(ctx, p: FactorVAEParams):
    from benchmark.metrics.factor_vae import BATCH_SIZE, PRUNE_THRESHOLD, factor_vae_score

    scores = factor_vae_score(
        ctx.ground_truth(), ctx.representation(), np.random.RandomState(ctx.seed),
        batch_size=BATCH_SIZE, num_train=p.factor_vae_num_train, num_eval=p.factor_vae_num_eval,
        num_variance_estimate=p.factor_vae_num_variance_estimate, prune_threshold=PRUNE_THRESHOLD,
    )  # fmt: skip
    values = {
        "factor_vae": scores["eval_accuracy"],
        "factor_vae_train_accuracy": scores["train_accuracy"],
        "factor_vae_active_dims": float(scores["num_active_dims"]),
    } | _records(p)
    return values, {"factor_vae": _note("FactorVAE score", p, ctx)}


FACTOR_VAE = Metric(
    provenance=(("FactorVAE score", "factor_vae", None),),
    name="factor_vae",
    description="FactorVAE score (Kim & Mnih 2018, arXiv:1802.05983): majority vote over the "
    "argmin of normalised variance on batches with one factor fixed",
    columns=(Column("factor_vae", "FactorVAE score", ".3f", better="higher"),),
    compute=_factor_vae,
    params=FactorVAEParams,
    test_params={
        "factor_vae_num_train": 500,
        "factor_vae_num_eval": 300,
        "factor_vae_num_variance_estimate": 1000,
    },  # fmt: skip
    needs=Needs(factors=True, continuous_latents=True),
    records=(
        "factor_vae_train_accuracy",
        "factor_vae_active_dims",
        "factor_vae_num_train",
        "factor_vae_num_eval",
        "factor_vae_num_variance_estimate",
    ),  # fmt: skip
)


# --- BetaVAE score (Higgins et al. 2017) ----------------------------------------------------


class BetaVAEParams(pydantic.BaseModel):
    """BetaVAE score: training and evaluation batches (disentanglement_lib's defaults)."""

    model_config = _STRICT
    beta_vae_num_train: pydantic.PositiveInt = pydantic.Field(10_000, description="batches")
    beta_vae_num_eval: pydantic.PositiveInt = pydantic.Field(5_000, description="eval batches")


def _beta_vae(ctx, p: BetaVAEParams):
    from benchmark.metrics.beta_vae import BATCH_SIZE, beta_vae_score

    scores = beta_vae_score(
        ctx.ground_truth(), ctx.representation(), np.random.RandomState(ctx.seed),
        batch_size=BATCH_SIZE, num_train=p.beta_vae_num_train, num_eval=p.beta_vae_num_eval,
    )  # fmt: skip
    values = {
        "beta_vae": scores["eval_accuracy"],
        "beta_vae_train_accuracy": scores["train_accuracy"],
    } | _records(p)
    return values, {"beta_vae": _note("BetaVAE score", p, ctx)}


BETA_VAE = Metric(
    provenance=(("BetaVAE score", "beta_vae", None),),
    name="beta_vae",
    description="BetaVAE score (Higgins et al. 2017): linear classifier accuracy on pairwise "
    "code differences of batches with one factor fixed",
    columns=(Column("beta_vae", "BetaVAE score", ".3f", better="higher"),),
    compute=_beta_vae,
    params=BetaVAEParams,
    test_params={"beta_vae_num_train": 500, "beta_vae_num_eval": 300},
    needs=Needs(factors=True, continuous_latents=True),
    records=("beta_vae_train_accuracy", "beta_vae_num_train", "beta_vae_num_eval"),
)
