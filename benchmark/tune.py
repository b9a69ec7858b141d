"""Running a sweep's trials as Ray Tune trials, with MLflow written from the driver.

The trainable is a thin wrapper around `benchmark.trial.run_trial`. Each trial's final report
carries a checkpoint directory holding its images and `result.json`; a driver-side Tune
callback turns reports into MLflow metrics and that directory into MLflow artifacts.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import shutil
import socket
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

# Must be set before Ray is imported (docs/design.md, pitfalls): no token auth for a local cluster,
# no usage stats, no CSV/JSON/TensorBoard loggers that nobody reads.
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")

import ray  # noqa: E402
from ray import tune  # noqa: E402

from benchmark.config import Sweep, Trial, TrialConfig  # noqa: E402
from benchmark.data import official  # noqa: E402
from benchmark.failure import DONE, reason, reason_from_traceback  # noqa: E402
from benchmark.progress import Progress  # noqa: E402
from benchmark.readback import read_json  # noqa: E402
from benchmark.storage import TrialState, join, resolve_root  # noqa: E402
from benchmark.trial import run_trial  # noqa: E402

if TYPE_CHECKING:  # MLflow is the driver's: workers importing this module skip its ~1 s import
    from benchmark.tracking import Tracker


def run_trial_safely(
    config: TrialConfig,
    workdir: Path,
    report: Callable[[dict], None],
    runtime: dict[str, Any],
    state_dir: Path | None = None,
    placement: dict[str, str] | None = None,
    on_checkpoint: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """`run_trial`, with a crash turned into a 'failed' result whose traceback is kept."""
    try:
        return run_trial(
            config, workdir, report, device=runtime["device"], cache_dir=runtime["cache_dir"],
            state_dir=state_dir, checkpoint_every=runtime.get("checkpoint_every", 0),
            feature_nets=runtime["feature_nets"], placement=placement,
            on_checkpoint=on_checkpoint,
        )  # fmt: skip
    except Exception as e:  # noqa: BLE001 - any crash must not take the sweep down
        (workdir / "traceback.txt").write_text(traceback.format_exc())
        return {"status": "failed", "reason": reason(e)}


def finished_result(workdir: Path) -> dict[str, Any] | None:
    """The result a previous attempt of this trial already wrote, if it is final (an unreadable
    one is set aside, and the trial is run again)."""
    result = read_json(workdir / "result.json")
    return result if isinstance(result, dict) and result.get("status") in DONE else None


def _trainable(param: dict[str, Any], configs: list[dict[str, Any]]) -> None:
    import torch

    runtime = param["runtime"]
    for module in runtime["plugins"]:  # variants registered outside the repo, named by --plugin
        importlib.import_module(module)
    torch.set_num_threads(runtime["threads"])
    official.DOWNLOADS_ALLOWED = False
    config = TrialConfig.model_validate(configs[param["index"]])
    node = ray.get_runtime_context().get_node_id()
    placement = {"node_id": node, "hostname": socket.gethostname()}
    # A stable folder per trial config (not Ray's per-run trial folder), so that a retry after a
    # worker failure (on any node), or a rerun after the driver was killed, finds the checkpoint.
    with TrialState(runtime["state_root"], config.hash()) as state:
        workdir = state.dir / "out"
        result = finished_result(workdir)
        if result is None:  # not trained yet, or cut off: (re)train, from the checkpoint if any
            shutil.rmtree(workdir, ignore_errors=True)
            workdir.mkdir(parents=True)
            result = run_trial_safely(
                config, workdir, tune.report, runtime, state.dir, placement, state.push
            )
            state.finish()
        scalars = {**placement, **{k: v for k, v in result.items() if k != "notes"}}
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
        self.indices: dict[str, int] = {}  # Tune trial id → trial index
        self.statuses: dict[int, str] = {}
        self.reuse_runs = dict(reuse_runs or {})  # trial index → its unfinished MLflow run

    def mark_interrupted(self) -> None:
        """Trials that started but got no final status were cut off (Ctrl-C): say so."""
        for trial_id, run_id in self.run_ids.items():
            index = self.indices[trial_id]
            if index not in self.statuses:
                self.statuses[index] = "interrupted"
                self.tracker.interrupt_trial(run_id)

    def _run_id(self, trial: Any, t: Trial) -> str:
        self.indices[trial.trial_id] = t.index
        if trial.trial_id not in self.run_ids:
            reuse = self.reuse_runs.pop(t.index, None)
            self.run_ids[trial.trial_id] = (
                self.tracker.reopen_trial(reuse, t)
                if reuse
                else self.tracker.start_trial(t, len(self.sweep.trials))
            )
        return self.run_ids[trial.trial_id]

    def _trial(self, trial: Any) -> Trial:
        return self.sweep.trials[trial.config["index"]]

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        """Ray Tune hook: open (or reopen) the trial's MLflow run and print its start."""
        t = self._trial(trial)
        self._run_id(trial, t)
        self.progress.start(t.index, t.name)

    def on_trial_result(
        self, iteration: int, trials: list, trial: Any, result: dict, **info: Any
    ) -> None:
        """Ray Tune hook: log the training curve point and print progress."""
        if result.get("done"):
            return
        t = self._trial(trial)
        keys = ("train_loss", "train_recon", "train_kl", "kl_weight", "lr", "grad_norm")
        curve = {k: result[k] for k in keys if k in result}
        self.tracker.log_curve(self._run_id(trial, t), curve, step=result["step"])
        self.progress.step(t.index, t.name, result["step"], result["train_loss"])

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        """Ray Tune hook: record the trial's final result and artifacts from its checkpoint."""
        t = self._trial(trial)
        result = dict(trial.last_result or {})
        result.pop("done", None)
        checkpoint = trial.checkpoint
        if checkpoint is None:
            self._finish(t, trial, result, None)
            return
        with checkpoint.as_directory() as d:
            saved = read_json(Path(d) / "result.json")
            if isinstance(saved, dict):
                result = saved
            self._finish(t, trial, result, Path(d))

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        # Only errors outside `run_trial_safely` land here (a worker that died, a broken
        # import): retries are exhausted, so the trial is recorded as failed with Ray's traceback.
        """Ray Tune hook: record a trial that failed outside `run_trial_safely` as failed."""
        t = self._trial(trial)
        text = _error_text(trial)
        with tempfile.TemporaryDirectory() as d:
            if text:
                (Path(d) / "traceback.txt").write_text(text)
            why = _trial_error_reason(trial, text)
            self._finish(t, trial, {"status": "failed", "reason": why}, Path(d))

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        """Ray Tune hook: print that a trial errored and is retried."""
        t = self._trial(trial)
        line = _trial_error_reason(trial, _error_text(trial))
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


