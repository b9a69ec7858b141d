"""Field faults of issue 10, one kind per section; each test reproduces a reported case.

Kind 1: paths relative to the user's directory, used inside trials (own working directories).
Kind 3: a non-finite model reported as finished. Kind 4: unreadable state on disk ends in lost
work. Kind 5: concurrent creation of a new tracking store. Also: training that stops inside its
KL warm-up says so.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pydantic
import pytest
import torch
from mlflow.tracking import MlflowClient

from benchmark.checkpoint import load_checkpoint, save_checkpoint
from benchmark.config import TrialConfig, load_sweep
from benchmark.data import dsprites as ds
from benchmark.feature_nets import cache_paths, load_or_train
from benchmark.manifest import manifest
from benchmark.report import build_report
from benchmark.tracking import Tracker, default_tracking_uri
from benchmark.trial import run_trial
from tests.conftest import REPO
from tests.test_datasets import write_mnist

PY = sys.executable
# What a table must never print for a number: inf, NaN, or MLflow's stand-in for inf.
NOT_A_NUMBER = re.compile(r"(?i)\b-?inf(inity)?\b|\bnan\b|e\+308|1\.797")


def _run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`python -m benchmark.run ...` from `cwd`, as a user in that directory runs it."""
    full = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    full["PYTHONPATH"] = f"{REPO}:{full.get('PYTHONPATH', '')}"  # workers import the repo
    return subprocess.run([PY, "-m", "benchmark.run", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=600, env=full)  # fmt: skip


def _client(results: Path) -> MlflowClient:
    return MlflowClient(tracking_uri=default_tracking_uri(results))


def _trial_runs(results: Path, experiment: str) -> list:
    client = _client(results)
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id])
    return [r for r in runs if r.data.tags.get("vaebench.role") == "trial"]


def _sweep_runs(results: Path, experiment: str) -> list:
    client = _client(results)
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id])
    return [r for r in runs if r.data.tags.get("vaebench.role") == "sweep"]


def _assert_no_non_numbers(out: Path) -> None:
    for name in ("table.md", "table.tex", "table.csv"):
        text = (out / name).read_text()
        assert not NOT_A_NUMBER.search(text), (name, NOT_A_NUMBER.search(text))
    # runs.csv: every column but the reason, which may quote the value that diverged.
    runs = pd.read_csv(out / "runs.csv").drop(columns=["reason"])
    text = runs.to_csv(index=False, na_rep="")
    assert not NOT_A_NUMBER.search(text), NOT_A_NUMBER.search(text)


def write_dsprites_npz(path: Path) -> None:
    """A tiny npz in the real dSprites layout (keys imgs, latents_classes, latents_values)."""
    sizes = (3, 2, 3, 4, 4)
    grid = np.stack(np.unravel_index(np.arange(np.prod(sizes)), sizes), axis=1)
    latents = np.concatenate([np.zeros((len(grid), 1), np.int64), grid], axis=1)
    imgs = ds.render(grid * np.array([1, 5, 13, 10, 10]) + np.array([0, 0, 0, 1, 1]), 64)
    np.savez_compressed(
        path, imgs=imgs, latents_classes=latents, latents_values=latents.astype(np.float64)
    )


# --- kind 1: paths relative to the user's directory --------------------------------------------

PATHS_SWEEP = """\
name: paths
description: data named relative to the user's directory
base:
  variant: beta_vae
  architecture: mlp2
  latent_dim: 4
  beta: 1
  dataset: {name: dsprites, resolution: 16}
  train: {steps: 10, batch_size: 32, log_every: 5}
  eval: {metrics: [mse, kl, elbo], grid_images: 8}
grid:
  dataset:
    - {name: dsprites, resolution: 16, n_train: 200, n_test: 64}
    - {name: mnist, resolution: 28, n_train: 100, n_test: 32, data_root: data}
    - {name: mnist, resolution: 28, n_train: 100, n_test: 40}
resources: {cpu: 1, gpu: 0}
"""


