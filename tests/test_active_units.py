"""Tests for benchmark.metrics.active_units."""

from __future__ import annotations

import numpy as np
import pytest

from benchmark.metrics import active_units
from benchmark.metrics.active_units import latent_variances


def _code(rng, n, k, d, inactive_var=0.0):
    """k informative dims (variance ~1) interleaved with d - k low-variance dims."""
    z = np.empty((n, d))
    informative = rng.permutation(d)[:k]
    for u in range(d):
        if u in informative:
            z[:, u] = rng.normal(size=n)
        elif inactive_var == 0.0:
            z[:, u] = 0.37  # constant
        else:
            z[:, u] = rng.normal(scale=np.sqrt(inactive_var), size=n)
    return z


@pytest.mark.parametrize("k", [0, 1, 3, 7, 8])
@pytest.mark.parametrize("inactive_var", [0.0, 0.001])
def test_counts_informative_dims(k, inactive_var):
    z = _code(np.random.default_rng(k), 2000, k, 8, inactive_var)
    assert active_units(z) == k
    assert type(active_units(z)) is int


def test_default_threshold_is_burda_0_01():
    base = np.repeat([-1.0, 1.0], 500)  # population variance exactly 1
    z = np.stack([np.sqrt(0.011) * base, np.sqrt(0.009) * base], axis=1)
    assert active_units(z) == 1
    assert active_units(z, threshold=0.005) == 2
    assert active_units(z, threshold=0.02) == 0


def test_threshold_is_strict():
    z = np.repeat([[-0.5], [0.5]], 50, axis=0)  # population variance exactly 0.25
    assert latent_variances(z)[0] == 0.25
    assert active_units(z, threshold=0.25) == 0
    assert active_units(z, threshold=np.nextafter(0.25, 0.0)) == 1


def test_uses_population_variance_ddof0():
    z = np.array([[0.0], [1.0]])  # ddof=0 -> 0.25, ddof=1 -> 0.5
    np.testing.assert_array_equal(latent_variances(z), [0.25])
    assert active_units(z, threshold=0.3) == 0


def test_constant_offset_and_float32_do_not_create_active_units():
    rng = np.random.default_rng(0)
    z = _code(rng, 1000, 2, 5, inactive_var=0.001) + 1e4
    assert active_units(z.astype(np.float32)) == 2


def test_torch_and_numpy_agree():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    z = _code(rng, 500, 4, 10, inactive_var=0.001).astype(np.float32)
    zt = torch.tensor(z, requires_grad=True)
    np.testing.assert_array_equal(latent_variances(zt), latent_variances(z))
    for threshold in (0.0005, 0.01, 0.5, 2.0):
        assert active_units(zt, threshold) == active_units(z, threshold)
    assert active_units(zt) == 4


@pytest.mark.parametrize(
    "means, threshold, match",
    [
        (np.zeros(10), 0.01, "2-D"),
        (np.zeros((4, 3, 2)), 0.01, "2-D"),
        (np.zeros((1, 3)), 0.01, "at least 2 data points"),
        (np.zeros((5, 0)), 0.01, "at least one latent"),
        (np.array([[0.0, np.nan], [1.0, 2.0]]), 0.01, r"NaN or inf.*\[1\]"),
        (np.array([["a", "b"], ["c", "d"]]), 0.01, "real-valued"),
        (np.zeros((5, 2)), -0.1, "threshold"),
        (np.zeros((5, 2)), float("nan"), "threshold"),
        (np.zeros((5, 2)), "0.01", "threshold"),
    ],
)
def test_invalid_inputs_raise_value_error(means, threshold, match):
    with pytest.raises(ValueError, match=match):
        active_units(means, threshold)
