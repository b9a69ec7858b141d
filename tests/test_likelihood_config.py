"""The `likelihood` trial key and `dataset.binarize`: sweep axis, overrides, one-line errors,
unchanged hashes of default trials, binarisation, and the density notes of the evaluation."""

import json
import math
from pathlib import Path

import pytest
import torch

from benchmark.config import ConfigError, TrialConfig, load_sweep
from benchmark.data import load_dataset
from benchmark.data.binarize import binarize_batch, binarize_dataset
from benchmark.paths import REPO
from benchmark.trial import build_model, load_trial_data, run_trial

SMOKE = REPO / "sweeps" / "smoke.yaml"


def _sweep(tmp_path, grid: str, base_extra: str = "") -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(
        "name: t\nbase:\n  variant: vae\n  architecture: mlp2\n  latent_dim: 2\n"
        f"  dataset: {{name: digits, n_test: 100}}\n{base_extra}grid:\n{grid}"
    )
    return path


def test_likelihood_is_an_override_and_a_grid_axis(tmp_path):
    sweep = load_sweep(SMOKE, overrides=["likelihood=gaussian"])
    assert {t.config.likelihood.name for t in sweep.trials} == {"gaussian"}
    assert sweep.trials[0].config.likelihood.build().config.sigma == 1.0
    axis = (
        "  likelihood:\n    - bernoulli\n    - {name: gaussian, sigma: 0.1}\n"
        "    - {name: gaussian, sigma: learned}\n    - continuous_bernoulli\n"
    )
    path = _sweep(tmp_path, axis)
    sweep = load_sweep(path)
    assert [t.name for t in sweep.trials] == [
        "likelihood=bernoulli", "likelihood=gaussian(sigma=0.1)",
        "likelihood=gaussian(sigma=learned)", "likelihood=continuous_bernoulli",
    ]  # fmt: skip
    assert [t.config.likelihood.label for t in sweep.trials] == [
        t.name.removeprefix("likelihood=") for t in sweep.trials
    ]
    assert len({t.config.hash() for t in sweep.trials}) == 4
    swept = load_sweep(SMOKE, overrides=["grid.likelihood=[bernoulli, continuous_bernoulli]"])
    assert len(swept.trials) == 2 * 2
    # A parameter override keeps the likelihood named before it.
    tuned = load_sweep(SMOKE, overrides=["likelihood=gaussian", "likelihood.sigma=0.2"])
    assert tuned.trials[0].config.likelihood.label == "gaussian(sigma=0.2)"


@pytest.mark.parametrize(
    "grid,problem",
    [
        ("  likelihood: [gausian]\n",
         "grid.likelihood: unknown likelihood 'gausian'; allowed: bernoulli, gaussian, "
         "continuous_bernoulli, discretized_logistic"),
        ("  likelihood: [{name: gaussian, sigma: -1}]\n",
         "grid.likelihood: sigma: -1 is not allowed; allowed: a standard deviation σ > 0, or "
         "'learned'"),
        ("  likelihood: [{name: bernoulli, sigma: 0.1}]\n",
         "grid.likelihood: sigma: not a parameter of likelihood 'bernoulli' (its parameters: "
         "none)"),
        ("  dataset.binarize: [always]\n",
         "grid.dataset.binarize: Input should be 'none', 'static' or 'dynamic'"),
    ],
)  # fmt: skip
def test_bad_likelihood_or_binarize_is_one_line_naming_the_key(tmp_path, grid, problem):
    path = _sweep(tmp_path, grid)
    with pytest.raises(ConfigError) as e:
        load_sweep(path)
    message = str(e.value)
    assert "\n" not in message and problem in message
    assert message.startswith(f"{path}:")


def test_default_trials_keep_their_hash():
    """A trial that leaves likelihood and binarize at their defaults hashes as before they
    existed: the pre-change hash is sha256 of the config without those keys."""
    import hashlib

    config = load_sweep(SMOKE).trials[0].config
    tree = config.model_dump(mode="json")
    assert tree.pop("likelihood") == {"name": "bernoulli"}
    assert tree["dataset"].pop("binarize") == "none"
    from benchmark.config import HASH_NEUTRAL_DEFAULTS

    for dotted, default in HASH_NEUTRAL_DEFAULTS.items():  # the train options added since
        section, _, leaf = dotted.partition(".")
        if section == "train":
            assert tree["train"].pop(leaf) == default
    before = hashlib.sha256(json.dumps(tree, sort_keys=True).encode()).hexdigest()[:12]
    assert config.hash() == before
    explicit = load_sweep(SMOKE, overrides=["likelihood=bernoulli", "dataset.binarize=none"])
    assert explicit.trials[0].config.hash() == before
    other = load_sweep(SMOKE, overrides=["dataset.binarize=static"]).trials[0].config
    assert other.hash() != before


