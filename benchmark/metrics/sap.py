"""SAP (Separated Attribute Predictability), as disentanglement_lib computes it.

Paper: Kumar, Sattigeri & Balakrishnan (2018), "Variational Inference of Disentangled Latent
Concepts from Unlabeled Observations", ICLR, arXiv 1711.00848, Section 3. Reference
implementation: disentanglement_lib ``evaluation/metrics/sap_score.py``.

Protocol
--------
1. Score matrix ``S[i, j]`` (d, F):
   - discrete factors (the default, ``continuous_factors=False``): test accuracy of a
     ``sklearn.svm.LinearSVC(C=0.01, class_weight="balanced")`` fit on latent ``i`` alone
     (a single feature) to predict factor ``j``;
   - continuous factors: ``Cov(z_i, y_j)^2 / (Var z_i Var y_j)`` on the train split (ddof=1),
     0 where ``Var z_i <= 1e-12``; the test split is not used.
2. SAP = mean over factors of the gap between the largest and second-largest ``S[:, j]``.

disentanglement_lib leaves LinearSVC unseeded (its liblinear solver shuffles); here it gets
``random_state`` (0 by default), the seed patched into disentanglement_lib for the fixtures.
"""

from __future__ import annotations

from types import MappingProxyType

import numpy as np
from sklearn.svm import LinearSVC

from benchmark.metrics.arrays import train_and_test

__all__ = [
    "BATCH_SIZE",
    "CHEAP_PROTOCOL",
    "NUM_TEST",
    "NUM_TRAIN",
    "PROTOCOL",
    "sap",
    "sap_score_matrix",
]

# disentanglement_lib's unsupervised_study_v1 metric_configs/sap_score.gin
# (continuous_factors=False there).
NUM_TRAIN = 10_000
NUM_TEST = 5_000
BATCH_SIZE = 16
PROTOCOL = MappingProxyType(
    {"num_train": NUM_TRAIN, "num_test": NUM_TEST, "batch_size": BATCH_SIZE}
)
# A setting for tests and smoke runs (draws of the train and test codes).
CHEAP_PROTOCOL = MappingProxyType({"num_train": 1000, "num_test": 500, "batch_size": 16})


def sap(
    latents_train,
    factors_train,
    latents_test,
    factors_test,
    *,
    continuous_factors: bool = False,
    random_state: int = 0,
) -> float:
    """SAP score, a float in [0, 1] (dimensionless; higher is more disentangled).

    Args:
        latents_train: ``(N_train, d)`` real-valued codes (posterior means), ``d >= 2``.
        factors_train: ``(N_train, F)`` integer factor classes; each takes at least 2 classes.
        latents_test: ``(N_test, d)`` codes of other points.
        factors_test: ``(N_test, F)`` their factor classes.
        continuous_factors: treat factors as continuous (squared correlation) instead of
            discrete (per-latent linear SVM accuracy).
        random_state: seed of every LinearSVC (disentanglement_lib leaves them unseeded).

    Raises:
        ValueError: malformed input (see ``benchmark.metrics.arrays.train_and_test``) or d < 2.
    """
    matrix = sap_score_matrix(
        latents_train,
        factors_train,
        latents_test,
        factors_test,
        continuous_factors=continuous_factors,
        random_state=random_state,
    )
    ordered = np.sort(matrix, axis=0)
    return float(np.mean(ordered[-1, :] - ordered[-2, :]))


def sap_score_matrix(
    latents_train,
    factors_train,
    latents_test,
    factors_test,
    *,
    continuous_factors: bool = False,
    random_state: int = 0,
) -> np.ndarray:
    """The ``(d, F)`` score matrix of :func:`sap` (accuracies, or squared correlations)."""
    zt, yt, zs, ys = train_and_test(
        latents_train, factors_train, latents_test, factors_test, min_latents=2
    )
    num_latents, num_factors = zt.shape[1], yt.shape[1]
    matrix = np.zeros((num_latents, num_factors))
    for i in range(num_latents):
        for j in range(num_factors):
            if continuous_factors:
                cov = np.cov(zt[:, i], yt[:, j], ddof=1)
                if cov[0, 0] > 1e-12:
                    matrix[i, j] = cov[0, 1] ** 2 * 1.0 / (cov[0, 0] * cov[1, 1])
            else:
                classifier = LinearSVC(C=0.01, class_weight="balanced", random_state=random_state)
                classifier.fit(zt[:, i, np.newaxis], yt[:, j])
                pred = classifier.predict(zs[:, i, np.newaxis])
                matrix[i, j] = np.mean(pred == ys[:, j])
    return matrix