def test_config_paths_are_absolute_once_validated(tmp_path, monkeypatch):
    write_dsprites_npz(tmp_path / "dsprites_tiny.npz")
    monkeypatch.chdir(tmp_path)
    sweep = load_sweep(REPO / "sweeps/smoke.yaml", overrides=[
        "dataset.path=dsprites_tiny.npz", "eval.metrics=[mse, fid]",
        "eval.inception_weights=dsprites_tiny.npz", "eval.fid_samples=2100",
        "dataset.n_train=100", "dataset.n_test=2200",
        "eval.kid_subset_size=10",
    ])  # fmt: skip
    config = sweep.trials[0].config
    assert config.dataset.path == str(tmp_path / "dsprites_tiny.npz")
    assert config.eval.inception_weights == str(tmp_path / "dsprites_tiny.npz")
    # A trial validates the same config in a directory of its own: it still names the file.
    monkeypatch.chdir(tmp_path.parent)
    again = TrialConfig.model_validate(config.model_dump(mode="json"))
    assert again.hash() == config.hash()


def test_relative_paths_and_env_vars_reach_the_trials(tmp_path):
    # The cases: dataset.path=dsprites_tiny.npz and dataset.data_root=data with the
    # files in the user's directory; and VAEBENCH_DATA_ROOT=data. No trial may download.
    write_dsprites_npz(tmp_path / "dsprites_tiny.npz")
    write_mnist(tmp_path / "data" / "mnist", n_train=120, n_test=48)
    # A --plugin module that lives in the user's directory must be importable in the trials.
    (tmp_path / "user_plugin.py").write_text("FROM_THE_USERS_DIRECTORY = True\n")
    (tmp_path / "paths.yaml").write_text(
        PATHS_SWEEP.replace("n_test: 64}", "n_test: 64, path: dsprites_tiny.npz}")
    )
    out = _run("paths.yaml", "--results-dir", "results", "--num-cpus", "2", "--plugin",
               "user_plugin", cwd=tmp_path,
               env={"VAEBENCH_DATA_ROOT": "data"})  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert "3/3 finished" in out.stdout, out.stdout + out.stderr
    runs = _trial_runs(tmp_path / "results", "paths")
    assert sorted(r.data.tags["vaebench.status"] for r in runs) == ["finished"] * 3
    # The recorded config holds the absolute paths the trials used.
    params = {r.data.params["dataset.n_test"]: r.data.params for r in runs}
    assert params["64"]["dataset.path"] == str(tmp_path / "dsprites_tiny.npz")
    assert params["32"]["dataset.data_root"] == str(tmp_path / "data")
    mnist = [
        r.data.tags["vaebench.dataset"] for r in runs if "MNIST" in r.data.tags["vaebench.dataset"]
    ]
    assert len(mnist) == 2 and all(f"({tmp_path / 'data' / 'mnist'})" in d for d in mnist)


def test_a_failed_trials_reason_is_the_real_exceptions_first_line(tmp_path):
    out = _run(str(REPO / "sweeps/smoke.yaml"), "--results-dir", "results", "--num-cpus", "1",
               "--plugin", "tests.plugins.fails_in_trial", "--override", "grid.beta=[1]",
               "--override", "train.steps=5", cwd=tmp_path,
               env={"VAEBENCH_TEST_USER_DIR": str(tmp_path)})  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0/1 finished (1 failed)" in out.stdout, out.stdout + out.stderr
    want = "ValidationError: cwd: this plugin only imports in the user's directory"
    # a run with overrides has a folder and experiment of its own (Sweep.results_name)
    name = load_sweep(REPO / "sweeps/smoke.yaml", overrides=["grid.beta=[1]", "train.steps=5"])
    (run,) = _trial_runs(tmp_path / "results", name.results_name)
    assert run.data.tags["vaebench.reason"] == want
    assert want in out.stdout  # the console's line for the trial
    csv = pd.read_csv(tmp_path / "results" / name.results_name / "runs.csv")
    assert list(csv["reason"]) == [want]
    assert "pydantic.dev" not in out.stdout + csv.to_csv()


