"""Every registered variant trains through the real trial path: its loss falls in a smoke run."""

import math

import pytest

import variants
from benchmark.config import load_sweep
from benchmark.trial import run_trial

ALL = ["beta_vae", "cvae", "hierarchical", "iwae", "vae", "vqvae"]


def test_all_six_variants_are_registered():
    # Other tests in this process may have registered the test plugin "nan_vae".
    assert [n for n in variants.names() if n != "nan_vae"] == ALL


@pytest.mark.parametrize("name", ALL)
def test_loss_falls_during_a_smoke_run(name, tmp_path):
    sweep = load_sweep(
        "sweeps/smoke.yaml",
        overrides=[
            f"variant={name}",
            "beta=null",
            "train.steps=150",
            "train.log_every=25",
            "eval.metrics=[mse, kl, elbo, active_units, mig, nll]",
            "eval.nll_k=20",
            "eval.nll_points=32",
        ],  # fmt: skip
    )
    config = sweep.trials[0].config
    curve = []
    result = run_trial(config, tmp_path, report=curve.append)
    assert result["status"] == "finished", result.get("reason")
    losses = [r["train_loss"] for r in curve]
    assert len(losses) == 6 and all(map(math.isfinite, losses))
    assert losses[-1] < losses[0], losses
    assert 0 < result["mse"] < 0.25 and math.isfinite(result["elbo"])
    assert (tmp_path / "samples.png").is_file() and (tmp_path / "reconstructions.png").is_file()
    model_cls = variants.get(name)
    if model_cls.continuous_latents:
        assert math.isfinite(result["nll"]) and result["nll"] > 0 and result["nll_k"] == 20
        assert 0 <= result["mig"] <= 1
    else:
        assert "nll" not in result and "mig" not in result
        assert result["notes"]["mig"].startswith("not applicable")
