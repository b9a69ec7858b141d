"""The names results have in MLflow: the unit is part of the name (README, "Metric names").

Inside the code (trial results, the report's columns, `runs.csv`) a metric keeps its short name
(`mse`, `kl`, `elbo`, ...). At the MLflow boundary, and only there, it gets a name with its unit,
so that a researcher browsing the runs reads `kl_nats` and `mse_per_pixel`, not a bare `kl`:

    <quantity>_<unit>     kl_nats, elbo_nats, nll_nats, recon_nats   nats per image (natural log)
                          mse_per_pixel     mean squared error per pixel, pixel values in [0, 1]
    <name>_seconds        wall-clock seconds (already in the name: train_seconds, eval_seconds)
    no suffix             dimensionless scores and counts: mig (normalised bits, 0..1),
                          active_units, bits_per_dim, fd_<dataset>, kid_<dataset>, fid_inception

Settings that describe how a metric was computed (`mig_bins`, `nll_k`, `fid_samples`, the model
size `n_params`) are MLflow params, not metrics (`SETTINGS`).

Stores written before this naming (up to commit 8e3ef8d) hold the bare names. `from_mlflow`
maps both spellings to the short name, so `benchmark.report` reads old and new stores alike.
"""

from __future__ import annotations

# short name (code, report) → MLflow metric name (with unit)
WITH_UNITS: dict[str, str] = {
    "mse": "mse_per_pixel",
    "recon": "recon_nats",
    "kl": "kl_nats",
    "elbo": "elbo_nats",
    "nll": "nll_nats",
    # training curves: per-image batch means of the loss and its parts, in nats
    "train_loss": "train_loss_nats",
    "train_recon": "train_recon_nats",
    "train_kl": "train_kl_nats",
    # the linear KL warm-up factor (0 → 1), which multiplies β; not a second β
    "kl_weight": "kl_warmup_factor",
}
_SHORT = {v: k for k, v in WITH_UNITS.items()}

# Result values that are settings or sizes, logged as MLflow params (immutable, not charted).
SETTINGS: tuple[str, ...] = ("n_params", "mig_num_points", "mig_bins", "nll_k", "fid_samples")


def to_mlflow(name: str) -> str:
    """The MLflow metric name of a result key: `kl` → `kl_nats`; unknown names unchanged."""
    return WITH_UNITS.get(name, name)


def from_mlflow(name: str) -> str:
    """The short name of an MLflow metric or param: `kl_nats` → `kl`; old bare names unchanged."""
    return _SHORT.get(name, name)
