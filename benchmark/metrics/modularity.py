"""Modularity and explicitness, as disentanglement_lib computes them.

Paper: Ridgeway & Mozer (2018), "Learning Deep Disentangled Embeddings With the F-Statistic
Loss", NeurIPS, arXiv 1802.05312, Section 3. Reference implementation: disentanglement_lib
``evaluation/metrics/modularity_explicitness.py``.

Protocol
--------
1. Modularity (train split only): each latent is discretised into ``n_bins`` equal-width bins
   and ``m[i, j]`` is the plug-in mutual information (nats) with factor ``j`` (the same
   estimator as MIG, ``benchmark.metrics.arrays``). Per latent,
   ``1 - (sum_j m[i, j]^2 - max_j m[i, j]^2) / (max_j m[i, j]^2 (F - 1))``, and 0 for a
   latent with no information about any factor; modularity is the mean over latents.
2. Explicitness: latents are standardised with the train split's mean and standard deviation
   (ddof=0); per factor a ``sklearn.linear_model.LogisticRegression`` (default
   hyper-parameters) is fit on all latents, and the score is the macro one-vs-rest ROC-AUC of
   its class probabilities on the train and on the test split; both are averaged over factors.

The logistic regressions get ``random_state`` (0 by default; with the default lbfgs solver
the seed is not used, so the numbers equal unseeded disentanglement_lib's).
A latent that is exactly constant on the train split (standard deviation 0) is standardised
to 0 rather than to NaN, where disentanglement_lib would fail.
"""

from __future__ import annotations

import numbers
from types import MappingProxyType

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import MultiLabelBinarizer

from benchmark.metrics.arrays import discrete_mutual_info, histogram_discretize, train_and_test

__all__ = [
    "BATCH_SIZE",
    "CHEAP_PROTOCOL",
    "NUM_BINS",
    "NUM_TEST",
    "NUM_TRAIN",
    "PROTOCOL",
    "modularity_explicitness",
]

# disentanglement_lib's unsupervised_study_v1 metric_configs/modularity_explicitness.gin.
NUM_TRAIN = 10_000
NUM_TEST = 5_000
BATCH_SIZE = 16
NUM_BINS = 20
PROTOCOL = MappingProxyType(
    {"num_train": NUM_TRAIN, "num_test": NUM_TEST, "batch_size": BATCH_SIZE, "num_bins": NUM_BINS}
)
# A setting for tests and smoke runs (draws of the train and test codes).
CHEAP_PROTOCOL = MappingProxyType(
    {"num_train": 1000, "num_test": 500, "batch_size": 16, "num_bins": NUM_BINS}
)


def modularity_explicitness(
    latents_train,
    factors_train,
    latents_test,
    factors_test,
    n_bins: int = NUM_BINS,
    *,
    random_state: int = 0,
) -> dict[str, float]:
    """Modularity and explicitness of a representation.

    Args:
        latents_train: ``(N_train, d)`` real-valued codes (posterior means).
        factors_train: ``(N_train, F)`` integer factor classes, ``F >= 2``; each factor takes
            at least two classes.
        latents_test: ``(N_test, d)`` codes of other points.
        factors_test: ``(N_test, F)`` their factor classes; each factor takes exactly the
            classes it takes on the train split (ROC-AUC is per class).
        n_bins: equal-width bins per latent for the mutual information (>= 2).
        random_state: seed of the logistic regressions.

    Returns:
        ``{"modularity", "explicitness_score_train", "explicitness_score_test"}``, floats in
        [0, 1] (dimensionless; higher is better).

    Raises:
        ValueError: malformed input (see ``benchmark.metrics.arrays.train_and_test``),
            F < 2, a bad ``n_bins``, or a factor whose test classes differ from its train
            classes.
    """
    if isinstance(n_bins, bool) or not isinstance(n_bins, numbers.Integral) or n_bins < 2:
        raise ValueError(f"n_bins must be an integer >= 2, got {n_bins!r}")
    zt, yt, zs, ys = train_and_test(latents_train, factors_train, latents_test, factors_test)
    num_factors = yt.shape[1]
    if num_factors < 2:
        raise ValueError(f"modularity needs at least 2 factors, got F={num_factors}")
    for j in range(num_factors):
        train_classes, test_classes = np.unique(yt[:, j]), np.unique(ys[:, j])
        if not np.array_equal(train_classes, test_classes):
            raise ValueError(
                f"factor {j} takes classes {test_classes.tolist()} on the test split but "
                f"{train_classes.tolist()} on the train split; explicitness needs the same set"
            )

    mi = discrete_mutual_info(histogram_discretize(zt, n_bins), yt, n_codes=n_bins + 1)

    mean, std = np.mean(zt, axis=0), np.std(zt, axis=0)
    std = np.where(std == 0, 1, std)
    zt_norm, zs_norm = (zt - mean) / std, (zs - mean) / std
    train_auc, test_auc = [], []
    for j in range(num_factors):
        auc_train, auc_test = _explicitness_per_factor(
            zt_norm, yt[:, j], zs_norm, ys[:, j], random_state
        )
        train_auc.append(auc_train)
        test_auc.append(auc_test)
    return {
        "modularity": _modularity(mi),
        "explicitness_score_train": float(np.mean(train_auc)),
        "explicitness_score_test": float(np.mean(test_auc)),
    }


def _explicitness_per_factor(x_train, y_train, x_test, y_test, random_state):
    clf = LogisticRegression(random_state=random_state).fit(x_train, y_train)
    mlb = MultiLabelBinarizer()
    auc_train = roc_auc_score(mlb.fit_transform(y_train[:, None]), clf.predict_proba(x_train))
    auc_test = roc_auc_score(mlb.fit_transform(y_test[:, None]), clf.predict_proba(x_test))
    return auc_train, auc_test


def _modularity(mutual_information: np.ndarray) -> float:
    squared_mi = np.square(mutual_information)
    max_squared_mi = np.max(squared_mi, axis=1)
    numerator = np.sum(squared_mi, axis=1) - max_squared_mi
    denominator = max_squared_mi * (squared_mi.shape[1] - 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):  # 0/0 rows are set to 0 below
        score = 1.0 - numerator / denominator
    score[max_squared_mi == 0.0] = 0.0
    return float(np.mean(score))
