"""FactorVAE score (Kim & Mnih 2018), as disentanglement_lib computes it.

Paper: Kim & Mnih (2018), "Disentangling by Factorising", ICML, arXiv 1802.05983, Section 4.
Reference implementation: disentanglement_lib ``evaluation/metrics/factor_vae.py``.

Protocol
--------
1. Global scale: the variance (ddof=1) of each code dimension over ``num_variance_estimate``
   fresh observations. Dimensions whose standard deviation is below ``prune_threshold`` (0.05,
   disentanglement_lib's ``prune_dims.threshold``) have collapsed and are left out.
2. One vote: draw a factor ``k`` uniformly, draw ``batch_size`` factor vectors and set factor
   ``k`` of all of them to that of the first; encode their observations; the vote is
   ``(k, argmin over active dims of Var_batch(z) / Var_global(z))``.
3. ``num_train`` votes make a majority-vote classifier (for each dimension, the factor it was
   most often the argmin for); the score is its accuracy on ``num_eval`` fresh votes
   (``eval_accuracy``; ``train_accuracy`` on the training votes).

The random draws (``random_state``) are the same, in the same order, as disentanglement_lib's
``compute_factor_vae``: given the same sampler, representation and RandomState the votes and
scores are equal. See ``benchmark.metrics.ground_truth`` for the sampler and representation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import MappingProxyType

import numpy as np

from benchmark.metrics.ground_truth import (
    GroundTruthData,
    RandomState,
    as_random_state,
    check_counts,
    encode_factor_batches,
    randint,
)

__all__ = [
    "BATCH_SIZE",
    "CHEAP_PROTOCOL",
    "NUM_EVAL",
    "NUM_TRAIN",
    "NUM_VARIANCE_ESTIMATE",
    "PROTOCOL",
    "PRUNE_THRESHOLD",
    "factor_vae_score",
]

# disentanglement_lib's unsupervised_study_v1 metric_configs/factor_vae_metric.gin.
BATCH_SIZE = 64
NUM_TRAIN = 10_000
NUM_EVAL = 5_000
NUM_VARIANCE_ESTIMATE = 10_000
PRUNE_THRESHOLD = 0.05
PROTOCOL = MappingProxyType({
    "batch_size": BATCH_SIZE,
    "num_train": NUM_TRAIN,
    "num_eval": NUM_EVAL,
    "num_variance_estimate": NUM_VARIANCE_ESTIMATE,
    "prune_threshold": PRUNE_THRESHOLD,
})  # fmt: skip
# A setting for tests and smoke runs: ~1/40 of the observations.
CHEAP_PROTOCOL = MappingProxyType({
    "batch_size": 16,
    "num_train": 500,
    "num_eval": 300,
    "num_variance_estimate": 1000,
    "prune_threshold": PRUNE_THRESHOLD,
})  # fmt: skip


def factor_vae_score(
    ground_truth_data: GroundTruthData,
    representation_function: Callable,
    random_state: int | RandomState = 0,
    *,
    batch_size: int = BATCH_SIZE,
    num_train: int = NUM_TRAIN,
    num_eval: int = NUM_EVAL,
    num_variance_estimate: int = NUM_VARIANCE_ESTIMATE,
    prune_threshold: float = PRUNE_THRESHOLD,
) -> dict[str, float]:
    """FactorVAE score of a representation.

    Args:
        ground_truth_data: the factor sampler (see ``benchmark.metrics.ground_truth``).
        representation_function: observations ``(n, ...)`` -> codes ``(n, d)``, normally the
            posterior means.
        random_state: RandomState, Generator or int seed (-> ``RandomState(seed)``).
        batch_size: points per vote (>= 2: a variance needs two).
        num_train, num_eval: votes to build the classifier and to score it (>= 1).
        num_variance_estimate: points for the global variances (>= 2).
        prune_threshold: dimensions with global standard deviation below it are ignored.

    Returns:
        ``{"train_accuracy", "eval_accuracy", "num_active_dims"}``: accuracies in [0, 1]
        (the score is ``eval_accuracy``; chance is about 1/F), and the number of code
        dimensions kept. With no active dimension both accuracies are 0, as in
        disentanglement_lib. (disentanglement_lib reports ``num_active_dims`` as d, the length
        of its mask; this is the count of active dimensions.)

    Raises:
        ValueError: bad counts, random_state or representation shape.
    """
    check_counts(batch_size=batch_size, num_train=num_train, num_eval=num_eval,
                  num_variance_estimate=num_variance_estimate)  # fmt: skip
    rs = as_random_state(random_state)
    num_factors = int(ground_truth_data.num_factors)

    factors = ground_truth_data.sample_factors(num_variance_estimate, rs)
    # One observation call, as disentanglement_lib, unless they draw nothing: then in chunks.
    chunks = [factors]
    if getattr(ground_truth_data, "deterministic_observations", False):
        chunks = np.array_split(factors, range(64, len(factors), 64))
    encoded = encode_factor_batches(ground_truth_data, representation_function, iter(chunks), rs)
    codes = np.concatenate(list(encoded))
    global_variances = np.var(codes, axis=0, ddof=1)
    active_dims = np.sqrt(global_variances) >= prune_threshold
    if not active_dims.any():
        return {"train_accuracy": 0.0, "eval_accuracy": 0.0, "num_active_dims": 0}

    def votes(num_points: int) -> np.ndarray:
        table = np.zeros((num_factors, global_variances.shape[0]), dtype=np.int64)
        chosen: list[int] = []

        def draws() -> Iterator[np.ndarray]:
            for _ in range(num_points):
                factor_index = int(randint(rs, num_factors))
                batch = ground_truth_data.sample_factors(batch_size, rs)
                batch[:, factor_index] = batch[0, factor_index]
                chosen.append(factor_index)
                yield batch

        encoded = encode_factor_batches(ground_truth_data, representation_function, draws(), rs)
        for i, reps in enumerate(encoded):
            local_variances = np.var(reps, axis=0, ddof=1)
            argmin = np.argmin(local_variances[active_dims] / global_variances[active_dims])
            table[chosen[i], argmin] += 1
        return table

    training_votes = votes(num_train)
    classifier = np.argmax(training_votes, axis=0)
    other_index = np.arange(training_votes.shape[1])
    train_accuracy = np.sum(training_votes[classifier, other_index]) / np.sum(training_votes)
    eval_votes = votes(num_eval)
    eval_accuracy = np.sum(eval_votes[classifier, other_index]) / np.sum(eval_votes)
    return {
        "train_accuracy": float(train_accuracy),
        "eval_accuracy": float(eval_accuracy),
        "num_active_dims": int(np.count_nonzero(active_dims)),
    }
