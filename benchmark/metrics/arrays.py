"""Metric inputs as numpy arrays, and the discrete estimators the factor metrics share.

- :func:`to_numpy`: numpy or torch input as an ndarray.
- :func:`latents_and_factors`: the common checks of a ``(latents (N, d), factors (N, F))`` pair.
- :func:`histogram_discretize` and :func:`discrete_mutual_info`: disentanglement_lib's
  histogram discretiser and plug-in mutual information (``evaluation/metrics/utils.py``:
  ``_histogram_discretize``, ``discrete_mutual_info``, ``discrete_entropy``), used by MIG
  (Chen et al. 2018, arXiv 1802.04942) and modularity (Ridgeway & Mozer 2018,
  arXiv 1802.05312).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "discrete_entropy",
    "discrete_mutual_info",
    "histogram_discretize",
    "latents_and_factors",
    "to_numpy",
    "train_and_test",
]

_EPS = np.finfo(np.float64).eps


def to_numpy(x, name: str) -> np.ndarray:
    """`x` as an ndarray; torch tensors are detected without importing torch."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        t = x.detach().cpu()
        try:
            return t.numpy()
        except TypeError:  # e.g. bfloat16, which numpy lacks
            return t.float().numpy()
    try:
        return np.asarray(x)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} could not be converted to a numpy array: {exc}") from exc


def latents_and_factors(
    latents, factors, *, latents_name: str = "latents", factors_name: str = "factors"
) -> tuple[np.ndarray, np.ndarray]:
    """Check a representation and its ground-truth factor classes; return them as ndarrays.

    Args:
        latents: ``(N, d)`` real-valued codes (numpy or torch), finite; dtype kept.
        factors: ``(N, F)`` factor classes: integer or bool, or floats holding integral values;
            ``F >= 1``. Bool becomes int64; other dtypes are kept.
        latents_name, factors_name: the argument names used in the messages.

    Returns:
        ``(z, y)`` as numpy arrays.

    Raises:
        ValueError: wrong rank, different N, N = 0, F = 0, non-real or non-finite latents,
            non-integral factors.
    """
    z = to_numpy(latents, latents_name)
    y = to_numpy(factors, factors_name)
    if z.ndim != 2:
        raise ValueError(
            f"{latents_name} must be 2-D (N, d), got ndim={z.ndim} with shape {z.shape}"
        )
    if y.ndim != 2:
        raise ValueError(
            f"{factors_name} must be 2-D (N, F), got ndim={y.ndim} with shape {y.shape}"
        )
    if z.shape[0] != y.shape[0]:
        raise ValueError(
            f"{latents_name} and {factors_name} must have the same number of points N, "
            f"got {z.shape[0]} and {y.shape[0]}"
        )
    if z.shape[0] == 0:
        raise ValueError(f"{latents_name} and {factors_name} are empty (N = 0)")
    if y.shape[1] < 1:
        raise ValueError(f"{factors_name} must have at least one column (F >= 1), got F=0")
    if z.dtype.kind not in "iuf":
        raise ValueError(f"{latents_name} must be real-valued numbers, got dtype {z.dtype}")
    if not np.all(np.isfinite(z)):
        bad = np.unique(np.nonzero(~np.isfinite(z))[1]).tolist()
        raise ValueError(f"{latents_name} contain NaN or inf values (latent dims {bad})")
    if y.dtype.kind == "b":
        y = y.astype(np.int64)
    elif y.dtype.kind == "f":
        if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
            raise ValueError(
                f"{factors_name} must be integer class labels; got non-integer (or non-finite) "
                f"values"
            )
    elif y.dtype.kind not in "iu":
        raise ValueError(f"{factors_name} must be integer class labels, got dtype {y.dtype}")
    return z, y


