"""Ground-truth samplers for the metrics that draw their own observations.

The FactorVAE and BetaVAE scores (``benchmark.metrics.factor_vae``, ``beta_vae``) do not score
a fixed set of codes: they choose factor values (one factor fixed across a batch), ask for
observations of exactly those values and encode them. They take, as disentanglement_lib's
(Locatello et al. 2019, arXiv 1811.12359, ``data/ground_truth/ground_truth_data.py``) do:

- ``ground_truth_data``: any object with ``num_factors``, ``sample_factors(n, random_state)``
  -> ``(n, F)`` integer classes, and ``sample_observations_from_factors(factors,
  random_state)`` -> ``n`` observations (a disentanglement_lib ``GroundTruthData`` works
  as is). An optional ``deterministic_observations = True`` says the observations do not draw
  from ``random_state``; the metrics then request them for many batches at once, which draws
  the same numbers in the same order as disentanglement_lib, with far fewer calls.
- ``representation_function``: observations ``(n, ...)`` -> codes ``(n, d)`` (numpy or
  torch), point by point (its output for one point must not depend on the others in the call).
- ``random_state``: a ``np.random.RandomState`` (as disentanglement_lib), a
  ``np.random.Generator``, or an int seed, which becomes ``np.random.RandomState(seed)`` as in
  disentanglement_lib's ``evaluate`` (``evaluation.random_seed = 0`` in its configs).

:class:`FactorGrid` adapts a factor grid with an image function, e.g. the project's
dSprites-like renderer (:func:`dsprites_like`); factors of size 1 are dropped from what the
metrics see (a constant factor has no batch to fix and no class to predict).

disentanglement_lib's protocol in a trial, one RandomState for all draws of a metric::

    grid, rep = dsprites_like(resolution), posterior_means(model, device)
    rs = np.random.RandomState(0)
    z_train, y_train = sample_codes(grid, rep, dci.NUM_TRAIN, rs)  # then the test draws
    z_test, y_test = sample_codes(grid, rep, dci.NUM_TEST, rs)
    scores = dci.dci(z_train, y_train, z_test, y_test)
    fvae = factor_vae.factor_vae_score(grid, rep, 0, **factor_vae.PROTOCOL)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from benchmark.metrics.arrays import to_numpy

__all__ = [
    "FactorGrid",
    "GroundTruthData",
    "RandomState",
    "as_random_state",
    "check_counts",
    "dsprites_like",
    "encode",
    "posterior_means",
    "randint",
    "sample_codes",
]

RandomState = np.random.RandomState | np.random.Generator

# Observations requested per call when they are deterministic: bounds the memory of one call
# (8192 images of 64x64 float32 are 128 MB) while keeping the encoder's batches large.
MAX_OBSERVATIONS_PER_CALL = 8192


class GroundTruthData(Protocol):
    """What the FactorVAE/BetaVAE scores need from a dataset (disentanglement_lib's API)."""

    @property
    def num_factors(self) -> int:
        """F, the number of ground-truth factors."""
        ...

    def sample_factors(self, num: int, random_state: RandomState) -> np.ndarray:
        """`num` factor vectors (num, F) of integer classes drawn from `random_state`."""
        ...

    def sample_observations_from_factors(
        self, factors: np.ndarray, random_state: RandomState
    ) -> Any:
        """Observations (N, C, H, W) in [0, 1] for the factors (N, F); may draw from it."""
        ...


def as_random_state(random_state: int | RandomState) -> RandomState:
    """An int seed as ``np.random.RandomState(seed)``; a RandomState/Generator unchanged.

    Raises:
        ValueError: anything else (bool included).
    """
    if isinstance(random_state, np.random.RandomState | np.random.Generator):
        return random_state
    if isinstance(random_state, int | np.integer) and not isinstance(random_state, bool):
        return np.random.RandomState(int(random_state))
    raise ValueError(
        f"random_state must be an int seed, np.random.RandomState or np.random.Generator, "
        f"got {type(random_state).__name__}"
    )


def randint(random_state: RandomState, high: int, size: int | None = None):
    """Uniform integers in ``[0, high)``: ``randint`` of a RandomState (disentanglement_lib's
    draw), ``integers`` of a Generator."""
    if isinstance(random_state, np.random.Generator):
        return random_state.integers(0, high, size=size)
    return random_state.randint(high, size=size)


def check_counts(**counts: int) -> None:
    """Each count an integer >= 1 (``batch_size`` and ``num_variance_estimate``: >= 2).

    Raises:
        ValueError: naming the first bad count.
    """
    minimum = {"batch_size": 2, "num_variance_estimate": 2}
    for name, value in counts.items():
        low = minimum.get(name, 1)
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


def encode(representation_function: Callable, observations) -> np.ndarray:
    """``representation_function(observations)`` as a 2-D numpy array (dtype kept).

    Raises:
        ValueError: the output is not ``(n, d)`` for ``n`` observations.
    """
    codes = to_numpy(representation_function(observations), "representation")
    n = len(observations)
    if codes.ndim != 2 or codes.shape[0] != n:
        raise ValueError(
            f"representation_function must return (n, d) codes for n={n} observations, got "
            f"shape {codes.shape}"
        )
    return codes


def encode_factor_batches(
    ground_truth_data: GroundTruthData,
    representation_function: Callable,
    factor_batches: Iterator[np.ndarray],
    random_state: RandomState,
) -> Iterator[np.ndarray]:
    """Codes of each factor batch, in order, drawing observations as disentanglement_lib does.

    ``factor_batches`` is consumed lazily: when the observations draw from ``random_state``,
    each batch is observed right after it is drawn (disentanglement_lib's interleaving);
    when they are deterministic, batches are pooled into calls of up to
    ``MAX_OBSERVATIONS_PER_CALL`` observations.
    """
    if not getattr(ground_truth_data, "deterministic_observations", False):
        for factors in factor_batches:
            obs = ground_truth_data.sample_observations_from_factors(factors, random_state)
            yield encode(representation_function, obs)
        return
    pending: list[np.ndarray] = []
    pooled = 0
    for factors in factor_batches:
        pending.append(factors)
        pooled += len(factors)
        if pooled >= MAX_OBSERVATIONS_PER_CALL:
            yield from _encode_pooled(
                ground_truth_data, representation_function, pending, random_state
            )
            pending, pooled = [], 0
    if pending:
        yield from _encode_pooled(ground_truth_data, representation_function, pending, random_state)


def _encode_pooled(ground_truth_data, representation_function, pending, random_state):
    factors = np.concatenate(pending)
    obs = ground_truth_data.sample_observations_from_factors(factors, random_state)
    codes = encode(representation_function, obs)
    start = 0
    for batch in pending:
        yield codes[start : start + len(batch)]
        start += len(batch)


def sample_codes(
    ground_truth_data: GroundTruthData,
    representation_function: Callable,
    num_points: int,
    random_state: int | RandomState,
    batch_size: int = 16,
) -> tuple[np.ndarray, np.ndarray]:
    """Codes and factors of ``num_points`` fresh draws: disentanglement_lib's
    ``generate_batch_factor_code``, which makes the train and test sets of DCI, SAP,
    modularity and MIG (``batch_size`` points drawn per call, 16 in its configs).

    Returns:
        ``(codes (num_points, d), factors (num_points, F))``; the inputs of
        ``benchmark.metrics.dci`` and the like.
    """
    rs = as_random_state(random_state)
    sizes = [min(batch_size, num_points - i) for i in range(0, num_points, batch_size)]
    factors: list[np.ndarray] = []

    def draws():
        for n in sizes:
            factors.append(ground_truth_data.sample_factors(n, rs))
            yield factors[-1]

    codes = list(encode_factor_batches(ground_truth_data, representation_function, draws(), rs))
    return np.concatenate(codes), np.concatenate(factors)


@dataclass(frozen=True, eq=False)
class FactorGrid:
    """A grid of discrete factors with an image function, as a ``GroundTruthData``.

    Attributes:
        factor_sizes: classes per factor of the full grid (e.g. dSprites' (3, 6, 40, 32, 32)).
        observe: ``(n, len(factor_sizes))`` int64 classes -> ``n`` observations; must not draw
            randomness (so ``deterministic_observations`` is True).

    The metrics see only the factors with more than one class (``num_factors`` of them);
    ``sample_observations_from_factors`` puts class 0 back for the dropped ones. Each factor is
    drawn uniformly and independently, column by column, as disentanglement_lib's
    ``SplitDiscreteStateSpace.sample_latent_factors``.
    """

    factor_sizes: tuple[int, ...]
    observe: Callable[[np.ndarray], Any]
    deterministic_observations: bool = True

    @property
    def varying(self) -> tuple[int, ...]:
        """Indices of the factors with more than one class."""
        return tuple(j for j, s in enumerate(self.factor_sizes) if s > 1)

    @property
    def num_factors(self) -> int:
        """Number of factors the metrics see (size-1 factors dropped)."""
        return len(self.varying)

    @property
    def factors_num_values(self) -> list[int]:
        """Classes of each factor the metrics see."""
        return [self.factor_sizes[j] for j in self.varying]

    def sample_factors(self, num: int, random_state: RandomState) -> np.ndarray:
        """``(num, num_factors)`` int64 classes, each factor uniform and independent."""
        out = np.zeros((num, self.num_factors), dtype=np.int64)
        for pos, j in enumerate(self.varying):
            out[:, pos] = randint(random_state, self.factor_sizes[j], size=num)
        return out

    def sample_observations_from_factors(self, factors: np.ndarray, random_state: RandomState):
        """Observations of ``(n, num_factors)`` classes; ``random_state`` is not used."""
        del random_state
        factors = np.asarray(factors, dtype=np.int64)
        full = np.zeros((len(factors), len(self.factor_sizes)), dtype=np.int64)
        full[:, list(self.varying)] = factors
        return self.observe(full)


@dataclass(frozen=True)
class _RenderImages:
    resolution: int

    def __call__(self, classes: np.ndarray):
        # Imported here so that the metric modules stay free of torch and the data package.
        from benchmark.data.dsprites import _to_tensor, render

        return _to_tensor(render(classes, self.resolution))


def dsprites_like(resolution: int) -> FactorGrid:
    """The project's dSprites-like renderer as a ``GroundTruthData``.

    Observations are float32 torch tensors ``(n, 1, resolution, resolution)`` in {0, 1}, the
    same images (and factor order: shape, scale, orientation, posX, posY) as
    ``benchmark.data.dsprites.render``; the five factors all vary, so none is dropped.
    """
    from benchmark.data.dsprites import FACTOR_SIZES, check_resolution

    return FactorGrid(FACTOR_SIZES, _RenderImages(check_resolution(resolution)))


@dataclass(frozen=True, eq=False)
class _PosteriorMeans:
    model: Any
    device: Any
    batch_size: int

    def __call__(self, observations) -> np.ndarray:
        import torch

        with torch.no_grad():
            return torch.cat([
                self.model.encode(observations[i : i + self.batch_size].to(self.device)).mean.cpu()
                for i in range(0, len(observations), self.batch_size)
            ]).numpy()  # fmt: skip


def posterior_means(model, device, batch_size: int = 1000) -> Callable:
    """The representation disentanglement_lib scores (its ``mean`` postprocessing): images
    ``(n, C, H, W)`` float32 tensor -> ``(n, d)`` posterior means ``E_q[z | x]`` of a
    ``variants.base.Variant`` in eval mode, encoded ``batch_size`` at a time on ``device``.

    Raises:
        ValueError: the variant needs labels (its code is conditioned on a factor, so the
            sampled scores, whose representation sees images only, do not apply) or has
            discrete latents.
    """
    if getattr(model, "needs_labels", False):
        raise ValueError(f"{model.name} needs labels: the sampled scores do not apply")
    if not getattr(model, "continuous_latents", True):
        raise ValueError(f"{model.name} has discrete latents: no posterior mean to score")
    return _PosteriorMeans(model, device, batch_size)
