"""DCI: disentanglement, completeness and informativeness, as disentanglement_lib computes them.

Paper: Eastwood & Williams (2018), "A Framework for the Quantitative Evaluation of Disentangled
Representations", ICLR (https://openreview.net/forum?id=By-7dz-AZ; no arXiv id). Reference
implementation: disentanglement_lib ``evaluation/metrics/dci.py`` (Locatello et al. 2019,
arXiv 1811.12359).

Protocol
--------
1. For each factor ``j``, a ``sklearn.ensemble.GradientBoostingClassifier`` with default
   hyper-parameters is fit on ``(latents_train, factors_train[:, j])``. ``R[i, j]`` is the
   absolute impurity-based feature importance of latent ``i`` (each column sums to 1, or is all
   zero when no tree splits).
2. Disentanglement: ``D_i = 1 - H_F(R[i, :])`` (entropy with base F of the row, normalised,
   after adding 1e-11), weighted by ``sum_j R[i, j] / sum R``.
   Completeness: ``C_j = 1 - H_d(R[:, j])`` weighted by ``sum_i R[i, j] / sum R``.
3. Informativeness: the classifiers' mean accuracy over factors on the train and test splits
   (disentanglement_lib calls these "informativeness_train/test"; they are accuracies in
   [0, 1], higher is better, not errors).

disentanglement_lib leaves the trees unseeded, so two of its runs differ by ~1e-4. Here the
trees get ``random_state`` (0 by default); with that seed patched into disentanglement_lib the
numbers agree to 1e-6 (tests/fixtures/dlib).

Cost: one 100-stage boosted ensemble per factor, each stage one tree per class (one for a
binary factor). On the dSprites grid (3 + 6 + 40 + 32 + 32 classes) with the protocol's
10,000 points and d = 10 that is 11,300 trees: ~400 CPU seconds
(``benchmark.perf.disentanglement``), far more than every other metric here.
"""

from __future__ import annotations

from types import MappingProxyType

import numpy as np
import scipy.stats
from sklearn.ensemble import GradientBoostingClassifier

from benchmark.metrics.arrays import train_and_test

__all__ = [
    "BATCH_SIZE",
    "CHEAP_PROTOCOL",
    "NUM_TEST",
    "NUM_TRAIN",
    "PROTOCOL",
    "dci",
    "dci_importance",
]

# disentanglement_lib's unsupervised_study_v1 metric_configs/dci.gin (and compute_dci's default
# batch size, the number of points drawn and encoded per call).
NUM_TRAIN = 10_000
NUM_TEST = 5_000
BATCH_SIZE = 16
PROTOCOL = MappingProxyType(
    {"num_train": NUM_TRAIN, "num_test": NUM_TEST, "batch_size": BATCH_SIZE}
)
# A setting for tests and smoke runs (draws of the train and test codes).
CHEAP_PROTOCOL = MappingProxyType({"num_train": 1000, "num_test": 500, "batch_size": 16})


def dci(
    latents_train, factors_train, latents_test, factors_test, *, random_state: int = 0
) -> dict[str, float]:
    """DCI scores of a representation.

    Args:
        latents_train: ``(N_train, d)`` real-valued codes (posterior means), ``d >= 2``.
        factors_train: ``(N_train, F)`` integer factor classes, ``F >= 2``; every factor takes
            at least two classes.
        latents_test: ``(N_test, d)`` codes of other points.
        factors_test: ``(N_test, F)`` their factor classes.
        random_state: seed of every gradient-boosted classifier (one per factor).

    Returns:
        ``{"disentanglement", "completeness", "informativeness_train",
        "informativeness_test"}``, each a float in [0, 1] (dimensionless).

    Raises:
        ValueError: malformed input (see ``benchmark.metrics.arrays.train_and_test``), d < 2 or
            F < 2 (the entropies with base 1 are undefined).
    """
    importance, train_acc, test_acc = dci_importance(
        latents_train, factors_train, latents_test, factors_test, random_state=random_state
    )
    return {
        "disentanglement": _disentanglement(importance),
        "completeness": _completeness(importance),
        "informativeness_train": train_acc,
        "informativeness_test": test_acc,
    }


def dci_importance(
    latents_train, factors_train, latents_test, factors_test, *, random_state: int = 0
) -> tuple[np.ndarray, float, float]:
    """Importance matrix ``(d, F)`` and mean train/test accuracies of the per-factor trees.

    Arguments and errors as :func:`dci`.
    """
    zt, yt, zs, ys = train_and_test(
        latents_train, factors_train, latents_test, factors_test, min_latents=2
    )
    num_factors = yt.shape[1]
    if num_factors < 2:
        raise ValueError(f"DCI needs at least 2 factors (entropy with base F), got F={num_factors}")
    importance = np.zeros((zt.shape[1], num_factors), dtype=np.float64)
    train_acc, test_acc = [], []
    for j in range(num_factors):
        model = GradientBoostingClassifier(random_state=random_state)
        model.fit(zt, yt[:, j])
        importance[:, j] = np.abs(model.feature_importances_)
        train_acc.append(np.mean(model.predict(zt) == yt[:, j]))
        test_acc.append(np.mean(model.predict(zs) == ys[:, j]))
    return importance, float(np.mean(train_acc)), float(np.mean(test_acc))


def _disentanglement(importance: np.ndarray) -> float:
    per_code = 1.0 - scipy.stats.entropy(importance.T + 1e-11, base=importance.shape[1])
    if importance.sum() == 0.0:
        importance = np.ones_like(importance)
    code_importance = importance.sum(axis=1) / importance.sum()
    return float(np.sum(per_code * code_importance))


def _completeness(importance: np.ndarray) -> float:
    per_factor = 1.0 - scipy.stats.entropy(importance + 1e-11, base=importance.shape[0])
    if importance.sum() == 0.0:
        importance = np.ones_like(importance)
    factor_importance = importance.sum(axis=0) / importance.sum()
    return float(np.sum(per_factor * factor_importance))
