"""DCI, SAP, modularity/explicitness, FactorVAE and BetaVAE scores against disentanglement_lib.

Every expected number in the `*_equals_dlib` tests comes from disentanglement_lib 1.5 itself:
tests/fixtures/dlib/make_fixtures.py ran its metric code (gin stubbed, solvers seeded with
random_state=0 as ours are) on the inputs stored in tests/fixtures/dlib/arrays.npz and wrote
tests/fixtures/dlib/reference.json. The FactorVAE/BetaVAE fixtures use the toy samplers and
representations defined in that script, imported here.
"""

from __future__ import annotations

import functools
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from benchmark.data.dsprites import FACTOR_SIZES, render
from benchmark.metrics.beta_vae import beta_vae_score
from benchmark.metrics.dci import dci
from benchmark.metrics.factor_vae import CHEAP_PROTOCOL, factor_vae_score
from benchmark.metrics.ground_truth import FactorGrid, dsprites_like, sample_codes
from benchmark.metrics.modularity import modularity_explicitness
from benchmark.metrics.sap import sap

FIXTURES = Path(__file__).parent / "fixtures" / "dlib"
TOL = 1e-6
CODES = ("perfect", "random", "mixed")


def _load_script():
    spec = importlib.util.spec_from_file_location("dlib_fixtures", FIXTURES / "make_fixtures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


FX = _load_script()
ARRAYS = dict(np.load(FIXTURES / "arrays.npz"))
REFERENCE = json.loads((FIXTURES / "reference.json").read_text())


def _args(code: str):
    return (
        ARRAYS[f"{code}_train"],
        ARRAYS["factors_train"],
        ARRAYS[f"{code}_test"],
        ARRAYS["factors_test"],
    )


@functools.cache
def _dci(code: str) -> dict[str, float]:
    return dci(*_args(code))  # gradient-boosted trees: computed once per code


def _assert_close(ours: dict, ref: dict) -> None:
    assert set(ours) <= set(ref) | {"modularity"}
    for key, value in ours.items():
        assert abs(value - ref[key]) <= TOL, (key, value, ref[key])


# --------------------------------------------------------------------------- array metrics
@pytest.mark.parametrize("code", CODES)
def test_dci_equals_dlib(code):
    ref = REFERENCE["codes"][code]["dci"]
    ours = _dci(code)
    assert set(ours) == set(ref)
    _assert_close(ours, ref)


@pytest.mark.parametrize("code", CODES)
def test_sap_equals_dlib(code):
    ref = REFERENCE["codes"][code]
    assert abs(sap(*_args(code)) - ref["sap"]) <= TOL
    assert abs(sap(*_args(code), continuous_factors=True) - ref["sap_continuous"]) <= TOL


@pytest.mark.parametrize("code", CODES)
def test_modularity_explicitness_equals_dlib(code):
    ref = REFERENCE["codes"][code]["modularity_explicitness"]
    ours = modularity_explicitness(*_args(code))
    assert set(ours) == set(ref)
    _assert_close(ours, ref)


def test_perfect_and_random_codes_give_the_extremes():
    chance = np.mean([1 / s for s in FX.FACTOR_SIZES])
    perfect, random = _dci("perfect"), _dci("random")
    assert perfect["disentanglement"] > 0.999 and perfect["completeness"] > 0.999
    assert perfect["informativeness_test"] == 1.0
    assert random["disentanglement"] < 0.05 and random["completeness"] < 0.05
    assert random["informativeness_test"] < chance + 0.05
    assert sap(*_args("random")) < 0.05 < 0.3 < sap(*_args("perfect"))
    assert sap(*_args("perfect"), continuous_factors=True) > 0.99
    me_perfect = modularity_explicitness(*_args("perfect"))
    me_random = modularity_explicitness(*_args("random"))
    assert me_perfect["modularity"] > 0.999
    assert me_perfect["explicitness_score_test"] == 1.0
    assert abs(me_random["explicitness_score_test"] - 0.5) < 0.05
    assert me_random["modularity"] < me_perfect["modularity"] - 0.2


def test_torch_and_float32_inputs_are_accepted():
    torch = pytest.importorskip("torch")
    z_train, y_train, z_test, y_test = _args("mixed")
    ours = modularity_explicitness(
        torch.from_numpy(z_train), torch.from_numpy(y_train), z_test, y_test.astype(np.float32)
    )
    _assert_close(ours, REFERENCE["codes"]["mixed"]["modularity_explicitness"])


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda a: (a[0][:, :1], a[1], a[2][:, :1], a[3]), "at least 2 latent"),
        (lambda a: (a[0], a[1], a[2][:, :2], a[3]), "same d"),
        (lambda a: (a[0], a[1], a[2], a[3][:, :2]), "same F"),
        (lambda a: (a[0], a[1][:, :1], a[2], a[3][:, :1]), "at least 2 factors"),
        (lambda a: (a[0], np.c_[a[1], np.zeros(len(a[1]), int)], a[2],
                    np.c_[a[3], np.zeros(len(a[3]), int)]), "factor 3 takes a single value"),
        (lambda a: (a[0], a[1] + 0.5, a[2], a[3]), "integer"),
        (lambda a: (np.where(a[0] > 1, np.nan, a[0]), a[1], a[2], a[3]), "NaN"),
        (lambda a: (a[0][:-1], a[1], a[2], a[3]), "same number of points"),
    ],
)  # fmt: skip
def test_bad_inputs_raise(make, match):
    args = make(_args("mixed"))
    with pytest.raises(ValueError, match=match):
        dci(*args)
    if "2 factors" not in match:  # SAP is defined for one factor
        with pytest.raises(ValueError, match=match):
            sap(*args)
    if "2 latent" not in match:  # modularity is defined for one latent
        with pytest.raises(ValueError, match=match):
            modularity_explicitness(*args)


