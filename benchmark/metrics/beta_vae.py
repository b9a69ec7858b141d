"""BetaVAE score (Higgins et al. 2017), as disentanglement_lib computes it.

Paper: Higgins et al. (2017), "beta-VAE: Learning Basic Visual Concepts with a Constrained
Variational Framework", ICLR (https://openreview.net/forum?id=Sy2fzU9gl; no arXiv id).
Reference implementation: disentanglement_lib ``evaluation/metrics/beta_vae.py``
(``compute_beta_vae_sklearn``).

Protocol
--------
1. One point: draw a factor ``k`` uniformly, draw two batches of ``batch_size`` factor vectors
   and copy factor ``k`` of the first batch into the second; encode both batches'
   observations; the feature is the mean over the batch of ``|z1 - z2|`` (d values) and the
   label is ``k``.
2. A ``sklearn.linear_model.LogisticRegression`` (default hyper-parameters, given
   ``random_state`` as disentanglement_lib does; the lbfgs solver draws nothing from it) is fit
   on ``num_train`` points; the score is its accuracy on ``num_eval`` fresh points
   (``eval_accuracy``; ``train_accuracy`` on the training points).

The random draws are the same, in the same order, as disentanglement_lib's; see
``benchmark.metrics.ground_truth`` for the sampler and representation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import MappingProxyType

import numpy as np
from sklearn.linear_model import LogisticRegression

from benchmark.metrics.ground_truth import (
    GroundTruthData,
    RandomState,
    as_random_state,
    check_counts,
    encode_factor_batches,
    randint,
)

__all__ = ["BATCH_SIZE", "CHEAP_PROTOCOL", "NUM_EVAL", "NUM_TRAIN", "PROTOCOL", "beta_vae_score"]

# disentanglement_lib's unsupervised_study_v1 metric_configs/beta_vae_sklearn.gin.
BATCH_SIZE = 64
NUM_TRAIN = 10_000
NUM_EVAL = 5_000
PROTOCOL = MappingProxyType(
    {"batch_size": BATCH_SIZE, "num_train": NUM_TRAIN, "num_eval": NUM_EVAL}
)
# A setting for tests and smoke runs.
CHEAP_PROTOCOL = MappingProxyType({"batch_size": 16, "num_train": 500, "num_eval": 300})


def beta_vae_score(
    ground_truth_data: GroundTruthData,
    representation_function: Callable,
    random_state: int | RandomState = 0,
    *,
    batch_size: int = BATCH_SIZE,
    num_train: int = NUM_TRAIN,
    num_eval: int = NUM_EVAL,
) -> dict[str, float]:
    """BetaVAE score of a representation.

    Args:
        ground_truth_data: the factor sampler (see ``benchmark.metrics.ground_truth``).
        representation_function: observations ``(n, ...)`` -> codes ``(n, d)``, normally the
            posterior means.
        random_state: RandomState, Generator or int seed (-> ``RandomState(seed)``).
        batch_size: pairs averaged per point (>= 1).
        num_train, num_eval: points to fit and to score the classifier (>= 1); the training
            points must contain at least two distinct labels.

    Returns:
        ``{"train_accuracy", "eval_accuracy"}``, accuracies in [0, 1]; the score is
        ``eval_accuracy`` (chance is about 1/F).

    Raises:
        ValueError: bad counts, random_state or representation shape; from scikit-learn, a
            training set with a single label.
    """
    check_counts(batch_size=batch_size, num_train=num_train, num_eval=num_eval)
    rs = as_random_state(random_state)
    num_factors = int(ground_truth_data.num_factors)

    def points(num_points: int) -> tuple[np.ndarray, np.ndarray]:
        labels = np.zeros(num_points, dtype=np.int64)

        def draws() -> Iterator[np.ndarray]:
            for i in range(num_points):
                labels[i] = randint(rs, num_factors)
                factors1 = ground_truth_data.sample_factors(batch_size, rs)
                factors2 = ground_truth_data.sample_factors(batch_size, rs)
                factors2[:, labels[i]] = factors1[:, labels[i]]
                yield factors1
                yield factors2

        encoded = encode_factor_batches(ground_truth_data, representation_function, draws(), rs)
        features = None
        for i in range(num_points):
            rep1, rep2 = next(encoded), next(encoded)
            feature = np.mean(np.abs(rep1 - rep2), axis=0)
            if features is None:
                features = np.zeros((num_points, feature.shape[0]))
            features[i, :] = feature
        return features, labels

    train_points, train_labels = points(num_train)
    model = LogisticRegression(random_state=rs)
    model.fit(train_points, train_labels)
    train_accuracy = np.mean(model.predict(train_points) == train_labels)
    eval_points, eval_labels = points(num_eval)
    eval_accuracy = model.score(eval_points, eval_labels)
    return {"train_accuracy": float(train_accuracy), "eval_accuracy": float(eval_accuracy)}
