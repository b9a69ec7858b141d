"""Checkpoints and resume: bitwise continuation, and a real sweep killed and rerun."""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from mlflow.tracking import MlflowClient

from benchmark.checkpoint import load_checkpoint, save_checkpoint
from benchmark.config import load_sweep, overrides_hash
from benchmark.trial import run_trial
from tests.conftest import REPO, run_cli

KEYS = ("mse", "kl", "elbo", "recon", "mig", "active_units")


@pytest.fixture(scope="module")
def config():
    # 200 steps, checkpoints every 50: the resumed run must land on the same bits.
    return load_sweep("sweeps/smoke.yaml", overrides=["train.steps=200"]).trials[0].config


def test_resumed_trial_equals_uninterrupted_bitwise(config, tmp_path):
    straight = run_trial(config, tmp_path / "straight")

    class Killed(Exception):
        pass

    def kill_after_first_checkpoint(record):
        if record["step"] >= 60:  # past the checkpoint at step 50: work after it is lost
            raise Killed

    state = tmp_path / "state"
    with pytest.raises(Killed):
        run_trial(config, tmp_path / "a", kill_after_first_checkpoint, state_dir=state,
                  checkpoint_every=50)  # fmt: skip
    assert load_checkpoint(state / "state.pt", config.hash())["step"] == 50
    resumed = run_trial(config, tmp_path / "b", state_dir=state, checkpoint_every=50)
    assert resumed["resumed_from_step"] == 50
    for key in KEYS:
        assert resumed[key] == straight[key], key  # bitwise, not approx
    attempts = [json.loads(line) for line in (state / "attempts.jsonl").read_text().splitlines()]
    assert [a["start_step"] for a in attempts] == [0, 50]
    assert not (state / "state.pt").exists()  # dropped once the result is written


def test_checkpoint_of_another_config_is_ignored(config, tmp_path):
    path = tmp_path / "state.pt"
    save_checkpoint(path, {"trial_hash": "someone-else", "step": 10})
    assert load_checkpoint(path, config.hash()) is None
    save_checkpoint(path, {"trial_hash": config.hash(), "step": 10})
    assert load_checkpoint(path, config.hash())["step"] == 10


def test_checkpoint_loading_refuses_pickled_code(tmp_path):
    # weights_only=True: a checkpoint holding an arbitrary object cannot run code on load.
    path = tmp_path / "state.pt"
    torch.save({"format": 1, "trial_hash": "x", "obj": Path("/")}, path)
    with pytest.raises(Exception, match="[Ww]eights only"):
        load_checkpoint(path, "x")


# --- a real sweep, killed and rerun -------------------------------------------------------

SWEEP = """\
name: resume
description: four short trials, killed and resumed
base:
  variant: stalling_vae
  architecture: mlp2
  latent_dim: 4
  dataset: {name: dsprites, resolution: 16, n_train: 512, n_test: 128}
  train: {steps: 200, batch_size: 32, log_every: 20}
  eval: {metrics: [mse, kl, elbo], grid_images: 8}
grid:
  beta: [1, 2, 4, 8]
resources: {cpu: 1, gpu: 0}
"""


# The plugin's β-VAE stalls (sleeps) mid-training for β ≥ 4 while the killed driver runs, so
# the kill certainly cuts those trials off after their first checkpoint; it computes as beta_vae.
RUN_ARGS = ("--num-cpus", "2", "--checkpoint-every", "50", "--plugin", "tests.plugins.stalls")
STALL = {"VAEBENCH_TEST_STALL_FROM_BETA": "4"}


def _runs(results: Path) -> list:
    client = MlflowClient(tracking_uri=f"sqlite:///{results / 'mlflow.db'}")
    exp = client.get_experiment_by_name("resume")
    return client.search_runs([exp.experiment_id]) if exp else []


def _attempts(results: Path) -> dict[str, list[int]]:
    out = {}
    for path in results.glob("ray/*/trials/*/attempts.jsonl"):
        out[path.parent.name] = [json.loads(x)["start_step"] for x in path.read_text().splitlines()]
    return out


