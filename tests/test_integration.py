"""Real Ray Tune + real MLflow (SQLite) runs of sweeps/smoke.yaml, as a user runs them."""

import math
import os
import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from benchmark.config import overrides_hash
from tests.conftest import REPO, run_cli

# MLflow names carry units (benchmark.metric_names); n_params is a param, not a metric.
METRICS = ("mse_per_pixel", "kl_nats", "elbo_nats", "mig", "active_units", "train_seconds")


def _client(results: Path) -> MlflowClient:
    return MlflowClient(tracking_uri=f"sqlite:///{results / 'mlflow.db'}")


def test_smoke_sweep_logs_one_parent_and_one_run_per_trial(smoke):
    results, out = smoke
    client = _client(results)
    exp = client.get_experiment_by_name("smoke")
    runs = client.search_runs([exp.experiment_id])
    parents = [r for r in runs if r.data.tags.get("vaebench.role") == "sweep"]
    trials = [r for r in runs if r.data.tags.get("vaebench.role") == "trial"]
    assert len(parents) == 1 and len(trials) == 2
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    for key in ("vaebench.commit", "vaebench.machine", "vaebench.date", "vaebench.profile"):
        assert parent.data.tags[key]
    assert sorted(float(r.data.params["beta"]) for r in trials) == [1.0, 4.0]
    for run in trials:
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert run.info.status == "FINISHED"
        assert run.data.tags["vaebench.status"] == "finished"
        m = run.data.metrics
        for key in METRICS:
            assert math.isfinite(m[key]), key
        assert 0 < m["mse_per_pixel"] < 0.25 and m["kl_nats"] >= 0 and m["elbo_nats"] < 0
        assert m["elbo_nats"] == pytest.approx(-(m["recon_nats"] + m["kl_nats"]))
        assert 0 <= m["mig"] <= 1
        # Settings are params, never metrics; β appears once.
        p = run.data.params
        assert p["mig_num_points"] == "500.0" and p["mig_bins"] == "20.0"
        assert float(p["n_params"]) > 1000
        assert not {"mig_bins", "mig_num_points", "n_params", "mse", "kl"} & set(m)
        assert "params" not in p and "variant_config" not in p
        assert [k for k in p if "beta" in k] == ["beta"]
        assert "kl_warmup_factor" in m and "kl_weight" not in m
        note = run.data.tags["mlflow.note.content"]
        assert f"β = {float(p['beta']):g}" in note and "Outcome: finished, MSE" in note
        (dataset,) = run.inputs.dataset_inputs
        assert dataset.dataset.digest == run.data.tags["vaebench.dataset_fingerprint"]
        assert dataset.dataset.name.startswith("dSprites-like, 16x16")
        assert run.data.tags["vaebench.note.mig_representation"] == "posterior mean"
        curve = client.get_metric_history(run.info.run_id, "train_loss_nats")
        assert [c.step for c in curve] == [20, 40, 60]
        assert curve[-1].value < curve[0].value  # training made progress
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert {"reconstructions.png", "samples.png", "result.json"} <= artifacts
        assert "labelled" not in artifacts  # those go through log_image, below
        # Keyed log_image at the last step: what the UI lines up across compared runs.
        images = [a.path for a in client.list_artifacts(run.info.run_id, "images")]
        for key in ("reconstructions", "samples"):
            assert any(i.startswith(f"images/{key}+step+60+") and i.endswith(".png")
                       for i in images), images  # fmt: skip
    # The sweep run holds the sweep file, the resolved trials, the tables and the figure, and a
    # summary per grid point, so the tracking server alone shows the result.
    sweep_files = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"table.md", "table.tex", "table.csv", "figure.png", "sweep"} <= sweep_files
    inputs = {a.path for a in client.list_artifacts(parent.info.run_id, "sweep")}
    assert inputs == {"sweep/smoke.yaml", "sweep/resolved.yaml"}
    summary = parent.data.metrics
    for b in ("1.0", "4.0"):
        assert summary[f"beta:{b}/n_finished"] == 1
        trial = next(r for r in trials if r.data.params["beta"] == b)
        assert summary[f"beta:{b}/mse_per_pixel_mean"] == trial.data.metrics["mse_per_pixel"]
    assert parent.data.params["train.steps"] == "60" and "beta" not in parent.data.params
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"
    assert "2/2 finished" in out.stdout
    mlflow = Path(sys.executable).with_name("mlflow")  # the venv's, not whatever is on PATH
    assert f"{mlflow} ui --backend-store-uri sqlite:///{results}/mlflow.db" in out.stdout
    assert f"http://127.0.0.1:5000/#/experiments/{exp.experiment_id}/runs" in out.stdout
    assert "trial 1/2" in out.stdout and "ETA" in out.stdout


