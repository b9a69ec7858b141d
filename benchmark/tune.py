"""Running a sweep's trials as Ray Tune trials, with MLflow written from the driver.

The trainable is a thin wrapper around `benchmark.trial.run_trial`. Each trial's final report
carries a checkpoint directory holding its images and `result.json`; a driver-side Tune
callback turns reports into MLflow metrics and that directory into MLflow artifacts.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import shutil
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Must be set before Ray is imported (DESIGN.md, pitfalls): no token auth for a local cluster,
# no usage stats, no CSV/JSON/TensorBoard loggers that nobody reads.
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")

import ray  # noqa: E402
from ray import tune  # noqa: E402

from benchmark.config import Sweep, Trial, TrialConfig  # noqa: E402
from benchmark.progress import Progress  # noqa: E402
from benchmark.tracking import DONE, Tracker  # noqa: E402
from benchmark.trial import run_trial  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def run_trial_safely(
    config: TrialConfig,
    workdir: Path,
    report: Callable[[dict], None],
    runtime: dict[str, Any],
    state_dir: Path | None = None,
) -> dict[str, Any]:
    """`run_trial`, with a crash turned into a 'failed' result whose traceback is kept."""
    try:
        return run_trial(
            config, workdir, report, device=runtime["device"], cache_dir=runtime["cache_dir"],
            state_dir=state_dir, checkpoint_every=runtime.get("checkpoint_every", 0),
            feature_nets=runtime["feature_nets"],
        )  # fmt: skip
    except Exception as e:  # noqa: BLE001 - any crash must not take the sweep down
        (workdir / "traceback.txt").write_text(traceback.format_exc())
        return {"status": "failed", "reason": f"{type(e).__name__}: {e}"}


def finished_result(workdir: Path) -> dict[str, Any] | None:
    """The result a previous attempt of this trial already wrote, if it is final."""
    path = workdir / "result.json"
    if not path.is_file():
        return None
    result = json.loads(path.read_text())
    return result if result.get("status") in DONE else None


def _trainable(param: dict[str, Any], configs: list[dict[str, Any]]) -> None:
    import torch

    runtime = param["runtime"]
    for module in runtime["plugins"]:  # variants registered outside the repo, named by --plugin
        importlib.import_module(module)
    torch.set_num_threads(runtime["threads"])
    config = TrialConfig.model_validate(configs[param["index"]])
    # A stable folder per trial config (not Ray's per-run trial folder), so that a retry after a
    # worker failure, or a rerun after the driver was killed, finds the checkpoint and results.
    state_dir = Path(runtime["state_root"]) / config.hash()
    workdir = state_dir / "out"
    result = finished_result(workdir)
    if result is None:  # not trained yet, or cut off: (re)train, from the checkpoint if any
        shutil.rmtree(workdir, ignore_errors=True)
        workdir.mkdir(parents=True)
        result = run_trial_safely(config, workdir, tune.report, runtime, state_dir)
    scalars = {k: v for k, v in result.items() if k != "notes"}
    tune.report({**scalars, "done": True}, checkpoint=tune.Checkpoint.from_directory(workdir))


class MLflowProgressCallback(tune.Callback):
    """Driver side: trial runs in MLflow, progress lines on stdout, a summary at the end."""

    def __init__(
        self,
        sweep: Sweep,
        tracker: Tracker,
        progress: Progress,
        reuse_runs: dict[int, str] | None = None,
    ) -> None:
        self.sweep, self.tracker, self.progress = sweep, tracker, progress
        self.run_ids: dict[str, str] = {}
        self.statuses: dict[int, str] = {}
        self.reuse_runs = dict(reuse_runs or {})  # trial index → its unfinished MLflow run

    def _run_id(self, trial: Any, t: Trial) -> str:
        if trial.trial_id not in self.run_ids:
            reuse = self.reuse_runs.pop(t.index, None)
            self.run_ids[trial.trial_id] = (
                self.tracker.reopen_trial(reuse)
                if reuse
                else self.tracker.start_trial(t, len(self.sweep.trials))
            )
        return self.run_ids[trial.trial_id]

    def _trial(self, trial: Any) -> Trial:
        return self.sweep.trials[trial.config["index"]]

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        t = self._trial(trial)
        self._run_id(trial, t)
        self.progress.start(t.index, t.name)

    def on_trial_result(
        self, iteration: int, trials: list, trial: Any, result: dict, **info: Any
    ) -> None:
        if result.get("done"):
            return
        t = self._trial(trial)
        keys = ("train_loss", "train_recon", "train_kl", "kl_weight", "lr", "grad_norm")
        curve = {k: result[k] for k in keys if k in result}
        self.tracker.log_curve(self._run_id(trial, t), curve, step=result["step"])
        self.progress.step(t.index, t.name, result["step"], result["train_loss"])

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        t = self._trial(trial)
        result = dict(trial.last_result or {})
        result.pop("done", None)
        checkpoint = trial.checkpoint
        if checkpoint is None:
            self._finish(t, trial, result, None)
            return
        with checkpoint.as_directory() as d:
            saved = Path(d) / "result.json"
            if saved.is_file():
                result = json.loads(saved.read_text())
            self._finish(t, trial, result, Path(d))

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        # Only errors outside `run_trial_safely` land here (a worker that died, a broken
        # import): retries are exhausted, so the trial is recorded as failed with Ray's traceback.
        t = self._trial(trial)
        text = _error_text(trial)
        with tempfile.TemporaryDirectory() as d:
            if text:
                (Path(d) / "traceback.txt").write_text(text)
            reason = f"Ray trial error: {_last_line(text) or 'worker died'}"
            self._finish(t, trial, {"status": "failed", "reason": reason}, Path(d))

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        t = self._trial(trial)
        line = _last_line(_error_text(trial)) or "worker died"
        self.progress.note(t.index, t.name, f"error, retrying: {line}")

    def _finish(self, t: Trial, trial: Any, result: dict, artifacts: Path | None) -> None:
        status = result.get("status", "failed")
        self.statuses[t.index] = status
        self.tracker.finish_trial(self._run_id(trial, t), result, artifacts)
        if status == "finished":
            summary = f"mse {result.get('mse', float('nan')):.4f} kl {result.get('kl', 0):.2f}"
            if "mig" in result:
                summary += f" mig {result['mig']:.3f}"
        else:
            summary = str(result.get("reason", ""))
        self.progress.end(t.index, t.name, status, summary)


def _error_text(trial: Any) -> str:
    path = trial.error_file
    return Path(path).read_text() if path and Path(path).is_file() else ""


def _last_line(text: str) -> str:
    return next((line.strip() for line in reversed(text.splitlines()) if line.strip()), "")


def init_ray(address: str | None, num_cpus: int | None) -> None:
    """Join a cluster (`--address auto` or ray://...) or start a quiet local Ray."""
    if ray.is_initialized():
        return
    if address:
        # The workers of a remote cluster import our code from this checkout.
        ray.init(
            address=address,
            runtime_env={"py_modules": [str(REPO / "benchmark"), str(REPO / "variants")]},
            logging_level="WARNING",
        )
    else:
        ray.init(
            num_cpus=num_cpus or os.cpu_count(),
            include_dashboard=False,
            logging_level="WARNING",
            # Trial output is kept in each trial's artifacts; echoing workers' logs here would
            # bury the progress lines under Ray's checkpoint chatter.
            log_to_driver=False,
        )


def local_cores() -> int | None:
    """The CPUs of a one-node Ray (this machine); None for a multi-node cluster."""
    if len([n for n in ray.nodes() if n.get("Alive")]) > 1:
        return None
    return int(ray.cluster_resources().get("CPU", 1))


def threads_per_trial(cpu_per_trial: float, n_trials: int, cores: int | None) -> int:
    """Torch threads of each trial: its CPUs, or, when the sweep has fewer trials than a one-node
    Ray of `cores` CPUs has slots (a sweep of one trial), an equal share of all the cores, so
    none sits idle. `cores` None (multi-node: which node runs a trial is not known here): the
    trial's CPUs only.
    """
    own = max(1, int(cpu_per_trial))
    if cores is None or n_trials < 1:
        return own
    slots = max(1, int(cores // cpu_per_trial))
    return max(own, cores // min(slots, n_trials))


def run_sweep_with_ray(
    sweep: Sweep,
    tracker: Tracker,
    *,
    storage_path: Path,
    experiment_name: str,
    device: str,
    cache_dir: Path,
    feature_nets: Path,
    plugins: list[str] = (),
    max_failures: int = 1,
    indices: list[int] | None = None,
    reuse_runs: dict[int, str] | None = None,
    checkpoint_every: int = 0,
) -> dict[int, str]:
    """Runs the trials `indices` (default: all); returns each trial's status by index.

    Trials keep their checkpoints and results under `storage_path/<experiment_name>/trials/`,
    which is what lets a killed sweep resume. `reuse_runs` maps a trial index to its unfinished
    MLflow run from the interrupted attempt, which is continued instead of duplicated.
    """
    # By the sweep's size, not by the trials left to run: a resumed trial gets the threads it
    # started with (reductions split across threads need not give the same bits).
    threads = threads_per_trial(sweep.resources.cpu, len(sweep.trials), local_cores())
    runtime = {
        "device": device,
        "cache_dir": str(cache_dir.resolve()),
        "threads": threads,
        "plugins": list(plugins),
        "state_root": str((storage_path / experiment_name / "trials").resolve()),
        "checkpoint_every": checkpoint_every,
        "feature_nets": str(feature_nets.resolve()),
    }
    if indices is None:
        indices = [t.index for t in sweep.trials]
    progress = Progress(
        [t.config.train.steps for t in sweep.trials],
        already_done={t.index for t in sweep.trials} - set(indices),
    )
    callback = MLflowProgressCallback(sweep, tracker, progress, reuse_runs)
    if not indices:
        return callback.statuses
    configs = [t.config.model_dump(mode="json") for t in sweep.trials]
    trainable = tune.with_resources(
        tune.with_parameters(_trainable, configs=configs),
        {"cpu": sweep.resources.cpu, "gpu": sweep.resources.gpu},
    )
    tuner = tune.Tuner(
        trainable,
        param_space={"index": tune.grid_search(list(indices)), "runtime": runtime},
        # One worker process runs trial after trial: no process start, imports or data load
        # between them (run_trial resets the seed, determinism flag and threads per trial).
        tune_config=tune.TuneConfig(reuse_actors=True),
        run_config=tune.RunConfig(
            name=experiment_name,
            storage_path=str(storage_path.resolve()),
            callbacks=[callback],
            verbose=0,
            failure_config=tune.FailureConfig(max_failures=max_failures),
        ),
    )
    # Tune's end-of-run analysis looks for the JSON/CSV loggers we switched off; its warning
    # about their absence is noise.
    logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
    # Worker errors are reported once per trial by the callback (with the traceback kept as an
    # MLflow artifact) instead of as a full traceback per attempt on the console.
    logging.getLogger("ray.tune.execution.tune_controller").setLevel(logging.CRITICAL)
    tuner.fit()
    return callback.statuses