class _Driver:
    """`python -m benchmark.run` in the background, its output collected line by line."""

    def __init__(self, sweep: Path, results: Path, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmark.run", str(sweep), "--results-dir", str(results),
             *RUN_ARGS],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
        )  # fmt: skip
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)

    def wait_for(self, predicate, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while not predicate(self):
            assert self.proc.poll() is None, "".join(self.lines)
            assert time.monotonic() < deadline, "timed out:\n" + "".join(self.lines)
            time.sleep(0.5)

    def output(self, timeout: float = 120) -> str:
        self.proc.wait(timeout=timeout)
        self.reader.join(timeout=10)
        return "".join(self.lines)


def _finished_trials(results: Path) -> int:
    return sum(
        1 for r in _runs(results)
        if r.data.tags.get("vaebench.role") == "trial"
        and r.data.tags.get("vaebench.status") == "finished"
    )  # fmt: skip


def _cut_off(results: Path) -> set[str]:
    """Trials with a checkpoint and no result yet: killing now cuts them off mid-training."""
    return {
        p.parent.name for p in results.glob("ray/*/trials/*/state.pt")
        if not (p.parent / "out" / "result.json").exists()
    }  # fmt: skip


@pytest.fixture(scope="module")
def sweep_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("sweep") / "resume.yaml"
    path.write_text(SWEEP)
    return path


@pytest.fixture(scope="module")
def uninterrupted(sweep_file, tmp_path_factory) -> Path:
    results = tmp_path_factory.mktemp("clean") / "results"
    out = run_cli("benchmark.run", str(sweep_file), "--results-dir", str(results), *RUN_ARGS)
    assert out.returncode == 0, out.stdout + out.stderr
    return results


@pytest.mark.parametrize("how", ["SIGKILL", "SIGINT"])
def test_killed_sweep_resumes_without_retraining_or_duplicate_runs(
    tmp_path, sweep_file, uninterrupted, how
):
    sweep = sweep_file
    results = tmp_path / "results"
    driver = _Driver(sweep, results, STALL)
    # Kill once one trial is recorded (its end line is printed after MLflow has it) and a stalled
    # one has a checkpoint, so there is both finished and cut-off work.
    driver.wait_for(lambda d: any(": finished" in x for x in d.lines) and _cut_off(results))
    before = _attempts(results)
    done_before = {p.parent.parent.name for p in results.glob("ray/*/trials/*/out/result.json")}
    if how == "SIGKILL":  # the driver alone, as when its terminal or node disappears
        driver.proc.kill()
    else:  # Ctrl-C
        driver.proc.send_signal(signal.SIGINT)
    out = driver.output()
    cut = _cut_off(results)  # after the kill: what was really cut off, not what was about to end
    assert cut, out
    if how == "SIGINT":
        assert driver.proc.returncode == 130, out
        assert "rerun the same command to resume" in out
        # Cut-off trials are 'interrupted', not 'not run'; Tune's own (wrong) advice is hidden.
        assert re.search(r"finished \(.*\d+ interrupted", out), out
        assert "Tuner.restore" not in out
    finished_before = _finished_trials(results)
    assert 1 <= finished_before < 4

    again = run_cli("benchmark.run", str(sweep), "--results-dir", str(results), *RUN_ARGS)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "resuming the interrupted sweep run" in again.stdout
    assert "4/4 finished" in again.stdout

    runs = _runs(results)
    parents = [r for r in runs if r.data.tags["vaebench.role"] == "sweep"]
    trials = [r for r in runs if r.data.tags["vaebench.role"] == "trial"]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert len(trials) == 4  # no duplicate run for a resumed trial
    assert len({r.data.tags["vaebench.trial_hash"] for r in trials}) == 4
    assert all(r.data.tags["vaebench.status"] == "finished" for r in trials)
    for r in trials:  # no curve point logged twice
        steps = [m.step for m in MlflowClient(
            tracking_uri=f"sqlite:///{results / 'mlflow.db'}"
        ).get_metric_history(r.info.run_id, "train_loss_nats")]  # fmt: skip
        assert steps == list(range(20, 201, 20))

    attempts = _attempts(results)
    assert len(attempts) == 4
    # Trials that finished before the kill were not trained again.
    assert len(done_before) >= 1
    for h in done_before:
        assert attempts[h] == before[h] == [0]
    # The trials cut off mid-training continued from their checkpoints, not from step 0.
    assert all(attempts[h][-1] > 0 for h in cut), (cut, attempts)

    # The final table equals an uninterrupted run's.
    clean = uninterrupted
    cols = ["beta", "mse", "kl", "elbo"]
    a = pd.read_csv(results / "resume" / "runs.csv")[cols].sort_values("beta")
    b = pd.read_csv(clean / "resume" / "runs.csv")[cols].sort_values("beta")
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True))
    tables = [pd.read_csv(r / "resume" / "table.csv") for r in (results, clean)]
    timing = [c for c in tables[0].columns if c.startswith("train_seconds")]
    pd.testing.assert_frame_equal(tables[0].drop(columns=timing), tables[1].drop(columns=timing))


def test_a_dead_worker_is_retried_from_its_checkpoint(tmp_path, monkeypatch):
    marker = tmp_path / "died"
    monkeypatch.setenv("VAEBENCH_TEST_DIES_ONCE_MARKER", str(marker))
    # The Ray workers import the plugin too.
    monkeypatch.setenv("PYTHONPATH", f"{REPO}:{os.environ.get('PYTHONPATH', '')}")
    results = tmp_path / "results"
    out = run_cli(
        "benchmark.run", "sweeps/smoke.yaml", "--results-dir", str(results),
        "--plugin", "tests.plugins.dies_once", "--override", "variant=dies_once_vae",
        "--override", "grid.beta=[2]", "--override", "train.steps=200",
        "--checkpoint-every", "50",
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert marker.read_text() == "died"  # the first attempt's worker really died
    assert "error, retrying" in out.stdout and "1/1 finished" in out.stdout
    # Died after step 120: the retry started from the checkpoint at step 100, not from 0.
    assert list(_attempts(results).values()) == [[0, 100]]
    name = "smoke+" + overrides_hash(["variant=dies_once_vae", "grid.beta=[2]", "train.steps=200"])
    trials = [r for r in _runs_of(results, name) if r.data.tags["vaebench.role"] == "trial"]
    assert len(trials) == 1 and trials[0].data.tags["vaebench.status"] == "finished"
    assert trials[0].data.metrics["resumed_from_step"] == 100


def _runs_of(results: Path, experiment: str) -> list:
    client = MlflowClient(tracking_uri=f"sqlite:///{results / 'mlflow.db'}")
    return client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