def test_explicitness_needs_the_train_classes_on_the_test_split():
    z_train, y_train, z_test, y_test = _args("mixed")
    keep = y_test[:, 2] != 2
    with pytest.raises(ValueError, match=r"factor 2 takes classes \[0, 1\] on the test"):
        modularity_explicitness(z_train, y_train, z_test[keep], y_test[keep])
    with pytest.raises(ValueError, match="n_bins"):
        modularity_explicitness(z_train, y_train, z_test, y_test, n_bins=1)


# --------------------------------------------------------------------------- sampled scores
@pytest.mark.parametrize("name, noise, rep", FX.SCORE_CASES)
def test_factor_vae_and_beta_vae_equal_dlib(name, noise, rep):
    ref = REFERENCE["scores"][name]
    fv = factor_vae_score(
        FX.ToyData(noise), FX.REPRESENTATIONS[rep], np.random.RandomState(FX.SEED),
        num_variance_estimate=FX.NUM_VARIANCE_ESTIMATE, **FX.SCORE_PROTOCOL,
    )  # fmt: skip
    bv = beta_vae_score(
        FX.ToyData(noise), FX.REPRESENTATIONS[rep], np.random.RandomState(FX.SEED),
        **FX.SCORE_PROTOCOL,
    )  # fmt: skip
    # dlib's num_active_dims is the length of its mask (d), ours the count of active dims.
    _assert_close({k: v for k, v in fv.items() if k != "num_active_dims"}, ref["factor_vae"])
    _assert_close(bv, ref["beta_vae"])


def test_factor_vae_and_beta_vae_extremes():
    chance = 1 / len(FX.TOY_SIZES)
    for score in (factor_vae_score, beta_vae_score):
        kwargs = {"batch_size": 16, "num_train": 300, "num_eval": 300}
        perfect = score(FX.ToyData(), FX.identity, np.random.RandomState(1), **kwargs)
        noise = score(FX.ToyData(), FX.hash_noise, np.random.RandomState(1), **kwargs)
        assert perfect["eval_accuracy"] == 1.0, score
        assert abs(noise["eval_accuracy"] - chance) < 0.15, (score, noise)


def test_pooled_observations_equal_one_call_per_batch():
    class Interleaved(FX.ToyData):
        def __init__(self):
            super().__init__(0.0)
            self.deterministic_observations = False
            self.calls = 0

        def sample_observations_from_factors(self, factors, random_state):
            self.calls += 1
            return super().sample_observations_from_factors(factors, random_state)

    kwargs = {"batch_size": 8, "num_train": 100, "num_eval": 50}
    for score in (factor_vae_score, beta_vae_score):
        one_by_one = Interleaved()
        a = score(one_by_one, FX.mixed, 3, **kwargs)
        b = score(FX.ToyData(), FX.mixed, 3, **kwargs)
        assert a == b
        assert one_by_one.calls >= 150


def test_collapsed_representation_scores_zero():
    out = factor_vae_score(FX.ToyData(), lambda x: np.zeros((len(x), 3)), 0, **CHEAP_PROTOCOL)
    assert out == {"train_accuracy": 0.0, "eval_accuracy": 0.0, "num_active_dims": 0}


