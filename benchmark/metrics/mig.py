"""Mutual Information Gap (MIG), computed exactly as disentanglement_lib does.

Protocol
--------
MIG (Chen et al., 2018, "Isolating Sources of Disentanglement in Variational
Autoencoders", NeurIPS) is evaluated with the discrete estimator of
disentanglement_lib (Locatello et al., 2019, "Challenging Common Assumptions in
the Unsupervised Learning of Disentangled Representations", ICML;
``evaluation/metrics/mig.py`` and ``evaluation/metrics/utils.py``):

1. Representation: the *mean* of the encoder's posterior, ``E_q[z | x]``, for
   10,000 points whose ground-truth factor classes are sampled uniformly at
   random. The sampling is the caller's job; this module only scores the
   ``(latents, factors)`` pair it is given.
2. Each latent dimension is discretised on its own into 20 equal-width bins
   spanning its observed range:
   ``np.digitize(z, np.histogram(z, n_bins)[1][:-1])``. The discretisation
   uses the input's floating-point dtype (float32 stays float32), as
   disentanglement_lib would.
3. ``m[i, j]`` is the plug-in (empirical-frequency) mutual information, in nats,
   between discretised latent ``i`` and factor ``j`` — the value
   ``sklearn.metrics.mutual_info_score(factors[:, j], discretised[:, i])`` —
   and ``H[j] = mutual_info_score(factors[:, j], factors[:, j])`` is the
   plug-in entropy of factor ``j``.
4. For each factor, the gap between the largest and second-largest ``m[:, j]``
   is normalised by ``H[j]``; MIG is the mean of these gaps over factors.

The mutual information is computed here from a vectorised contingency table
(one ``np.bincount`` per factor over all latents) with the same floating-point
formula as scikit-learn, so the numbers agree with the reference
implementation to machine precision at a fraction of its cost.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

from benchmark.metrics.arrays import to_numpy

__all__ = ["MIGResult", "mig", "mig_details"]

_EPS = np.finfo(np.float64).eps


@dataclass(frozen=True, eq=False)
class MIGResult:
    """Full output of :func:`mig_details`.

    Attributes:
        score: the MIG, ``mean(gaps_per_factor)``.
        gaps_per_factor: ``(F,)`` normalised gap
            ``(top1 MI - top2 MI) / H[factor]`` of each factor.
        mutual_info: ``(d, F)`` plug-in mutual information (nats) between each
            discretised latent and each factor.
        factor_entropy: ``(F,)`` plug-in entropy (nats) of each factor.

    The arrays are read-only.
    """

    score: float
    gaps_per_factor: np.ndarray
    mutual_info: np.ndarray
    factor_entropy: np.ndarray


def mig(latents, factors, n_bins: int = 20) -> float:
    """Mutual Information Gap of ``latents`` (N, d) w.r.t. ``factors`` (N, F).

    See :func:`mig_details` for the arguments and the module docstring for the
    protocol.
    """
    return mig_details(latents, factors, n_bins=n_bins).score


def mig_details(latents, factors, n_bins: int = 20) -> MIGResult:
    """MIG with its intermediate quantities.

    Args:
        latents: ``(N, d)`` real-valued representation (numpy array or torch
            tensor), normally the posterior means; ``d >= 2``.
        factors: ``(N, F)`` ground-truth factor classes: an integer (or bool)
            array, or a floating array holding only integral values. Every
            factor must take at least two distinct values.
        n_bins: number of equal-width bins per latent (>= 2; 20 in the
            benchmark protocol).

    Returns:
        A :class:`MIGResult`.

    Raises:
        ValueError: on malformed input (see the messages).
    """
    z, y = _validate(latents, factors, n_bins)
    n, d = z.shape

    # Discretise each latent separately (disentanglement_lib's make_discretizer).
    # Codes are in 1..n_bins; one spare slot keeps the table safe regardless.
    n_codes = n_bins + 1
    codes = np.empty((n, d), dtype=np.int64)
    for i in range(d):
        col = z[:, i]
        codes[:, i] = np.digitize(col, np.histogram_bin_edges(col, n_bins)[:-1])

    latent_idx = np.arange(d, dtype=np.int64)[None, :]
    log_n = math.log(n)
    num_factors = y.shape[1]
    mi = np.empty((d, num_factors), dtype=np.float64)
    entropy = np.empty(num_factors, dtype=np.float64)

    for j in range(num_factors):
        _, f, pi = np.unique(y[:, j], return_inverse=True, return_counts=True)
        f = f.reshape(-1).astype(np.int64, copy=False)
        pi = pi.astype(np.int64, copy=False)
        k = pi.size
        entropy[j] = _plugin_mi_sum(_plugin_mi_terms(pi, pi, pi, n, log_n))

        # Joint contingency table (d, k, n_codes) of all latents with factor j at once.
        joint = (latent_idx * k + f[:, None]) * n_codes + codes
        table = np.bincount(joint.ravel(), minlength=d * k * n_codes).reshape(d, k, n_codes)
        pj = table.sum(axis=1)  # (d, n_codes): latent-bin counts

        nz_lat, nz_cls, nz_bin = np.nonzero(table)  # row-major, like scipy's find()
        terms = _plugin_mi_terms(
            table[nz_lat, nz_cls, nz_bin], pi[nz_cls], pj[nz_lat, nz_bin], n, log_n
        )
        bounds = np.searchsorted(nz_lat, np.arange(d + 1))
        occupied = np.count_nonzero(pj, axis=1)
        for i in range(d):
            # A latent confined to one bin has zero entropy, hence MI = 0 (sklearn's rule).
            mi[i, j] = 0.0 if occupied[i] == 1 else _plugin_mi_sum(terms[bounds[i] : bounds[i + 1]])

    sorted_m = np.sort(mi, axis=0)[::-1]
    gaps = np.divide(sorted_m[0, :] - sorted_m[1, :], entropy)
    score = float(np.mean(gaps))
    for arr in (gaps, mi, entropy):
        arr.setflags(write=False)
    return MIGResult(score=score, gaps_per_factor=gaps, mutual_info=mi, factor_entropy=entropy)


def _plugin_mi_terms(nz_val, pi_take, pj_take, n: int, log_n: float) -> np.ndarray:
    """Per-cell plug-in MI terms, with scikit-learn's exact arithmetic."""
    log_contingency_nm = np.log(nz_val)
    contingency_nm = nz_val / n
    outer = pi_take.astype(np.int64, copy=False) * pj_take.astype(np.int64, copy=False)
    log_outer = -np.log(outer) + log_n + log_n
    terms = contingency_nm * (log_contingency_nm - log_n) + contingency_nm * log_outer
    return np.where(np.abs(terms) < _EPS, 0.0, terms)