def test_reason_unwraps_ray_and_pydantic():
    from ray.exceptions import RayTaskError

    from benchmark.failure import reason, reason_from_traceback

    class M(pydantic.BaseModel):
        n: int

    try:
        M(n="many")
    except pydantic.ValidationError as e:
        err = e
    want = "ValidationError: n: Input should be a valid integer, unable to parse string as an "
    want += "integer"
    assert reason(err) == want
    assert reason(RayTaskError("train", "Traceback ...", err)) == want
    assert reason(RuntimeError("first\nsecond")) == "RuntimeError: first"
    text = (
        "Failure # 1 (occurred at 2026-11-30_11:00:00)\n"
        "ray::ImplicitFunc.train() (pid=1, ip=127.0.0.1)\n"
        '  File "x.py", line 1, in f\n'
        "pydantic_core._pydantic_core.ValidationError: 1 validation error for TrialConfig\n"
        "dataset\n"
        "  Value error, path 'dsprites_tiny.npz' does not exist [type=value_error, input_value="
        "{'name': 'dsprites'}, input_type=dict]\n"
        "    For further information visit https://errors.pydantic.dev/2.14/v/value_error\n"
    )
    assert reason_from_traceback(text) == (
        "ValidationError: dataset: path 'dsprites_tiny.npz' does not exist"
    )


# --- kind 3: a non-finite model is never "finished" ---------------------------------------------


@pytest.mark.parametrize(("lr", "steps"), [(0.3, 3), (1e10, 1)])
def test_non_finite_model_is_diverged_and_no_table_prints_inf_or_nan(tmp_path, lr, steps):
    sweep = load_sweep(REPO / "sweeps/smoke.yaml",
                       overrides=[f"train.lr={lr}", f"train.steps={steps}"])  # fmt: skip
    results = tmp_path / "results"
    tracker = Tracker(default_tracking_uri(results), results, sweep.results_name)
    parent = tracker.start_sweep(sweep, manifest())
    for t in sweep.trials:
        result = run_trial(t.config, tmp_path / t.name)
        assert result["status"] == "diverged", result
        assert result["diverged_step"] == steps
        assert "not finite" in result["reason"] or "loss is" in result["reason"]
        tracker.finish_trial(tracker.start_trial(t, len(sweep.trials)), result, None)
    tracker.finish_sweep({"diverged": len(sweep.trials)})
    build_report(tracker.uri, sweep.results_name, results / "smoke", parent, only="tables")
    table = (results / "smoke" / "table.md").read_text()
    header = next(line for line in table.splitlines() if line.startswith("| β"))
    for column in ("MSE", "KL (nats)", "ELBO (nats)"):
        assert column in header
    _assert_no_non_numbers(results / "smoke")


def test_report_never_prints_mlflows_stand_in_for_inf(tmp_path):
    # A store written before this fix holds KL = inf as 1.797e308 and ELBO = NaN.
    sweep = load_sweep(REPO / "sweeps/smoke.yaml", overrides=["grid.beta=[1]", "train.steps=5"])
    results = tmp_path / "results"
    tracker = Tracker(default_tracking_uri(results), results, sweep.results_name)
    parent = tracker.start_sweep(sweep, manifest())
    run_id = tracker.start_trial(sweep.trials[0], 1)
    client = tracker.client
    client.log_metric(run_id, "mse", 0.42)
    client.log_metric(run_id, "kl", float("inf"))
    client.log_metric(run_id, "elbo", float("nan"))
    tracker.finish_trial(run_id, {"status": "finished"}, None)
    tracker.finish_sweep({"finished": 1})
    build_report(tracker.uri, sweep.results_name, results / "smoke", parent, only="tables")
    table = (results / "smoke" / "table.md").read_text()
    assert "ELBO (nats)" in table and "KL (nats)" in table
    row = table.strip().splitlines()[-1]
    assert "0.4200" in row and row.count("n/a") >= 2
    _assert_no_non_numbers(results / "smoke")


# --- kind 4: unreadable state on disk -------------------------------------------------------------


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.fixture(scope="module")
def config():
    overrides = ["train.steps=40", "eval.metrics=[mse, kl, elbo]"]
    return load_sweep(REPO / "sweeps/smoke.yaml", overrides=overrides).trials[0].config