def train_and_test(
    latents_train, factors_train, latents_test, factors_test, *, min_latents: int = 1
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Check the train and test pairs of a classifier-based factor metric.

    Each pair is checked by :func:`latents_and_factors`; both must have the same d and F, d must
    be at least ``min_latents``, and every factor must take at least two classes on the train
    split (a classifier cannot be fit on one class: drop constant factors before).

    Returns:
        ``(z_train, y_train, z_test, y_test)`` as numpy arrays.

    Raises:
        ValueError: on any of the above.
    """
    zt, yt = latents_and_factors(latents_train, factors_train, latents_name="latents_train",
                                 factors_name="factors_train")  # fmt: skip
    zs, ys = latents_and_factors(latents_test, factors_test, latents_name="latents_test",
                                 factors_name="factors_test")  # fmt: skip
    if zt.shape[1] != zs.shape[1]:
        raise ValueError(
            f"latents_train and latents_test must have the same d, got {zt.shape[1]} and "
            f"{zs.shape[1]}"
        )
    if yt.shape[1] != ys.shape[1]:
        raise ValueError(
            f"factors_train and factors_test must have the same F, got {yt.shape[1]} and "
            f"{ys.shape[1]}"
        )
    if zt.shape[1] < min_latents:
        raise ValueError(f"need at least {min_latents} latent dimensions, got d={zt.shape[1]}")
    constant = constant_factor(yt)
    if constant is not None:
        j, value = constant
        raise ValueError(
            f"factor {j} takes a single value ({value!r}) over all training points: a "
            f"classifier needs two classes; drop constant factors"
        )
    return zt, yt, zs, ys


def constant_factor(factors: np.ndarray) -> tuple[int, object] | None:
    """(j, value) of the first column of `factors` (N, F) holding one value only, or None."""
    for j in range(factors.shape[1]):
        col = factors[:, j]
        if np.all(col == col[0]):
            return j, col[0]
    return None


def histogram_discretize(latents: np.ndarray, n_bins: int) -> np.ndarray:
    """disentanglement_lib's ``_histogram_discretize`` on an ``(N, d)`` array.

    Each column is binned on its own into ``n_bins`` equal-width bins over its observed range,
    ``np.digitize(z, np.histogram(z, n_bins)[1][:-1])``, in the input's floating dtype.

    Returns:
        ``(N, d)`` int64 bin codes in ``1..n_bins``.
    """
    codes = np.empty(latents.shape, dtype=np.int64)
    for i in range(latents.shape[1]):
        col = latents[:, i]
        codes[:, i] = np.digitize(col, np.histogram_bin_edges(col, n_bins)[:-1])
    return codes


def discrete_mutual_info(codes: np.ndarray, factors: np.ndarray, n_codes: int) -> np.ndarray:
    """Plug-in mutual information (nats) of each code column with each factor column.

    Equals ``sklearn.metrics.mutual_info_score(factors[:, j], codes[:, i])`` to machine
    precision (the same floating-point formula), from one ``np.bincount`` per factor.

    Args:
        codes: ``(N, d)`` int64 codes in ``0..n_codes-1`` (e.g. :func:`histogram_discretize`
            with ``n_codes = n_bins + 1``).
        factors: ``(N, F)`` integer classes (any values).
        n_codes: an upper bound of the codes.

    Returns:
        ``(d, F)`` float64 array.
    """
    n, d = codes.shape
    latent_idx = np.arange(d, dtype=np.int64)[None, :]
    log_n = math.log(n)
    mi = np.empty((d, factors.shape[1]), dtype=np.float64)
    for j in range(factors.shape[1]):
        _, f, pi = np.unique(factors[:, j], return_inverse=True, return_counts=True)
        f = f.reshape(-1).astype(np.int64, copy=False)
        pi = pi.astype(np.int64, copy=False)
        k = pi.size
        # Joint contingency table (d, k, n_codes) of all codes with factor j at once.
        joint = (latent_idx * k + f[:, None]) * n_codes + codes
        table = np.bincount(joint.ravel(), minlength=d * k * n_codes).reshape(d, k, n_codes)
        pj = table.sum(axis=1)  # (d, n_codes): code counts

        nz_lat, nz_cls, nz_bin = np.nonzero(table)  # row-major, like scipy's find()
        terms = _plugin_mi_terms(
            table[nz_lat, nz_cls, nz_bin], pi[nz_cls], pj[nz_lat, nz_bin], n, log_n
        )
        bounds = np.searchsorted(nz_lat, np.arange(d + 1))
        occupied = np.count_nonzero(pj, axis=1)
        for i in range(d):
            # A code confined to one value has zero entropy, hence MI = 0 (sklearn's rule);
            # so has a factor with one class.
            single = occupied[i] == 1 or k == 1
            mi[i, j] = 0.0 if single else _plugin_mi_sum(terms[bounds[i] : bounds[i + 1]])
    return mi


def discrete_entropy(factors: np.ndarray) -> np.ndarray:
    """Plug-in entropy (nats) of each factor column, ``mutual_info_score(y, y)``; shape (F,)."""
    n = factors.shape[0]
    log_n = math.log(n)
    out = np.empty(factors.shape[1], dtype=np.float64)
    for j in range(factors.shape[1]):
        _, pi = np.unique(factors[:, j], return_counts=True)
        pi = pi.astype(np.int64, copy=False)
        out[j] = 0.0 if pi.size == 1 else _plugin_mi_sum(_plugin_mi_terms(pi, pi, pi, n, log_n))
    return out


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
