"""The metric registry: declarations drive the config, the evaluation, the report and
--list-metrics; a plugin metric takes one file and one registration line; what can be known
before training is rejected at validation, and a metric that fails after training costs the
trial nothing else (issue 10, kinds 2 and 6; issue 11, points 1 and 4)."""

import importlib
import logging
import math

import numpy as np
import pandas as pd
import pytest

from benchmark import run as run_cli_main
from benchmark.config import ConfigError, load_sweep
from benchmark.data import dsprites as ds
from benchmark.metrics import registry
from benchmark.report import SweepRuns, aggregate, metric_columns, to_markdown
from benchmark.trial import run_trial

TINY = ["train.steps=5", "grid.beta=[1]", "eval.mig_points=200"]


@pytest.fixture
def dummy():
    """The test plugin `tests.plugins.dummy_metric`, registered for one test."""
    module = importlib.import_module("tests.plugins.dummy_metric")
    registry.register(module.METRIC)  # again, in case an earlier test unregistered it
    yield module.METRIC
    registry.unregister("dummy")


def test_config_is_derived_from_the_declarations():
    import benchmark.config as config

    fields = config.EvalConfig.model_fields
    for metric in registry.metrics():
        assert all(k in fields for k in metric.params.model_fields), metric.name
    with pytest.raises(ConfigError, match="eval.metrics: Input should be 'mse', 'kl'"):
        load_sweep("sweeps/smoke.yaml", overrides=["eval.metrics=[mse, nope]"])
    # Each metric's pydantic constraint is the config's check, at the knob's own key.
    with pytest.raises(ConfigError, match=r"eval\.mig_bins: .*greater than or equal to 2"):
        load_sweep("sweeps/smoke.yaml", overrides=["eval.mig_bins=1"])


def test_a_plugin_metric_is_validated_computed_and_reported(dummy, tmp_path):
    over = ["eval.metrics=[mse, kl, elbo, dummy]", *TINY]
    with pytest.raises(ConfigError, match=r"eval\.dummy_scale: .*greater than 0"):
        load_sweep("sweeps/smoke.yaml", overrides=[*over, "eval.dummy_scale=-1"])
    with pytest.raises(ConfigError, match=r"latent_dim: 2 is too small for metric 'dummy'"):
        load_sweep("sweeps/smoke.yaml", overrides=[*over, "latent_dim=2"])
    config = load_sweep("sweeps/smoke.yaml", overrides=[*over, "eval.dummy_scale=3"]).trials[0]
    assert config.config.eval.dummy_scale == 3.0
    result = run_trial(config.config, tmp_path / "t")
    assert result["status"] == "finished"
    assert result["dummy"] == pytest.approx(3 * result["mse"], rel=1e-12)
    assert result["notes"]["dummy"] == "MSE times 3.0"

    runs = _runs([result], "dummy")
    assert "dummy" in metric_columns(runs.columns)
    table = _table(runs)
    assert "| Dummy score |" in table and format(result["dummy"], ".6f") in table
    assert "- **Dummy**: MSE times 3.0" in table


def test_a_failing_metric_is_recorded_and_the_trial_keeps_the_rest(dummy, tmp_path):
    sweep = load_sweep(
        "sweeps/smoke.yaml",
        overrides=["eval.metrics=[mse, kl, elbo, active_units, mig, dummy]",
                   "eval.dummy_fail=true", *TINY],
    )  # fmt: skip
    result = run_trial(sweep.trials[0].config, tmp_path / "t")
    assert result["status"] == "finished"
    assert "dummy" not in result
    assert result["notes"]["dummy"] == "not computed: dummy failed on purpose"
    for key in ("mse", "kl", "elbo", "active_units", "mig"):
        assert math.isfinite(result[key]), key
    table = _table(_runs([result], "dummy"))
    assert "n/a (dummy failed on purpose)" in table


def test_list_metrics_prints_every_metric_with_needs_and_parameters(capsys, dummy):
    assert run_cli_main.main(["--list-metrics"]) == 0
    out = capsys.readouterr().out
    for metric in registry.metrics():
        assert f"{metric.name}" in out
    assert "mig: Mutual Information Gap" in out
    assert "needs: ground-truth factors, continuous latents, latent_dim >= 2" in out
    assert "parameters: mig_points=10000, mig_bins=20" in out
    assert "fd (formerly: fid):" in out and "shared: fid_samples=2000" in out
    assert "parameters: prdc_k=5" in out
    assert "dummy: the MSE times eval.dummy_scale" in out and "dummy_scale=1.0" in out