def _checkpointed(config, state: Path, tmp_path: Path) -> None:
    """Leave a trial cut off after its checkpoint at step 20, as Ctrl-C would."""

    class Killed(Exception):
        pass

    def kill(record):
        if record["step"] >= 30:
            raise Killed

    with pytest.raises(Killed):
        run_trial(config, tmp_path / "cut", kill, state_dir=state, checkpoint_every=20)
    assert (state / "state.pt").is_file()


def test_truncated_checkpoint_is_set_aside_and_the_trial_retrained(config, tmp_path):
    state = tmp_path / "state"
    _checkpointed(config, state, tmp_path)
    _truncate(state / "state.pt")
    result = run_trial(config, tmp_path / "again", state_dir=state, checkpoint_every=20)
    assert result["status"] == "finished"
    assert "resumed_from_step" not in result  # from step 0
    assert "set aside" in result["notes"]["checkpoint"]
    (aside,) = state.glob("state.pt.corrupt-*")
    assert aside.stat().st_size > 0
    starts = [
        json.loads(x)["start_step"] for x in (state / "attempts.jsonl").read_text().splitlines()
    ]
    assert starts == [0, 0]
    # A checkpoint holding something else than the training state is set aside the same way.
    save_checkpoint(state / "state.pt", {"step": 1})
    torch.save([1, 2], state / "state.pt")
    problems: list[str] = []
    assert load_checkpoint(state / "state.pt", config.hash(), problems) is None
    assert len(problems) == 1 and len(list(state.glob("state.pt.corrupt-*"))) == 2


def test_unreadable_kept_result_and_caches_are_set_aside_and_recomputed(tmp_path, capsys):
    from benchmark.readback import read_json

    (tmp_path / "result.json").write_text('{"status": "finis')
    assert read_json(tmp_path / "result.json") is None
    assert "set aside" in capsys.readouterr().err
    assert [p.name.split("-")[0] for p in tmp_path.iterdir()] == ["result.json.corrupt"]
    # A feature net whose weights are truncated: set aside and retrained by the driver.
    load_or_train("digits", 8, tmp_path, steps=5, progress=lambda _: None)
    pt, js = cache_paths("digits", 8, tmp_path)
    _truncate(pt)
    _, meta = load_or_train("digits", 8, tmp_path, steps=5, progress=lambda _: None)
    assert meta["weights_sha256"]
    assert len(list(tmp_path.glob(f"{pt.name}.corrupt-*"))) == 1
    assert len(list(tmp_path.glob(f"{js.name}.corrupt-*"))) == 1


SWEEP_40 = ["--override", "train.steps=40", "--override", "train.log_every=10"]


def test_rerun_with_a_truncated_checkpoint_resumes_the_same_sweep_run(tmp_path):
    # The case: a trial cut off after its state.pt exists, the file truncated to half,
    # then the same command rerun. The trial must be retrained in the SAME sweep run, and the
    # sweep marked finished only when every trial is done.
    sweep = load_sweep(REPO / "sweeps/smoke.yaml", overrides=["train.steps=40",
                                                              "train.log_every=10"])  # fmt: skip
    results = tmp_path / "results"
    tracker = Tracker(default_tracking_uri(results), results, sweep.results_name)
    parent = tracker.start_sweep(sweep, manifest())  # a driver that was then killed
    first = sweep.trials[0]
    state = results / "ray" / f"{sweep.results_name}-{parent[:8]}" / "trials" / first.config.hash()
    _checkpointed(first.config, state, tmp_path)
    _truncate(state / "state.pt")
    out = _run(str(REPO / "sweeps/smoke.yaml"), "--results-dir", str(results), "--num-cpus",
               "2", "--checkpoint-every", "20", *SWEEP_40, cwd=REPO)  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"resuming the interrupted sweep run {parent}" in out.stdout
    assert "2/2 finished" in out.stdout, out.stdout + out.stderr
    (sweep_run,) = _sweep_runs(results, sweep.results_name)
    assert sweep_run.info.run_id == parent
    assert sweep_run.data.tags["vaebench.status"] == "finished"
    assert list(state.glob("state.pt.corrupt-*"))
    runs = {r.data.tags["vaebench.trial_hash"]: r
            for r in _trial_runs(results, sweep.results_name)}  # fmt: skip
    assert "set aside" in runs[first.config.hash()].data.tags["vaebench.note.checkpoint"]