def _plugin_mi_sum(terms: np.ndarray) -> float:
    return float(np.clip(terms.sum(), 0.0, None))


def _validate(latents, factors, n_bins) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(n_bins, bool) or not isinstance(n_bins, numbers.Integral):
        raise ValueError(f"n_bins must be an integer >= 2, got {n_bins!r}")
    if n_bins < 2:
        raise ValueError(f"n_bins must be >= 2, got {n_bins}")

    z = to_numpy(latents, "latents")
    y = to_numpy(factors, "factors")
    if z.ndim != 2:
        raise ValueError(f"latents must be 2-D (N, d), got ndim={z.ndim} with shape {z.shape}")
    if y.ndim != 2:
        raise ValueError(f"factors must be 2-D (N, F), got ndim={y.ndim} with shape {y.shape}")
    if z.shape[0] != y.shape[0]:
        raise ValueError(
            f"latents and factors must have the same number of points N, "
            f"got {z.shape[0]} and {y.shape[0]}"
        )
    if z.shape[0] == 0:
        raise ValueError("latents and factors are empty (N = 0)")
    if z.shape[1] < 2:
        raise ValueError(
            f"MIG needs at least 2 latent dimensions (it is a gap between the top two), "
            f"got d={z.shape[1]}"
        )
    if y.shape[1] < 1:
        raise ValueError("factors must have at least one column (F >= 1), got F=0")

    if z.dtype.kind not in "iuf":
        raise ValueError(f"latents must be real-valued numbers, got dtype {z.dtype}")
    if not np.all(np.isfinite(z)):
        bad = np.unique(np.nonzero(~np.isfinite(z))[1]).tolist()
        raise ValueError(f"latents contain NaN or inf values (latent dims {bad})")

    if y.dtype.kind == "b":
        y = y.astype(np.int64)
    elif y.dtype.kind == "f":
        if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
            raise ValueError(
                "factors must be integer class labels; got non-integer (or non-finite) values"
            )
    elif y.dtype.kind not in "iu":
        raise ValueError(f"factors must be integer class labels, got dtype {y.dtype}")

    for j in range(y.shape[1]):
        col = y[:, j]
        if np.all(col == col[0]):
            raise ValueError(
                f"factor {j} takes a single value ({col[0]!r}) over all points: its entropy is 0 "
                f"and the MIG normalisation is undefined"
            )
    return z, y
