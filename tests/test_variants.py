"""Every registered variant trains through the real trial path: its loss falls in a smoke run."""

import math

import pytest

import variants
from benchmark.config import load_sweep
from benchmark.trial import run_trial
from variants import registry
from variants.base import Variant
from variants.catalog import BUILTINS, VAEConfig
from variants.declaration import VariantSpec

# Every declared built-in, from the registry's own table: a new row is tested below unasked.
ALL = sorted(spec.name for spec in BUILTINS)


def test_every_declared_variant_imports_as_the_class_it_declares():
    assert set(ALL) <= set(variants.names())
    for spec in BUILTINS:
        cls = variants.get(spec.name)  # a missing module or class fails here
        assert issubclass(cls, Variant)
        assert f"{cls.__module__}:{cls.__qualname__}" == spec.target
        assert cls.name == spec.name and cls.Config is spec.Config
        for attr in VariantSpec.BOUND:
            assert getattr(cls, attr) == getattr(spec, attr), (spec.name, attr)
        assert variants.spec(spec.name) is spec


@pytest.mark.parametrize(
    ("target", "error", "match"),
    [
        ("variants.nope:Ghost", ModuleNotFoundError, "variants.nope"),
        ("variants.vae:Ghost", AttributeError, "Ghost"),
        ("variants.base:Variant", ValueError, "not decorated with @register"),
    ],
)
def test_a_broken_declaration_fails_by_name(monkeypatch, target, error, match):
    spec = VariantSpec("ghost", target, VAEConfig)
    monkeypatch.setitem(registry._BUILTIN, "ghost", spec)
    monkeypatch.setitem(registry._SPECS, "ghost", spec)
    with pytest.raises(error, match=match):
        variants.get("ghost")


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