def test_a_sweep_with_failed_trials_is_not_marked_finished(tmp_path):
    sweep = load_sweep(REPO / "sweeps/smoke.yaml")
    results = tmp_path / "results"
    tracker = Tracker(default_tracking_uri(results), results, sweep.results_name)
    parent = tracker.start_sweep(sweep, manifest())
    assert tracker.finish_sweep({"finished": 1, "failed": 1}) == "incomplete"
    found = Tracker(default_tracking_uri(results), results, "smoke").find_resumable(sweep)
    assert found is not None and found[0] == parent  # a rerun retries the failed trial there


# --- kind 5: two drivers on a new store ---------------------------------------------------------


def test_two_drivers_started_together_on_a_new_store_both_finish(tmp_path):
    results = tmp_path / "results"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    args = [PY, "-m", "benchmark.run", str(REPO / "sweeps/smoke.yaml"), "--results-dir",
            str(results), "--num-cpus", "1", "--override", "grid.beta=[1]", "--override",
            "train.steps=10", "--override", "train.log_every=5"]  # fmt: skip
    procs = [subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for _ in range(2)]  # fmt: skip
    outs = [p.communicate(timeout=600)[0] for p in procs]
    for p, out in zip(procs, outs, strict=True):
        assert p.returncode == 0, out
        assert "1/1 finished" in out, out
    name = load_sweep(REPO / "sweeps/smoke.yaml", overrides=args[-5::2]).results_name
    sweeps = _sweep_runs(results, name)
    assert len(sweeps) == 2  # each driver ran its own sweep run; neither resumed the other's
    assert {s.data.tags["vaebench.status"] for s in sweeps} == {"finished"}
    assert len(_trial_runs(results, name)) == 2


# --- also: training that ends inside its KL warm-up -----------------------------------------------


def test_a_trial_cut_inside_its_kl_warmup_says_so_in_notes_and_table(tmp_path):
    sweep = load_sweep(REPO / "sweeps/smoke.yaml", overrides=[
        "variant=hierarchical", "grid.beta=[1]", "train.steps=20", "eval.metrics=[mse, kl, elbo]",
    ])  # fmt: skip
    results = tmp_path / "results"
    tracker = Tracker(default_tracking_uri(results), results, sweep.results_name)
    parent = tracker.start_sweep(sweep, manifest())
    (t,) = sweep.trials
    result = run_trial(t.config, tmp_path / "trial")
    assert result["status"] == "finished"
    note = result["notes"]["kl_warmup"]
    assert "step 20" in note and "1000-step KL warm-up" in note and "0.02" in note
    tracker.finish_trial(tracker.start_trial(t, 1), result, None)
    tracker.finish_sweep({"finished": 1})
    build_report(tracker.uri, sweep.results_name, results / "smoke", parent, only="tables")
    table = (results / "smoke" / "table.md").read_text()
    assert "**KL warm-up not over**: hierarchical: training ended at step 20" in table
    assert "1000-step" in (results / "smoke" / "table.tex").read_text()
    # A run that gets through its warm-up has no such note.
    done = load_sweep(
        REPO / "sweeps/smoke.yaml",
        overrides=["train.steps=20", "train.kl_warmup_steps=10", "eval.metrics=[mse]"],
    )
    assert "kl_warmup" not in run_trial(done.trials[0].config, tmp_path / "b")["notes"]


