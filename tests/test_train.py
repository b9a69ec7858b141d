"""The training loop and one trial without Ray: progress, determinism, divergence."""

import math

import pytest
import torch

from benchmark.config import TrainConfig, load_sweep
from benchmark.train import Diverged, kl_weight, train
from benchmark.trial import build_model, load_trial_data, run_trial
from tests.plugins import nan_vae  # noqa: F401  (registers "nan_vae")


@pytest.fixture(scope="module")
def smoke_config():
    return load_sweep("sweeps/smoke.yaml").trials[0].config


def test_kl_warmup_is_linear_then_one():
    assert [kl_weight(s, 4) for s in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert kl_weight(0, 0) == 1.0


def test_loss_falls_and_curve_is_reported(smoke_config):
    data = load_trial_data(smoke_config)
    torch.manual_seed(0)
    model = build_model(smoke_config, data)
    seen = []
    cfg = TrainConfig(steps=200, batch_size=32, log_every=50)
    result = train(model, data.x_train, cfg, seed=0, on_log=lambda s, r: seen.append((s, r)))
    assert [s for s, _ in seen] == [50, 100, 150, 200]
    losses = [r["train_loss"] for _, r in seen]
    assert losses[-1] < 0.7 * losses[0]
    assert result.steps == 200 and result.images_per_second > 0


def test_same_config_and_seed_give_bitwise_identical_metrics(smoke_config, tmp_path):
    a = run_trial(smoke_config, tmp_path / "a")
    b = run_trial(smoke_config, tmp_path / "b")
    keys = ("mse", "kl", "elbo", "recon", "mig", "active_units")
    assert all(a[k] == b[k] for k in keys), {k: (a[k], b[k]) for k in keys}
    assert a["dataset_fingerprint"] == b["dataset_fingerprint"]
    assert (tmp_path / "a" / "samples.png").read_bytes() == (
        tmp_path / "b" / "samples.png"
    ).read_bytes()
    other = run_trial(smoke_config.model_copy(update={"seed": 1}), tmp_path / "c")
    assert other["mse"] != a["mse"]


def test_diverging_loss_stops_the_trial_at_once(smoke_config, tmp_path):
    config = smoke_config.model_copy(update={"variant": "nan_vae"})
    result = run_trial(config, tmp_path)
    assert result["status"] == "diverged"
    assert result["diverged_step"] == nan_vae.NAN_AFTER + 1
    assert "nan" in result["reason"] and "mse" not in result
    data = load_trial_data(config)
    with pytest.raises(Diverged) as info:
        train(build_model(config, data), data.x_train, config.train, seed=0)
    assert info.value.step == nan_vae.NAN_AFTER + 1 and math.isnan(info.value.value)