def test_static_binarisation_is_one_seeded_draw_and_dynamic_redraws_batches():
    data = load_dataset("digits", n_test=100)
    static = binarize_dataset(data, "static", seed=0)
    again = binarize_dataset(data, "static", seed=0)
    for x in (static.x_train, static.x_test):
        assert set(x.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(static.x_train, again.x_train)
    assert static.fingerprint != data.fingerprint and "statically binarised" in static.description
    # Pixel means are kept in expectation: P(1) is the grey value.
    assert static.x_train.mean().item() == pytest.approx(data.x_train.mean().item(), abs=0.01)
    dynamic = binarize_dataset(data, "dynamic", seed=0)
    assert torch.equal(dynamic.x_train, data.x_train)  # grey: drawn per batch in training
    assert set(dynamic.x_test.unique().tolist()) <= {0.0, 1.0}
    torch.manual_seed(0)
    a, b = binarize_batch(data.x_train[:64]), binarize_batch(data.x_train[:64])
    assert set(a.unique().tolist()) <= {0.0, 1.0} and not torch.equal(a, b)


def _config(**over) -> TrialConfig:
    raw = {
        "variant": "vae", "architecture": "mlp2", "latent_dim": 2,
        "dataset": {"name": "digits", "n_test": 64},
        "train": {"steps": 4, "batch_size": 16, "log_every": 2},
        "eval": {"metrics": ["mse", "kl", "elbo", "nll"], "nll_k": 3, "nll_points": 8,
                 "grid_images": 8},
    }  # fmt: skip
    raw.update(over)
    return TrialConfig.model_validate(raw)


def test_notes_say_where_nll_is_a_density(tmp_path):
    grey = run_trial(_config(), tmp_path / "a", device="cpu")
    assert "not a normalised density for grey pixels" in grey["notes"]["decoder_likelihood"]
    assert "not a normalised density" in grey["notes"]["nll"]
    binary = run_trial(
        _config(dataset={"name": "digits", "n_test": 64, "binarize": "dynamic"}),
        tmp_path / "b", device="cpu",
    )  # fmt: skip
    assert "normalised probability mass on binary pixels" in binary["notes"]["decoder_likelihood"]
    assert "dynamically binarised" in binary["dataset"]
    learned = run_trial(_config(likelihood={"name": "gaussian", "sigma": "learned"}),
                        tmp_path / "c", device="cpu")  # fmt: skip
    assert "continuous density on R^D" in learned["notes"]["decoder_likelihood"]
    assert 0 < learned["likelihood_sigma"] < 1  # moved down from its initial 1
    assert math.isfinite(learned["nll"])


def test_discretized_logistic_refuses_data_that_is_not_8bit():
    config = _config(likelihood="discretized_logistic")  # digits: pixel counts / 16
    with pytest.raises(ValueError, match="8-bit"):
        build_model(config, load_trial_data(config))


def test_report_marks_likelihood_columns_that_are_not_densities():
    import pandas as pd

    from benchmark.report import SweepRuns, aggregate, runs_table, to_markdown

    grey = "Bernoulli (BCE-with-logits summed over pixels), nats: not a normalised density for " \
        "grey pixels (Bernoulli on [0, 1] data)"  # fmt: skip
    dense = "Gaussian, σ = 1.0, ...: a normalised continuous density on R^D"
    rows = [
        {"trial": f"t{i}", "index": i, "variant": "vae", "architecture": "mlp2", "latent_dim": 2,
         "seed": 0, "likelihood": lik, "status": "finished", "mse": 0.1, "kl": 1.0,
         "elbo": -10.0, "nll": 9.0, "bits_per_dim": 0.2, "dataset": "digits",
         "dataset_fingerprint": "f", "device": "cpu", "steps": 4, "batch_size": 16, "lr": 1e-3,
         "note.decoder_likelihood": note, "run_id": str(i)}
        for i, (lik, note) in enumerate([("bernoulli", grey), ("gaussian(sigma=1.0)", dense)])
    ]  # fmt: skip
    sr = SweepRuns({"run_id": "p", "sweep": "t"}, pd.DataFrame(rows), ["likelihood", "seed"])
    text = to_markdown(sr, aggregate(sr))
    header = next(line for line in text.splitlines() if line.startswith("| likelihood"))
    assert "ELBO (nats) ‡" in header and "NLL (nats) ‡" in header
    assert "NLL (bits/dim) ‡" in header and "MSE ‡" not in header
    likelihood_line = next(line for line in text.splitlines() if "**Likelihood**" in line)
    assert grey in likelihood_line and dense in likelihood_line
    assert "‡ not a normalised density for grey pixels" in likelihood_line
    # a sweep of `vae` alone logs no β: runs.csv is still written, without that column
    assert list(runs_table(sr).columns[:6]) == [
        "trial",
        "variant",
        "architecture",
        "latent_dim",
        "seed",
        "status",
    ]