def test_a_run_whose_driver_died_before_its_params_gets_them_on_resume(tmp_path):
    # SIGKILL between `create_run` and the params of `start_trial`: the reopened run is repaired.
    from benchmark.progress import Progress
    from benchmark.tune import MLflowProgressCallback

    sweep = load_sweep(REPO / "sweeps/smoke.yaml", overrides=["grid.beta=[4]"])
    results = tmp_path / "results"
    tracker = Tracker(default_tracking_uri(results), results, sweep.results_name)
    tracker.start_sweep(sweep, manifest())
    bare = tracker.client.create_run(tracker.experiment_id, tags={"mlflow.parentRunId":
                                                                  tracker.parent_id})  # fmt: skip
    run_id = bare.info.run_id
    assert not tracker.client.get_run(run_id).data.params
    callback = MLflowProgressCallback(sweep, tracker, Progress([60]), {0: run_id})
    trial = type("T", (), {"trial_id": "t0", "config": {"index": 0}})()
    assert callback._run_id(trial, sweep.trials[0]) == run_id  # reused, not duplicated
    params = tracker.client.get_run(run_id).data.params
    assert params["beta"] == "4.0" and params["likelihood"] == "bernoulli"


def test_a_sweep_run_whose_driver_died_before_its_inputs_gets_them_on_resume(tmp_path):
    # SIGKILL between `create_run` and `_log_sweep_inputs` of `start_sweep`: resume repairs it.
    sweep = load_sweep(REPO / "sweeps/smoke.yaml", overrides=["grid.beta=[4]"])
    results = tmp_path / "results"
    tracker = Tracker(default_tracking_uri(results), results, sweep.results_name)
    bare = tracker.client.create_run(tracker.experiment_id, tags={"vaebench.role": "sweep"})
    parent = bare.info.run_id
    tracker.resume_sweep(parent, manifest(), sweep, ["train.steps=60"])
    run = tracker.client.get_run(parent)
    assert run.data.params["profile"] == "default" and run.data.params["n_trials"] == str(
        len(sweep.trials)
    )
    assert run.data.params["variant"] == "beta_vae"
    files = {a.path for a in tracker.client.list_artifacts(parent, "sweep")}
    assert "sweep/resolved.yaml" in files
    tracker.resume_sweep(parent, manifest(), sweep)  # already complete: nothing logged twice
    assert tracker.client.get_run(parent).data.params == run.data.params


class _Killed(BaseException):
    """Stands for SIGKILL of the driver at one point of an MLflow write sequence."""


def test_a_run_is_marked_finished_only_after_its_files_and_a_half_copy_is_dropped(
    tmp_path, monkeypatch
):
    from benchmark.tracking import copy_trial, find_cached

    sweep = load_sweep(REPO / "sweeps/smoke.yaml", overrides=["grid.beta=[4]"])
    trial = sweep.trials[0]
    results = tmp_path / "results"
    tracker = Tracker(default_tracking_uri(results), results, sweep.results_name)
    tracker.start_sweep(sweep, manifest())
    files = tmp_path / "files"
    files.mkdir()
    (files / "result.json").write_text("{}")
    result = {"status": "finished", "mse": 0.5, "trial_hash": trial.config.hash()}

    # killed while the trial's files are logged: the run is not marked finished
    run_id = tracker.start_trial(trial, 1)
    real = tracker._log_trial_files
    monkeypatch.setattr(tracker, "_log_trial_files", lambda *a: (_ for _ in ()).throw(_Killed))
    with pytest.raises(_Killed):
        tracker.finish_trial(run_id, result, files)
    assert tracker.client.get_run(run_id).data.tags["vaebench.status"] == "running"
    monkeypatch.setattr(tracker, "_log_trial_files", real)
    tracker.finish_trial(run_id, result, files)
    tracker.client.set_tag(run_id, "vaebench.identity", "ident")
    assert tracker.client.get_run(run_id).data.tags["vaebench.status"] == "finished"

    # a cache copy into another sweep run, killed half-way: neither cached nor kept on resume
    other = Tracker(default_tracking_uri(results), results, sweep.results_name)
    other.start_sweep(sweep, manifest())
    monkeypatch.setattr(other.client, "log_artifacts", lambda *a: (_ for _ in ()).throw(_Killed))
    with pytest.raises(_Killed):
        copy_trial(other, run_id, trial, 1)
    assert find_cached(other, "ident", exclude_parent=None) == run_id  # not the half copy
    parent, children = other.find_resumable(sweep)
    assert parent == other.parent_id and children == {}
    half = [r for r in other._children(parent)]
    assert half == []  # deleted, so the cache copies it again