def test_sampled_scores_reject_bad_arguments():
    with pytest.raises(ValueError, match="batch_size"):
        factor_vae_score(FX.ToyData(), FX.identity, 0, batch_size=1)
    with pytest.raises(ValueError, match="random_state"):
        beta_vae_score(FX.ToyData(), FX.identity, 0.5)
    with pytest.raises(ValueError, match=r"\(n, d\)"):
        factor_vae_score(FX.ToyData(), lambda x: x[:, 0], 0, **CHEAP_PROTOCOL)


# --------------------------------------------------------------------------- samplers
def test_sample_codes_draws_like_generate_batch_factor_code():
    codes, factors = sample_codes(FX.ToyData(0.5), FX.identity, 40, 0, batch_size=16)
    rs = np.random.RandomState(0)
    expected_factors, expected_codes = [], []
    for n in (16, 16, 8):
        f, obs = FX.ToyData(0.5).sample(n, rs)
        expected_factors.append(f)
        expected_codes.append(obs)
    np.testing.assert_array_equal(factors, np.concatenate(expected_factors))
    np.testing.assert_array_equal(codes, np.concatenate(expected_codes))


def test_factor_grid_drops_constant_factors():
    seen = []

    def observe(classes):
        seen.append(classes)
        return classes.astype(np.float64)

    grid = FactorGrid((1, 3, 1, 4), observe)
    assert grid.num_factors == 2 and grid.factors_num_values == [3, 4]
    f = grid.sample_factors(50, np.random.RandomState(0))
    assert f.shape == (50, 2) and f[:, 0].max() < 3 and f[:, 1].max() < 4
    grid.sample_observations_from_factors(f, None)
    np.testing.assert_array_equal(seen[0][:, [0, 2]], 0)
    np.testing.assert_array_equal(seen[0][:, [1, 3]], f)


def test_dsprites_like_adapter_renders_the_sampled_factors_and_scores_above_chance():
    grid = dsprites_like(16)
    assert grid.num_factors == len(FACTOR_SIZES)
    f = grid.sample_factors(6, np.random.default_rng(0))
    assert (f < np.asarray(FACTOR_SIZES)).all()
    images = grid.sample_observations_from_factors(f, None)
    np.testing.assert_array_equal(images.numpy()[:, 0], render(f, 16))

    def centroid_and_mass(x):
        # A hand-made code: posX, posY and scale are readable from the pixels.
        img = x.numpy()[:, 0]
        mass = img.sum(axis=(1, 2))
        grid_x = np.arange(16)
        cx = (img.sum(axis=1) * grid_x).sum(1) / mass
        cy = (img.sum(axis=2) * grid_x).sum(1) / mass
        return np.stack([cx, cy, mass], axis=1)

    out = factor_vae_score(grid, centroid_and_mass, 0, **CHEAP_PROTOCOL)
    # 3 of 5 factors are represented: the vote identifies them, a chance code scores ~1/5.
    assert out["num_active_dims"] == 3
    assert out["eval_accuracy"] > 0.45


def test_posterior_means_of_a_variant_feed_the_sampled_scores():
    import torch

    from benchmark.config import load_sweep
    from benchmark.metrics.ground_truth import posterior_means
    from benchmark.trial import build_model, load_trial_data

    config = load_sweep("sweeps/smoke.yaml").trials[0].config
    data = load_trial_data(config)
    torch.manual_seed(0)
    model = build_model(config, data).eval()
    rep = posterior_means(model, torch.device("cpu"), batch_size=100)
    grid = dsprites_like(config.dataset.resolution)
    images = grid.sample_observations_from_factors(
        grid.sample_factors(7, np.random.RandomState(0)), None
    )
    with torch.no_grad():
        np.testing.assert_allclose(
            rep(images), model.encode(images).mean.numpy(), rtol=1e-5, atol=1e-6
        )
    kwargs = {"batch_size": 8, "num_train": 50, "num_eval": 50}
    out = factor_vae_score(grid, rep, 0, num_variance_estimate=200, **kwargs)
    assert 0.0 <= out["eval_accuracy"] <= 1.0 and out["num_active_dims"] <= config.latent_dim
    assert 0.0 <= beta_vae_score(grid, rep, 0, **kwargs)["eval_accuracy"] <= 1.0
    model.needs_labels = True
    with pytest.raises(ValueError, match="needs labels"):
        posterior_means(model, torch.device("cpu"))