def test_fid_is_accepted_as_fd_with_one_deprecation_line(caplog):
    import benchmark.config as config

    config._warned_renames.discard("fid")
    over = ["dataset.name=digits", "dataset.resolution=8", "dataset.n_test=297",
            "dataset.n_train=null", "eval.fid_samples=200", "eval.kid_subset_size=50"]  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="vaebench"):
        old = load_sweep("sweeps/smoke.yaml", overrides=[*over, "eval.metrics=[mse, fid]"])
    new = load_sweep("sweeps/smoke.yaml", overrides=[*over, "eval.metrics=[mse, fd]"])
    assert old.trials[0].config == new.trials[0].config
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["warning: eval.metrics: 'fid' is deprecated; use 'fd' (same results)"]


def test_committed_sweeps_parse_with_the_renamed_metric():
    for name in ("architecture", "latent_dim", "variants"):
        sweep = load_sweep(f"sweeps/{name}.yaml")
        assert all("fd" in t.config.eval.metrics for t in sweep.trials)


# --- issue 10, kind 2: known before training → validation; after training → recorded -----


def test_latent_dim_1_with_mig_is_rejected_naming_the_key(cli):
    with pytest.raises(ConfigError) as err:
        load_sweep("sweeps/smoke.yaml", overrides=["latent_dim=1"])
    assert str(err.value).startswith("--override latent_dim=1: latent_dim: 1 is too small")
    assert "'mig'" in str(err.value)
    proc = cli("benchmark.run", "sweeps/smoke.yaml", "--override", "latent_dim=1", "--dry-run")
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert "latent_dim: 1 is too small for metric 'mig'" in proc.stderr
    # Without a factor metric, one latent is fine.
    load_sweep("sweeps/smoke.yaml", overrides=["latent_dim=1", "eval.metrics=[mse, kl]"])


def _npz_with_a_fixed_factor(tmp_path):
    sizes = (3, 1, 2, 4, 4)  # scale held fixed: a common dSprites subset
    grid = np.stack(np.unravel_index(np.arange(np.prod(sizes)), sizes), axis=1)
    classes = grid * np.array([1, 5, 13, 10, 10]) + np.array([0, 2, 0, 1, 1])
    latents = np.concatenate([np.zeros((len(grid), 1), np.int64), grid], axis=1)
    path = tmp_path / ds.NPZ_FILENAME
    imgs = ds.render(classes, 64)
    np.savez_compressed(path, imgs=imgs, latents_classes=latents, latents_values=latents * 1.0)
    return path


# The disentanglement_lib scores at a few hundred points: enough to run every code path.
SAMPLED = [
    "eval.dci_num_train=200", "eval.dci_num_test=100", "eval.sap_num_train=200",
    "eval.sap_num_test=100", "eval.modularity_num_train=200", "eval.modularity_num_test=100",
    "eval.factor_vae_num_train=50", "eval.factor_vae_num_eval=30",
    "eval.factor_vae_num_variance_estimate=200", "eval.beta_vae_num_train=50",
    "eval.beta_vae_num_eval=30",
]  # fmt: skip
FACTOR_METRICS = "[mse, kl, elbo, active_units, mig, dci, sap, factor_vae, beta_vae, modularity]"


def test_dsprites_with_a_single_valued_factor_finishes_with_mig(tmp_path):
    path = _npz_with_a_fixed_factor(tmp_path)
    sweep = load_sweep("sweeps/smoke.yaml", overrides=[
        f"dataset.path={path}", "dataset.n_train=64", "dataset.n_test=32",
        "train.batch_size=16", *TINY, f"eval.metrics={FACTOR_METRICS}", *SAMPLED,
    ])  # fmt: skip
    result = run_trial(sweep.trials[0].config, tmp_path / "t")
    assert result["status"] == "finished"
    assert 0 <= result["mig"] <= 1
    assert result["notes"]["mig"].endswith("factors with a single value dropped: scale")
    for key in ("mse", "kl", "elbo", "active_units"):
        assert math.isfinite(result[key])
    # The sampled scores see the same four varying factors (scale dropped), through the registry.
    for key in ("dci_disentanglement", "dci_completeness", "sap", "factor_vae", "beta_vae",
                "modularity", "explicitness_score_test"):  # fmt: skip
        assert 0 <= result[key] <= 1, (key, result["notes"])
    assert "(shape, orientation, posX, posY)" in result["notes"]["dci"]
    assert result["dci_num_train"] == 200


