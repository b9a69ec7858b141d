"""Tests for benchmark.metrics.mig against a disentanglement_lib-style reference."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
import sklearn.metrics

from benchmark.metrics import MIGResult, mig, mig_details

RTOL, ATOL = 1e-12, 1e-15
DSPRITES_SIZES = (3, 6, 40, 32, 32)


# --------------------------------------------------------------------------- reference
def reference_mig(latents, factors, n_bins=20):
    """disentanglement_lib's compute_mig on transposed arrays, with sklearn and loops.

    Mirrors evaluation/metrics/utils.py (make_discretizer / _histogram_discretize,
    discrete_mutual_info, discrete_entropy) and evaluation/metrics/mig.py.
    Returns (score, m[d, F], entropy[F]).
    """
    mus = np.asarray(latents).T  # (d, N)
    ys = np.asarray(factors).T  # (F, N)
    discretized = np.zeros_like(mus)
    for i in range(mus.shape[0]):
        discretized[i, :] = np.digitize(mus[i, :], np.histogram(mus[i, :], n_bins)[1][:-1])
    num_codes, num_factors = mus.shape[0], ys.shape[0]
    m = np.zeros([num_codes, num_factors])
    for i in range(num_codes):
        for j in range(num_factors):
            m[i, j] = sklearn.metrics.mutual_info_score(ys[j, :], discretized[i, :])
    h = np.zeros(num_factors)
    for j in range(num_factors):
        h[j] = sklearn.metrics.mutual_info_score(ys[j, :], ys[j, :])
    sorted_m = np.sort(m, axis=0)[::-1]
    score = np.mean(np.divide(sorted_m[0, :] - sorted_m[1, :], h[:]))
    return score, m, h


def full_grid(sizes):
    """All combinations of factor classes, (prod(sizes), len(sizes)) int64."""
    return np.array(list(itertools.product(*(range(s) for s in sizes))), dtype=np.int64)


def uniform_factors(rng, n, sizes):
    return rng.integers(0, np.asarray(sizes), size=(n, len(sizes)))


def assert_matches_reference(latents, factors, n_bins=20):
    score, m, h = reference_mig(latents, factors, n_bins)
    out = mig_details(latents, factors, n_bins=n_bins)
    np.testing.assert_allclose(out.mutual_info, m, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(out.factor_entropy, h, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(out.score, score, rtol=RTOL, atol=ATOL)
    sorted_m = np.sort(m, axis=0)[::-1]
    np.testing.assert_allclose(
        out.gaps_per_factor, (sorted_m[0] - sorted_m[1]) / h, rtol=RTOL, atol=ATOL
    )
    np.testing.assert_allclose(mig(latents, factors, n_bins=n_bins), score, rtol=RTOL, atol=ATOL)
    return out


# --------------------------------------------------------------------------- vs reference
def _case_gaussian(rng):
    y = uniform_factors(rng, 3000, DSPRITES_SIZES)
    return rng.normal(size=(3000, 10)), y, 20


def _case_correlated(rng):
    y = uniform_factors(rng, 4000, DSPRITES_SIZES)
    z = y @ rng.normal(size=(5, 8)) + 0.5 * rng.normal(size=(4000, 8))
    return z, y, 20


def _case_grid_noisy_float32(rng):
    y = full_grid((3, 6, 10, 8))
    z = np.concatenate([y + 0.3 * rng.normal(size=y.shape), rng.normal(size=(len(y), 2))], 1)
    return z.astype(np.float32), y, 20


def _case_few_bins(rng):
    y = uniform_factors(rng, 2000, (2, 5, 7))
    z = np.tanh(y @ rng.normal(size=(3, 4))) + 0.1 * rng.standard_t(2, size=(2000, 4))
    return z, y, 5


def _case_two_bins(rng):
    y = uniform_factors(rng, 1500, (4, 9))
    return y[:, [0, 1, 1]] + rng.normal(size=(1500, 3)), y, 2


def _case_many_bins_odd_labels(rng):
    labels = np.array([-7, 0, 3, 1000, 12])
    y = np.stack([labels[rng.integers(0, 5, 2500)], rng.integers(10, 60, 2500)], 1)
    z = np.stack([y[:, 0] ** 2 * 1e-4, rng.exponential(size=2500), y[:, 1] * 0.01], 1)
    return z, y, 50


def _case_constant_and_integer_latents(rng):
    y = uniform_factors(rng, 1000, (3, 4))
    z = np.stack([np.full(1000, 2), y[:, 0] * 5 + y[:, 1], rng.integers(0, 3, 1000)], 1)
    return z, y, 20  # integer dtype, one constant latent (single bin -> MI 0)


def _case_unbalanced(rng):
    y = np.stack([rng.choice(3, 5000, p=[0.9, 0.09, 0.01]), rng.integers(0, 2, 5000)], 1)
    z = np.stack([y[:, 0] + rng.normal(size=5000), rng.lognormal(size=5000)], 1)
    return z, y, 20


CASES = {
    "gaussian": _case_gaussian,
    "correlated": _case_correlated,
    "grid_noisy_float32": _case_grid_noisy_float32,
    "few_bins": _case_few_bins,
    "two_bins": _case_two_bins,
    "many_bins_odd_labels": _case_many_bins_odd_labels,
    "constant_and_integer_latents": _case_constant_and_integer_latents,
    "unbalanced": _case_unbalanced,
}


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("seed", [0, 1])
def test_matches_disentanglement_lib_reference(name, seed):
    z, y, n_bins = CASES[name](np.random.default_rng(seed))
    out = assert_matches_reference(z, y, n_bins)
    assert out.mutual_info.shape == (z.shape[1], y.shape[1])
    assert out.gaps_per_factor.shape == out.factor_entropy.shape == (y.shape[1],)
    assert np.all(out.mutual_info >= 0)


def test_torch_input_matches_numpy():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    y = uniform_factors(rng, 2000, (3, 6, 10))
    z = (y @ rng.normal(size=(3, 4)) + rng.normal(size=(2000, 4))).astype(np.float32)
    zt = torch.tensor(z, requires_grad=True)
    yt = torch.from_numpy(y)
    assert mig_details(zt, yt).score == mig_details(z, y).score
    np.testing.assert_array_equal(mig_details(zt, yt).mutual_info, mig_details(z, y).mutual_info)
    assert_matches_reference(z, y)  # float32 binning is done in float32, as the reference does


def test_float32_latents_are_binned_in_float32_like_the_reference():
    # 21 classes on 20 bins put points exactly on bin edges, where float32 and float64
    # edges disagree; disentanglement_lib bins in the representation's own dtype.
    y = full_grid((21, 4))
    z = np.stack([0.7 * y[:, 0], 0.3 * y[:, 1] + 0.1 * y[:, 0]], 1).astype(np.float32)
    out = assert_matches_reference(z, y)
    upcast = mig_details(z.astype(np.float64), y)
    assert not np.allclose(out.mutual_info, upcast.mutual_info, rtol=1e-6)


def test_invariant_to_latent_order_and_factor_relabelling():
    rng = np.random.default_rng(4)
    y = uniform_factors(rng, 3000, (3, 6, 10))
    z = y @ rng.normal(size=(3, 5)) + rng.normal(size=(3000, 5))
    base = mig_details(z, y)
    perm = rng.permutation(5)
    np.testing.assert_allclose(mig_details(z[:, perm], y).mutual_info, base.mutual_info[perm])
    relabelled = np.stack([100 - 3 * y[:, 0], y[:, 1] + 50, (y[:, 2] * 7) % 10], 1)
    np.testing.assert_allclose(mig(z, relabelled), base.score, rtol=1e-12)


# --------------------------------------------------------------------------- known answers
@pytest.mark.parametrize("slope, offset", [(1.0, 0.0), (-2.5, 3.0), (0.01, -100.0)])
def test_noiseless_one_to_one_code_on_full_grid_is_one(slope, offset):
    sizes = (3, 6, 10, 20)
    y = full_grid(sizes)
    z = slope * y.astype(np.float64) + offset
    z = z[:, ::-1]  # latent order does not matter
    out = mig_details(z, y)
    assert abs(out.score - 1.0) < 1e-12
    np.testing.assert_allclose(out.gaps_per_factor, 1.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(out.factor_entropy, np.log(sizes), rtol=1e-12)
    assert_matches_reference(z, y)


def test_one_to_one_code_with_more_classes_than_bins_is_below_one():
    # 40 and 32 classes squeezed into 20 bins lose information: their gaps are < 1
    # (disentanglement_lib behaviour, reproduced rather than "fixed").
    y = full_grid((3, 40, 32))
    out = assert_matches_reference(y.astype(float), y)
    assert abs(out.gaps_per_factor[0] - 1.0) < 1e-12
    assert np.all((out.gaps_per_factor[1:] > 0.5) & (out.gaps_per_factor[1:] < 0.95))
    assert out.score < 1.0


def test_random_gaussian_code_scores_near_zero():
    rng = np.random.default_rng(2018)
    y = uniform_factors(rng, 10_000, DSPRITES_SIZES)
    z = rng.normal(size=(10_000, 10))
    assert 0.0 <= mig(z, y) < 0.01


def test_factor_copied_into_two_latents_has_no_gap():
    sizes = (3, 6, 10, 20)
    y = full_grid(sizes)
    z = np.concatenate([y[:, :1], 2.0 * y[:, :1] + 1.0, y[:, 1:]], axis=1).astype(float)
    out = mig_details(z, y)
    assert abs(out.gaps_per_factor[0]) < 1e-12
    np.testing.assert_allclose(out.gaps_per_factor[1:], 1.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(out.mutual_info[:2, 0], out.factor_entropy[0], rtol=1e-12)
    assert abs(out.score - 0.75) < 1e-12
    assert_matches_reference(z, y)


# --------------------------------------------------------------------------- result type
def test_result_is_frozen_and_read_only():
    y = full_grid((3, 4))
    out = mig_details(y.astype(float), y)
    assert isinstance(out, MIGResult)
    assert isinstance(out.score, float)
    with pytest.raises(dataclasses.FrozenInstanceError):
        out.score = 0.0
    with pytest.raises(ValueError):
        out.mutual_info[0, 0] = 1.0


def test_float_factors_with_integral_values_are_accepted():
    rng = np.random.default_rng(6)
    y = uniform_factors(rng, 1000, (3, 5))
    z = rng.normal(size=(1000, 3))
    assert mig(z, y.astype(np.float32)) == mig(z, y)
    assert mig(z, y.astype(bool)) == mig(z, y.astype(bool).astype(int))


# --------------------------------------------------------------------------- validation
def _ok():
    rng = np.random.default_rng(7)
    return rng.normal(size=(50, 3)), uniform_factors(rng, 50, (2, 3))


def _with(arr, idx, value):
    arr = arr.copy()
    arr[idx] = value
    return arr


@pytest.mark.parametrize(
    "make, kwargs, match",
    [
        (lambda z, y: (z[:, 0], y), {}, "latents must be 2-D"),
        (lambda z, y: (z[None], y), {}, "latents must be 2-D"),
        (lambda z, y: (z, y[:, 0]), {}, "factors must be 2-D"),
        (lambda z, y: (z[:-1], y), {}, "same number of points"),
        (lambda z, y: (z[:0], y[:0]), {}, "empty"),
        (lambda z, y: (z[:, :1], y), {}, "at least 2 latent"),
        (lambda z, y: (z, y[:, :0]), {}, "at least one column"),
        (lambda z, y: (z, y + 0.5), {}, "integer"),
        (lambda z, y: (z, y.astype(str)), {}, "integer"),
        (lambda z, y: (z, _with(y.astype(float), (3, 1), np.nan)), {}, "integer"),
        (lambda z, y: (_with(z, (5, 2), np.nan), y), {}, r"NaN or inf.*\[2\]"),
        (lambda z, y: (_with(z, (5, 1), -np.inf), y), {}, r"NaN or inf.*\[1\]"),
        (lambda z, y: (z.astype(complex), y), {}, "real-valued"),
        (lambda z, y: (z, np.concatenate([y, np.full((50, 1), 4)], 1)), {}, "factor 2 .*single"),
        (lambda z, y: (z, y), {"n_bins": 1}, "n_bins"),
        (lambda z, y: (z, y), {"n_bins": 0}, "n_bins"),
        (lambda z, y: (z, y), {"n_bins": 2.5}, "n_bins"),
        (lambda z, y: (z, y), {"n_bins": True}, "n_bins"),
    ],
)
def test_invalid_inputs_raise_value_error(make, kwargs, match):
    z, y = make(*_ok())
    with pytest.raises(ValueError, match=match):
        mig_details(z, y, **kwargs)
    with pytest.raises(ValueError, match=match):
        mig(z, y, **kwargs)