def _trial_error_reason(trial: Any, text: str) -> str:
    """The first line of the real exception behind a Ray trial error (see benchmark.failure)."""
    try:
        exc = trial.get_pickled_error()
    except Exception:  # noqa: BLE001 - an unpicklable error: fall back to the text
        exc = None
    if exc is not None:
        return reason(exc)
    return reason_from_traceback(text) or "worker died"


def code_runtime_env(plugins: list[str] = ()) -> dict[str, Any]:
    """The Ray `runtime_env` that ships this project's code to a cluster's workers.

    `py_modules` holds the `benchmark` and `variants` packages and the top-level package (or
    single-file module) of every `--plugin` and of every `vaebench.variants` entry point
    installed with the driver, as the driver imports them, so the nodes need no checkout and no
    plugin installs: Ray uploads each to the cluster once per content hash and puts it first on the
    workers' `sys.path`. Bytecode caches are left out. Raises ImportError for a plugin that
    cannot be found.
    """
    import variants

    paths = [Path(__file__).resolve().parent, Path(variants.__file__).resolve().parent]
    for module in [*plugins, *entry_point_modules()]:
        spec = importlib.util.find_spec(module.partition(".")[0])
        if spec is None or spec.origin is None and not spec.submodule_search_locations:
            raise ImportError(f"no module named {module!r}")
        if spec.submodule_search_locations:  # a package: ship its folder
            path = Path(next(iter(spec.submodule_search_locations))).resolve()
        else:
            path = Path(spec.origin).resolve()
        if path not in paths:
            paths.append(path)
    return {"py_modules": [str(p) for p in paths], "excludes": ["__pycache__", "*.pyc"]}


def entry_point_modules() -> list[str]:
    """The modules of the `vaebench.variants` entry points installed where this runs.

    On a cluster they are shipped and imported by each trial like `--plugin` modules: the worker
    nodes need not have the plugin packages installed.
    """
    from importlib.metadata import entry_points

    from variants.registry import ENTRY_POINT_GROUP

    return sorted({ep.value.partition(":")[0] for ep in entry_points(group=ENTRY_POINT_GROUP)})


def init_ray(address: str | None, num_cpus: int | None, plugins: list[str] = ()) -> None:
    """Join a cluster (`--address auto`, HOST:PORT or ray://HOST:10001) or start a local Ray.

    On a cluster the code travels in the job's `runtime_env` (`code_runtime_env`); a local Ray
    imports it from this checkout, as the driver does (no upload, no per-worker unpacking).
    Raises ConnectionError when no cluster answers at `address`.
    """
    if ray.is_initialized():
        return
    if address:
        ray.init(
            address=address,
            runtime_env=code_runtime_env(plugins),
            logging_level="WARNING",
            log_to_driver=False,
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


def _joined_cluster() -> bool:
    return bool(ray.is_initialized() and ray.get_runtime_context().runtime_env.get("py_modules"))


def local_cores() -> int | None:
    """The CPUs of a one-node Ray (this machine); None for a multi-node cluster or no Ray (a
    sweep whose trials are all cached starts none)."""
    if not ray.is_initialized():
        return None
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
    storage_path: str | Path,
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
    which is what lets a killed sweep resume and a trial retried on another node continue;
    `storage_path` is a path or a pyarrow URI (`benchmark.storage`), also given to Ray Tune.
    `reuse_runs` maps a trial index to its unfinished MLflow run from the interrupted attempt,
    which is continued instead of duplicated.
    """
    root = resolve_root(storage_path)
    # By the sweep's size, not by the trials left to run: a resumed trial gets the threads it
    # started with (reductions split across threads need not give the same bits).
    threads = threads_per_trial(sweep.resources.cpu, len(sweep.trials), local_cores())
    runtime = {
        "device": device,
        "cache_dir": str(cache_dir.resolve()),
        "threads": threads,
        # On a cluster, entry-point variants travel like --plugin modules (code_runtime_env).
        "plugins": list(plugins) + (entry_point_modules() if _joined_cluster() else []),
        "state_root": join(root, experiment_name, "trials"),
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
            storage_path=root,
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
    logging.getLogger("ray.tune.tune").addFilter(_no_restore_advice)
    try:
        tuner.fit()
    except KeyboardInterrupt:
        pass  # a second Ctrl-C, while Tune was stopping: the cut-off trials are marked below
    callback.mark_interrupted()
    return callback.statuses


def _no_restore_advice(record: logging.LogRecord) -> bool:
    # On Ctrl-C Tune advises "Resume experiment with: Tuner.restore(...)", which is wrong here:
    # rerunning the same command resumes (and keeps the MLflow runs); run.py says so.
    return "Tuner.restore" not in record.getMessage()