# --- issue 10, kind 6: minimum numbers of samples, checked at validation ------------------

DIGITS = ["dataset.name=digits", "dataset.resolution=8", "dataset.n_train=null",
          "dataset.n_test=297", "eval.kid_subset_size=50"]  # fmt: skip


@pytest.mark.parametrize(
    ("overrides", "key", "text"),
    [
        (["eval.metrics=[mse, fd]", "eval.fid_samples=128"], "eval.fid_samples",
         "N=128 is too few for a Fréchet distance in the 128-d features of fd_digits"),
        (["eval.metrics=[mse, fd]", "eval.fid_samples=10", "eval.kid_subset_size=5"],
         "eval.fid_samples", "allowed: >= 129"),
        (["eval.metrics=[mse, prdc]", "eval.fid_samples=6"], "eval.prdc_k",
         "5 is too many neighbours for N = eval.fid_samples = 6; allowed: <= 4"),
        (["eval.metrics=[mse, prdc]", "eval.fid_samples=400"], "eval.fid_samples",
         "400 is more than the test split"),
        (["eval.metrics=[mse, nll]", "eval.nll_points=300"], "eval.nll_points",
         "300 is more than the test split (dataset.n_test = 297)"),
        (["eval.metrics=[mse, mig]", "eval.mig_points=1"], "eval.mig_points",
         "1 is too few points for metric 'mig'; allowed: >= 2"),
        (["eval.metrics=[mse, active_units]", "dataset.n_test=1"], "dataset.n_test",
         "too few for active_units"),
    ],
)  # fmt: skip
def test_too_few_samples_are_rejected_at_validation(overrides, key, text):
    with pytest.raises(ConfigError) as err:
        load_sweep("sweeps/smoke.yaml", overrides=[*DIGITS, *overrides])
    message = str(err.value)
    assert f"{key}: " in message and text in message and "\n" not in message


def test_fd_of_a_set_against_itself_is_not_negative():
    from benchmark.feature_nets import load_or_train
    from benchmark.metrics.fid import frechet_distance_and_kid
    from benchmark.paths import FEATURE_NETS

    # The committed 128-d dSprites net gave -0.0016 (N=2) and -0.0014 (N=10) before the clamp.
    net, _ = load_or_train("dsprites", 32, FEATURE_NETS, train_if_missing=False,
                           progress=lambda _: None)  # fmt: skip
    x = ds.load_dsprites_like(32, n_train=10, n_test=10, split_seed=0).x_test
    for n in (2, 10):
        fd = frechet_distance_and_kid(x[:n], x[:n].clone(), net, kid_subset_size=2)["fd"]
        assert fd >= 0.0


def _runs(results: list[dict], variant: str = "beta_vae") -> pd.DataFrame:
    rows = []
    for i, r in enumerate(results):
        row = {k: v for k, v in r.items() if isinstance(v, float)}
        row.update(trial=f"t{i}", index=i, variant=variant, seed=i, status=r["status"],
                   dataset=r["dataset"], dataset_fingerprint=r["dataset_fingerprint"],
                   device="cpu", steps=5, batch_size=32, lr=1e-3, run_id=f"r{i}")  # fmt: skip
        row.update({f"note.{k}": v for k, v in r["notes"].items()})
        rows.append(row)
    return pd.DataFrame(rows)


def _table(runs: pd.DataFrame) -> str:
    parent = {"sweep": "t", "run_id": "p", "description": "d", "profile": "default"}
    sr = SweepRuns(parent, runs, ["seed"])
    return to_markdown(sr, aggregate(sr))


def test_a_metric_nobody_asked_for_gets_no_na_column():
    # a VQ-VAE notes every continuous-latent metric as not applicable, asked for or not
    result = {"status": "finished", "mse": 0.01, "dataset": "d", "dataset_fingerprint": "f",
              "notes": {"sap": "not applicable: discrete latents",
                        "mig": "not applicable: discrete latents"}}  # fmt: skip
    runs = _runs([result], "vqvae")
    runs["eval_metrics"] = "mse,mig"
    table = _table(runs)
    header = next(line for line in table.splitlines() if line.startswith("| MSE"))
    assert "MIG" in header and "SAP" not in header
