"""FD/KID inside a trial: the domain net from the cache, N recorded, Inception skipped cleanly,
and report columns that name their feature network and N."""

import math

import pandas as pd
import pytest

from benchmark.config import load_sweep
from benchmark.feature_nets import load_or_train
from benchmark.report import metric_columns, metric_format
from benchmark.trial import run_trial

DIGITS = [
    "dataset.name=digits", "dataset.resolution=8", "dataset.n_train=null",
    "dataset.n_test=297", "eval.metrics=[mse, kl, elbo, fd]", "eval.fid_samples=200",
    "eval.kid_subset_size=50", "train.steps=40", "seed=0", "grid.beta=[1]",
]  # fmt: skip


@pytest.fixture(scope="module")
def feature_nets(tmp_path_factory):
    root = tmp_path_factory.mktemp("feature_nets")
    load_or_train("digits", 8, root, steps=150, progress=lambda _: None)
    return root


@pytest.fixture(scope="module")
def config():
    return load_sweep("sweeps/smoke.yaml", overrides=DIGITS).trials[0].config


def test_trial_scores_fd_and_kid_with_the_cached_domain_net(config, feature_nets, tmp_path,
                                                            monkeypatch):  # fmt: skip
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-torch-home"))
    monkeypatch.delenv("VAEBENCH_INCEPTION_WEIGHTS", raising=False)
    result = run_trial(config, tmp_path / "t", feature_nets=feature_nets)
    assert result["status"] == "finished"
    assert result["fid_samples"] == 200
    assert result["fd_digits"] > 0 and math.isfinite(result["kid_digits"])
    assert result["kid_digits_std"] >= 0
    notes = result["notes"]
    assert "fd_digits" in notes["fd"] and "200 generated vs 200 real" in notes["fd"]
    assert "test accuracy" in notes["fd"] and "resize: none" in notes["fd"]
    # No Inception weights here: recorded as a skip with the how-to, never a number or a crash.
    assert "fid_inception" not in result
    assert notes["fid_inception"].startswith("fid_inception skipped:")
    assert "VAEBENCH_INCEPTION_WEIGHTS" in notes["fid_inception"]
    again = run_trial(config, tmp_path / "u", feature_nets=feature_nets)
    assert again["fd_digits"] == result["fd_digits"]  # seeded samples and KID subsets
    assert again["kid_digits"] == result["kid_digits"]


def test_prdc_in_a_trial_uses_the_fd_feature_net_and_n(feature_nets, tmp_path):
    over = [o.replace("fd]", "fd, prdc]") for o in DIGITS]
    config = load_sweep("sweeps/smoke.yaml", overrides=over).trials[0].config
    result = run_trial(config, tmp_path / "t", feature_nets=feature_nets)
    assert result["status"] == "finished"
    assert result["prdc_k"] == 5 and result["fid_samples"] == 200
    for key in ("precision", "recall", "coverage"):
        assert 0 <= result[f"{key}_digits"] <= 1
    assert result["density_digits"] >= 0 and math.isfinite(result["fd_digits"])
    note = result["notes"]["prdc"]
    assert "k=5" in note and "128-d features of fd_digits" in note and "200 generated" in note


def test_missing_feature_net_is_a_note_not_a_crash(config, tmp_path):
    result = run_trial(config, tmp_path / "t", feature_nets=tmp_path / "no-nets")
    assert result["status"] == "finished"
    assert "fd_digits" not in result
    assert result["notes"]["fd"].startswith("fd_digits not computed")
    assert "python -m benchmark.feature_nets --dataset digits" in result["notes"]["fd"]


def test_fid_samples_must_fit_the_test_split():
    from benchmark.config import ConfigError

    with pytest.raises(ConfigError, match=r"eval\.fid_samples: 500 is more than the test split"):
        load_sweep("sweeps/smoke.yaml", overrides=[*DIGITS, "eval.fid_samples=500"])
    with pytest.raises(ConfigError, match=r"eval\.kid_subset_size: 300 is not allowed"):
        load_sweep("sweeps/smoke.yaml", overrides=[*DIGITS, "eval.kid_subset_size=300"])


def test_report_gives_each_feature_network_its_own_named_column():
    cols = pd.Index(
        [
            "mse",
            "kl",
            "mig",
            "fd_fashion_mnist",
            "fd_dsprites",
            "fid_inception",
            "kid_dsprites",
            "kid_dsprites_std",
            "fid_samples",
            "active_units",
        ]
    )
    assert metric_columns(cols) == [
        "mse",
        "kl",
        "mig",
        "fd_dsprites",
        "fd_fashion_mnist",
        "fid_inception",
        "kid_dsprites",
        "active_units",
    ]
    assert metric_format("fd_fashion_mnist", 2000)[0] == "FD (fd_fashion_mnist, N=2000)"
    assert metric_format("fid_inception", 10000)[0] == "FID (Inception, N=10000)"
    assert metric_format("kid_dsprites", 2000)[0] == "KID (kid_dsprites, N=2000)"