def test_smoke_sweep_writes_tables_and_report_rebuilds_them(smoke):
    results, _ = smoke
    out_dir = results / "smoke"
    runs = pd.read_csv(out_dir / "runs.csv")
    assert len(runs) == 2
    assert {"beta", "seed", "mse", "kl", "elbo", "mig", "status"} <= set(runs.columns)
    table = (out_dir / "table.md").read_text()
    assert "| β | MSE | KL (nats) |" in table and "dSprites-like" in table
    assert "Machine" in table and "Commit" in table and "profile `default`" in table
    assert (out_dir / "table.tex").read_text().count("\\\\") >= 3
    assert (out_dir / "figure.png").stat().st_size > 10_000

    before = {
        p.name: p.read_bytes() for p in out_dir.iterdir() if p.suffix in (".md", ".csv", ".tex")
    }
    moved = out_dir.with_name("smoke-before-rebuild")
    shutil.move(out_dir, moved)
    out = run_cli("benchmark.report", "sweeps/smoke.yaml", "--results-dir", str(results))
    # The fixture is shared: give later tests back the driver's sweep.json (the report does
    # not write it).
    shutil.copy(moved / "sweep.json", out_dir / "sweep.json")
    assert out.returncode == 0, out.stderr
    after = {
        p.name: p.read_bytes() for p in out_dir.iterdir() if p.suffix in (".md", ".csv", ".tex")
    }
    assert after == before
    assert (out_dir / "figure.png").exists()
    images = sorted(p.name for p in (out_dir / "images").iterdir())
    assert images == [f"beta-{b}_seed-0_{kind}.png" for b in (1.0, 4.0)
                      for kind in ("reconstructions", "samples")]  # fmt: skip


def _results_name(args: list[str]) -> str:
    """The folder and experiment of a smoke run with these CLI args (`Sweep.results_name`)."""
    overrides = [args[i + 1] for i, a in enumerate(args) if a == "--override"]
    return f"smoke+{overrides_hash(overrides)}" if overrides else "smoke"


def test_a_diverging_trial_does_not_take_the_sweep_down(tmp_path):
    results = tmp_path / "results"
    env_path = os.environ.get("PYTHONPATH", "")
    os.environ["PYTHONPATH"] = f"{REPO}:{env_path}"  # the Ray workers import the plugin too
    try:
        args = ["sweeps/smoke.yaml", "--results-dir", str(results), "--plugin",
                "tests.plugins.nan_vae", "--override", "grid.variant=[beta_vae, nan_vae]",
                "--override", "grid.beta=[2]", "--strict"]  # fmt: skip
        out = run_cli("benchmark.run", *args)
    finally:
        os.environ["PYTHONPATH"] = env_path
    assert out.returncode == 1, out.stdout + out.stderr  # --strict: not every trial finished
    assert "1/2 finished (1 finished, 1 diverged)" in out.stdout
    client = _client(results)
    name = _results_name(args)  # a run with overrides has a folder of its own
    exp = client.get_experiment_by_name(name)
    trials = {
        r.data.params["variant"]: r
        for r in client.search_runs([exp.experiment_id])
        if r.data.tags.get("vaebench.role") == "trial"
    }
    bad = trials["nan_vae"]
    assert bad.info.status == "FAILED"
    assert bad.data.tags["vaebench.status"] == "diverged"
    assert bad.data.tags["vaebench.diverged_step"] == "31"
    assert "nan" in bad.data.tags["vaebench.reason"]
    assert "mse_per_pixel" not in bad.data.metrics
    assert trials["beta_vae"].data.tags["vaebench.status"] == "finished"
    table = (results / name / "table.md").read_text()
    assert "1 diverged" in table
    runs = pd.read_csv(results / name / "runs.csv")
    assert sorted(runs["status"]) == ["diverged", "finished"]


def test_eight_concurrent_trials_on_the_embedded_store_lose_nothing(tmp_path):
    # Ray is told there are 8 CPUs, so all 8 trials run at once; the driver is the only writer
    # of the SQLite store, so no trial can meet "database is locked".
    results = tmp_path / "results"
    args = [
        "sweeps/smoke.yaml",
        "--results-dir",
        str(results),
        "--num-cpus",
        "8",
        "--override",
        "grid.seed=[0, 1, 2, 3, 4, 5, 6, 7]",
        "--override",
        "grid.beta=[2]",
        "--override",
        "train.steps=900",
        "--override",
        "train.log_every=300",
    ]
    out = run_cli("benchmark.run", *args)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "8/8 finished" in out.stdout
    assert "database is locked" not in out.stdout + out.stderr
    client = _client(results)
    exp = client.get_experiment_by_name(_results_name(args))
    trials = [r for r in client.search_runs([exp.experiment_id])
              if r.data.tags.get("vaebench.role") == "trial"]  # fmt: skip
    assert len(trials) == 8
    assert sorted(int(r.data.params["seed"]) for r in trials) == list(range(8))
    for run in trials:
        assert run.info.status == "FINISHED"
        assert all(math.isfinite(run.data.metrics[k]) for k in METRICS)
        assert len(client.get_metric_history(run.info.run_id, "train_loss_nats")) == 3
    # They really overlapped: every trial started before the first one ended.
    assert max(r.info.start_time for r in trials) < min(r.info.end_time for r in trials)
