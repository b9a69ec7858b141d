"""MLflow bookkeeping: one parent run per sweep, one nested run per trial, written by the driver.

Only the driver process writes, so the embedded SQLite store has a single writer (docs/design.md,
pitfalls: trials opening a fresh SQLite DB at once crash on its schema migration). The store,
the experiment and the parent run exist before the first trial starts.

Metric names carry their unit (`kl_nats`, `mse_per_pixel`; `benchmark.metric_names`).

What a sweep run holds:
  tags      vaebench.role=sweep, the sweep hash, profile, axes, the manifest; its description
            (mlflow.note.content) is the sweep file's
  artifacts sweep/<file>.yaml (the sweep file as run), sweep/resolved.yaml (profile, overrides
            and every trial's full config), and after the report: table.md/.tex/.csv, runs.csv,
            figure.png
  metrics   per grid point, `<axis>:<value>[ <axis>:<value>]/<metric>_mean` (and `_std`) over
            the finished seeds, e.g. `beta:4/mse_per_pixel_mean`, and `n_finished`
What a trial run holds:
  params  the flattened trial config (`beta`, `train.steps`, `dataset.resolution`, ...): one β
          (the value the loss uses), the variant's other parameters as `params.<name>` with
          their defaults filled in; settings of the evaluation (`n_params`, `mig_bins`, ...)
  tags    mlflow.note.content (the trial in a sentence), vaebench.role=trial, vaebench.status
          (finished/diverged/failed/interrupted), vaebench.trial_hash, vaebench.trial_name,
          vaebench.reason, notes (vaebench.note.<metric>), and the manifest: vaebench.commit
          (driver), vaebench.versions (the worker's packages), vaebench.device,
          vaebench.dataset_fingerprint, and where it ran: vaebench.node_id (the Ray node) and
          vaebench.hostname
  inputs  the dataset (mlflow.log_input form): its description as name, fingerprint as digest
  metrics the test metrics (mse_per_pixel, kl_nats, elbo_nats, mig, ...) and the training
          curves (train_loss_nats, ..., kl_warmup_factor by step)
  images  `reconstructions` and `samples` (mlflow.log_image, keyed, at the last training step):
          labelled, upscaled grids that the UI compares across runs
  artifacts reconstructions.png, samples.png, result.json (and traceback.txt for a crash)
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import math
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from filelock import FileLock
from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param, RunStatus, RunTag
from mlflow.tracking import MlflowClient
from PIL import Image

from benchmark.config import Sweep, Trial, TrialConfig
from benchmark.failure import DONE
from benchmark.metric_names import SETTINGS, to_mlflow

TAG = "vaebench."
_BATCH = 900  # MLflow accepts at most 1000 metrics per log_batch call
LOCK_FILE = ".mlflow.lock"
_OPEN_TRIES = 4
# Written by `benchmark.trial._write_images`: labelled grids that go to `log_image`, not artifacts.
IMAGES_DIR = "labelled"
SWEEP_FILES = ("table.md", "table.tex", "table.csv", "runs.csv", "figure.png")
# MLflow announces its schema migrations at INFO on every new store; keep the console for progress.
logging.getLogger("mlflow").setLevel(logging.WARNING)
logging.getLogger("alembic").setLevel(logging.WARNING)


def default_tracking_uri(results_dir: str | Path) -> str:
    """sqlite:///<results_dir>/mlflow.db, with the folder made absolute."""
    return f"sqlite:///{Path(results_dir).resolve() / 'mlflow.db'}"


def missing_store(uri: str) -> Path | None:
    """The file or folder of a local store at `uri` when it does not exist, else None.

    Readers check this first: opening a local store with MLflow creates it, and a reader that
    finds nothing must leave nothing behind (an empty mlflow.db looks like a store)."""
    from urllib.parse import unquote, urlparse

    if uri.startswith("sqlite:///"):
        path = Path(uri[len("sqlite:///") :])
    elif uri.startswith("file:"):
        path = Path(unquote(urlparse(uri).path))
    else:
        return None
    return None if path.exists() else path


def is_local_store(uri: str) -> bool:
    """Whether `uri` is a local store (SQLite or a file: folder): only the driver writes it."""
    return uri.startswith("sqlite:") or uri.startswith("file:")


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested dict as one level with dotted keys: {'a': {'b': 1}} -> {'a.b': 1}."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def trial_params(config: TrialConfig) -> dict[str, Any]:
    """The trial config as flat MLflow params, with β once: the value the loss uses.

    `beta` is the variant's resolved β (the sweep's value, else the variant's default; absent
    for variants without one), and the variant's other parameters appear as `params.<name>`
    with their defaults filled in, so nothing is logged twice or left implicit.
    """
    tree = config.model_dump(mode="json")
    tree.pop("params")
    tree.pop("beta")
    resolved = config.variant_config().model_dump(mode="json")
    out = flatten(tree)
    if "beta" in resolved:
        out["beta"] = resolved.pop("beta")
    out.update({f"params.{k}": v for k, v in resolved.items()})
    return out


def describe_trial(config: TrialConfig, index: int, n_trials: int, sweep: str) -> str:
    """The trial in a sentence: the run's description in the MLflow UI."""
    d, t = config.dataset, config.train
    beta = config.variant_config().model_dump().get("beta")
    side = f" at {d.resolution}px" if d.resolution else ""
    return (
        f"Trial {index + 1} of {n_trials} of sweep {sweep}: {config.variant}"
        + (f" with β = {beta:g}" if beta is not None else "")
        + f", {config.architecture} encoder/decoder, {config.latent_dim} latent dims, seed "
        f"{config.seed}, trained on {d.name}{side} for {t.steps:,} steps of batch "
        f"{t.batch_size} at learning rate {t.lr:g}."
    )


def _outcome(result: dict[str, Any]) -> str:
    status = result.get("status", "failed")
    if status != "finished":
        return f" Outcome: {status} ({result.get('reason', 'no reason given')})."
    parts = [f"MSE {result['mse']:.4g} per pixel"] if "mse" in result else []
    parts += [f"KL {result['kl']:.3g} nats"] if "kl" in result else []
    parts += [f"MIG {result['mig']:.3f}"] if "mig" in result else []
    return " Outcome: finished" + (f", {', '.join(parts)}." if parts else ".")


def _name_part(value: Any) -> str:
    # MLflow names allow only alphanumerics, _ - . space : and /
    return re.sub(r"[^\w.\- ]", "_", str(value))


def grid_point_metrics(table_csv: Path, axes: list[str]) -> dict[str, float]:
    """`<axis>:<value> .../<metric>_mean|_std` and `.../n_finished` from a report's table.csv."""
    out: dict[str, float] = {}
    with open(table_csv, newline="") as f:
        for row in csv.DictReader(f):
            keys = [a for a in axes if a != "seed" and a in row]
            point = " ".join(f"{_name_part(k)}:{_name_part(row[k])}" for k in keys) or "all"
            for col, text in row.items():
                stem, _, stat = col.rpartition("_")
                if stat in ("mean", "std") and stem and stem not in SETTINGS:
                    name = f"{point}/{to_mlflow(stem)}_{stat}"
                elif col == "n_finished":
                    name = f"{point}/n_finished"
                else:
                    continue
                try:
                    value = float(text)
                except (TypeError, ValueError):
                    continue
                if value == value:  # NaN: no finished seed, or a single one for _std
                    out[name] = value
    return out


def sweep_hash(sweep: Sweep) -> str:
    """Identifies a sweep's exact set of trials: a rerun resumes only the very same sweep."""
    blob = json.dumps([sweep.results_name, sorted(t.config.hash() for t in sweep.trials)])
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def _now_ms() -> int:
    return int(time.time() * 1000)


class Tracker:
    """Creates and fills the MLflow runs of one sweep."""

    def __init__(self, uri: str, results_dir: str | Path, experiment: str) -> None:
        """Open (creating if needed) the store at `uri` and the experiment `experiment`.

        Creation is serialised across processes by a lock file in `results_dir` and retried: two
        drivers started together on a new store would otherwise both create or migrate its
        SQLite schema ("table runs already exists") or both create the experiment.
        """
        self.uri = uri
        self.logged_steps: dict[str, int] = {}
        self.manifest: dict[str, str] = {}
        self.identities: dict[int, str] = {}  # trial index → cache identity (benchmark.cache)
        Path(results_dir).mkdir(parents=True, exist_ok=True)
        with FileLock(str(Path(results_dir) / LOCK_FILE), timeout=600):
            for attempt in range(_OPEN_TRIES):
                try:
                    self._open(uri, results_dir, experiment)
                    break
                # A process that does not take the lock (`mlflow ui`, an older driver) may
                # still be creating the schema: wait and try again, then give up loudly.
                except Exception:  # noqa: BLE001 - SQLAlchemy, alembic and MLflow errors alike
                    if attempt + 1 == _OPEN_TRIES:
                        raise
                    time.sleep(0.5 * 2**attempt)

    def _open(self, uri: str, results_dir: str | Path, experiment: str) -> None:
        self.client = MlflowClient(tracking_uri=uri)
        exp = self.client.get_experiment_by_name(experiment)
        if exp is None:
            # A local store gets an absolute artifact root: MLflow's default is ./mlruns
            # relative to whatever directory the process (or a Ray trial) happens to be in.
            location = (
                (Path(results_dir).resolve() / "mlartifacts" / experiment).as_uri()
                if is_local_store(uri)
                else None
            )
            self.experiment_id = self.client.create_experiment(
                experiment, artifact_location=location
            )
        else:
            self.experiment_id = exp.experiment_id
        if exp is None or "mlflow.experimentKind" not in exp.tags:
            # MLflow 3's UI opens an experiment without a kind in its GenAI (traces) view.
            self.client.set_experiment_tag(
                self.experiment_id, "mlflow.experimentKind", "custom_model_development"
            )

    def start_sweep(
        self, sweep: Sweep, manifest: dict[str, str], overrides: list[str] | tuple[str, ...] = ()
    ) -> str:
        """Create the parent (sweep) run with its tags and `manifest`; returns its run id."""
        self.manifest = manifest
        tags = {
            f"{TAG}sweep_hash": sweep_hash(sweep),
            f"{TAG}role": "sweep",
            f"{TAG}sweep": sweep.name,
            f"{TAG}profile": sweep.profile,
            f"{TAG}sweep_file": sweep.file,
            f"{TAG}axes": ",".join(sweep.axes),
            f"{TAG}n_trials": str(len(sweep.trials)),
            f"{TAG}status": "running",
            # the report's Sweep line names them: its folder alone (`<sweep>+<hash>`) does not
            f"{TAG}overrides": json.dumps(list(overrides)),
            "mlflow.note.content": sweep.description,
            **{f"{TAG}{k}": v for k, v in manifest.items()},
        }
        run = self.client.create_run(
            self.experiment_id, run_name=f"{sweep.results_name} {manifest['date']}", tags=tags
        )
        self.parent_id = run.info.run_id
        self.sweep_name = sweep.results_name
        self._log_sweep_inputs(sweep, overrides)
        return self.parent_id

    def _log_sweep_inputs(self, sweep: Sweep, overrides: list[str] | tuple[str, ...]) -> None:
        """The sweep file as run, its resolved trials, and the settings all trials share."""
        self._log_sweep_files(sweep, overrides)
        params = _shared_params(sweep)
        self.client.log_batch(self.parent_id, params=[Param(k, v) for k, v in params.items()])

    def _log_sweep_files(self, sweep: Sweep, overrides: list[str] | tuple[str, ...]) -> None:
        """The sweep file as run and its resolved trials, as artifacts under `sweep/`."""
        pid = self.parent_id
        if Path(sweep.file).is_file():
            self.client.log_artifact(pid, sweep.file, "sweep")
        resolved = {
            "sweep": sweep.name, "file": sweep.file, "profile": sweep.profile,
            "overrides": list(overrides), "axes": sweep.axes,
            "resources": sweep.resources.model_dump(),
            "trials": [{"index": t.index + 1, "name": t.name, "hash": t.config.hash(),
                        "config": t.config.model_dump(mode="json")} for t in sweep.trials],
        }  # fmt: skip
        text = yaml.safe_dump(resolved, sort_keys=False, allow_unicode=True)
        self.client.log_text(pid, text, "sweep/resolved.yaml")

    def log_sweep_results(self, out_dir: str | Path, axes: list[str]) -> None:
        """After the report: its tables and figure as artifacts, and per-grid-point summaries."""
        out = Path(out_dir)
        for name in SWEEP_FILES:
            if (out / name).is_file():
                self.client.log_artifact(self.parent_id, str(out / name))
        if (out / "figures").is_dir():  # the paper figures (benchmark.figures)
            # File by file, finished files only: another driver writing the same folder leaves
            # atomic-write temp files (".name.pid.tmp") that vanish while a tree copy lists them.
            for f in sorted((out / "figures").iterdir()):
                if f.is_file() and not f.name.startswith("."):
                    self.client.log_artifact(self.parent_id, str(f), "figures")
        if (out / "table.csv").is_file():
            summary = grid_point_metrics(out / "table.csv", axes)
            self.log_metrics(self.parent_id, summary)

    def find_resumable(self, sweep: Sweep) -> tuple[str, dict[str, tuple[str, str]]] | None:
        """The newest sweep run of this exact sweep that did not finish, and its trial runs.

        Returns (parent run id, {trial hash: (run id, vaebench.status)}), or None when the newest
        run of this sweep finished (a rerun then starts afresh) or none exists.
        """
        runs = self.client.search_runs(
            [self.experiment_id],
            filter_string=f"tags.`{TAG}role` = 'sweep' and tags.`{TAG}sweep_hash` = "
            f"'{sweep_hash(sweep)}'",
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
        if not runs or runs[0].data.tags.get(f"{TAG}status") == "finished":
            return None
        parent = runs[0].info.run_id
        children: dict[str, tuple[str, str]] = {}
        for run in self._children(parent):
            h = run.data.tags.get(f"{TAG}trial_hash")
            status = run.data.tags.get(f"{TAG}status", "running")
            if f"{TAG}cached_from" in run.data.tags and status != "finished":
                # a copy from the cache cut off half-way: dropped; the cache copies it again
                self.client.delete_run(run.info.run_id)
                continue
            if h and h not in children:  # newest first: keep the latest run of each trial
                children[h] = (run.info.run_id, run.data.tags.get(f"{TAG}status", "running"))
        return parent, children

    def _children(self, parent: str) -> list:
        out, token = [], None
        while True:
            page = self.client.search_runs(
                [self.experiment_id],
                filter_string=f"tags.mlflow.parentRunId = '{parent}'",
                order_by=["attributes.start_time DESC"],
                max_results=1000,
                page_token=token,
            )
            out.extend(page)
            token = page.token
            if not token:
                return out

    def resume_sweep(
        self,
        parent_id: str,
        manifest: dict[str, str],
        sweep: Sweep | None = None,
        overrides: list[str] | tuple[str, ...] = (),
    ) -> None:
        """Continue an interrupted sweep run: same run, marked running again, resume noted.

        With `sweep`, what the run lacks of its inputs is logged: a driver killed between
        creating the sweep run and logging its inputs (`start_sweep`) leaves a run without its
        shared params and sweep artifacts."""
        self.parent_id, self.manifest = parent_id, manifest
        self.sweep_name = self.client.get_experiment(self.experiment_id).name
        self.client.update_run(parent_id, status="RUNNING")
        self.client.log_batch(parent_id, tags=[
            RunTag(f"{TAG}status", "running"),
            RunTag(f"{TAG}resumed", manifest["date"]),
            RunTag(f"{TAG}resumed_commit", manifest["commit"]),
        ])  # fmt: skip
        if sweep is not None:
            run = self.client.get_run(parent_id)
            if not self.client.list_artifacts(parent_id, "sweep"):
                self._log_sweep_files(sweep, overrides)
            missing = {k: v for k, v in _shared_params(sweep).items() if k not in run.data.params}
            if missing:
                self.client.log_batch(parent_id, params=[Param(k, v) for k, v in missing.items()])

    def reopen_trial(self, run_id: str, trial: Trial | None = None) -> str:
        """Continue logging into an unfinished trial run (no duplicate run for a resumed trial).

        With `trial`, params the run lacks are logged: a driver killed between creating the
        run and logging its params (`start_trial`) leaves a run without them."""
        self.client.update_run(run_id, status="RUNNING")
        self.client.set_tag(run_id, f"{TAG}status", "running")
        run = self.client.get_run(run_id)
        if f"{TAG}reason" in run.data.tags:  # from a failed attempt
            self.client.delete_tag(run_id, f"{TAG}reason")
        if trial is not None:
            missing = {k: v for k, v in _params(trial).items() if k not in run.data.params}
            if missing:
                self.client.log_batch(run_id, params=[Param(k, v) for k, v in missing.items()])
        history = self.client.get_metric_history(run_id, to_mlflow("train_loss"))
        self.logged_steps[run_id] = max((m.step for m in history), default=0)
        return run_id

    def start_trial(self, trial: Trial, n_trials: int) -> str:
        """Create a trial's child run with its tags and params; returns its run id."""
        config = trial.config
        tags = {
            f"{TAG}commit": self.manifest.get("commit", "unknown"),
            "mlflow.parentRunId": self.parent_id,
            f"{TAG}role": "trial",
            f"{TAG}status": "running",
            f"{TAG}trial_hash": config.hash(),
            f"{TAG}trial_name": trial.name,
            f"{TAG}trial_index": str(trial.index),
            # The whole trial config, so that `benchmark.verify` reruns it from runs.csv alone.
            f"{TAG}config": json.dumps(config.model_dump(mode="json"), sort_keys=True),
            "mlflow.note.content": describe_trial(
                config, trial.index, n_trials, getattr(self, "sweep_name", "")
            ),
        }
        if trial.index in self.identities:
            tags[f"{TAG}identity"] = self.identities[trial.index]
        run = self.client.create_run(
            self.experiment_id, run_name=f"{trial.index + 1:03d}/{n_trials} {trial.name}", tags=tags
        )
        params = [Param(k, v) for k, v in _params(trial).items()]
        self.client.log_batch(run.info.run_id, params=params)
        return run.info.run_id

    def log_curve(self, run_id: str, metrics: dict[str, float], step: int) -> None:
        """Training-curve points; after a resume or a retry (from a checkpoint older than the
        last logged point), steps already logged are not logged twice."""
        if step > self.logged_steps.get(run_id, 0):
            self.log_metrics(run_id, metrics, step)
            self.logged_steps[run_id] = step

    def log_metrics(self, run_id: str, metrics: dict[str, float], step: int = 0) -> None:
        """Log the finite numbers of `metrics`; NaN and infinities are never logged (MLflow
        would store an infinity as ±1.797e308, which then reads as a number)."""
        ts = _now_ms()
        items = [
            Metric(to_mlflow(k), float(v), ts, step)
            for k, v in metrics.items()
            if isinstance(v, int | float)
            and not isinstance(v, bool)
            and math.isfinite(v)
            and k not in SETTINGS
        ]
        for start in range(0, len(items), _BATCH):
            self.client.log_batch(run_id, metrics=items[start : start + _BATCH])

    def finish_trial(
        self, run_id: str, result: dict[str, Any], artifact_dir: str | Path | None
    ) -> None:
        """Log a trial's final metrics, status and reason, and its artifacts from `artifact_dir`."""
        status = result.get("status", "failed")
        scalars = {k: v for k, v in result.items() if k not in ("diverged_step",)}
        self.log_metrics(run_id, scalars)
        tags = [RunTag(f"{TAG}status", status)]
        if result.get("reason"):
            tags.append(RunTag(f"{TAG}reason", str(result["reason"])[:5000]))
        if result.get("diverged_step") is not None:
            tags.append(RunTag(f"{TAG}diverged_step", str(result["diverged_step"])))
        for key, note in (result.get("notes") or {}).items():
            tags.append(RunTag(f"{TAG}note.{key}", str(note)))
        for key in (
            "dataset",
            "dataset_fingerprint",
            "device",
            "trial_hash",
            "versions",
            "model_sha256",
            "environment",
            "node_id",
            "hostname",
        ):
            if key in result:
                tags.append(RunTag(f"{TAG}{key}", str(result[key])))
        run = self.client.get_run(run_id)
        note = run.data.tags.get("mlflow.note.content", "").split(" Outcome: ")[0]
        tags.append(RunTag("mlflow.note.content", note + _outcome(result)))
        settings = [Param(k, str(result[k])) for k in SETTINGS if k in result]
        # The status goes last: a driver killed while this runs leaves a run still marked
        # running (resumed and completed later), never one marked finished without its files.
        self.client.log_batch(run_id, tags=tags[1:], params=settings)
        if result.get("dataset_fingerprint"):
            self.client.log_inputs(run_id, [_dataset_input(result)])
        if artifact_dir is not None and Path(artifact_dir).is_dir():
            self._log_trial_files(run_id, Path(artifact_dir), run.data.params)
        self.client.log_batch(run_id, tags=tags[:1])
        self.client.set_terminated(
            run_id, RunStatus.to_string(RunStatus.FINISHED if status == "finished" else
                                        RunStatus.FAILED)
        )  # fmt: skip

    def _log_trial_files(self, run_id: str, folder: Path, params: dict[str, str]) -> None:
        for path in sorted(folder.iterdir()):
            if path.is_file():
                self.client.log_artifact(run_id, str(path))
            elif path.is_dir() and path.name != IMAGES_DIR:
                self.client.log_artifacts(run_id, str(path), path.name)
        step = int(params.get("train.steps", 0))
        for path in sorted((folder / IMAGES_DIR).glob("*.png")):
            with Image.open(path) as image:
                # The keyed form: the UI lines up images of one key across compared runs.
                self.client.log_image(run_id, image.convert("RGB"), key=path.stem, step=step)

    def interrupt_trial(self, run_id: str) -> None:
        """A trial cut off by Ctrl-C: marked 'interrupted' (a rerun continues it)."""
        self.client.set_tag(run_id, f"{TAG}status", "interrupted")
        self.client.set_terminated(run_id, "KILLED")

    def finish_sweep(self, summary: dict[str, int], interrupted: bool = False) -> str:
        """Close the sweep run; returns its status. 'finished' only when every trial finished
        or diverged: a sweep with failed or missing trials is 'incomplete' (or 'interrupted'),
        so a rerun resumes it (keeping the done trials) instead of starting a new one."""
        text = ", ".join(f"{v} {k}" for k, v in summary.items())
        missing = sum(n for s, n in summary.items() if s not in DONE)
        status = "interrupted" if interrupted else "incomplete" if missing else "finished"
        self.client.log_batch(
            self.parent_id,
            tags=[RunTag(f"{TAG}status", status), RunTag(f"{TAG}summary", text)],
        )
        run_status = {"interrupted": "KILLED", "incomplete": "FAILED"}.get(status, "FINISHED")
        self.client.set_terminated(self.parent_id, run_status)
        return status


def find_cached(tracker: Tracker, identity: str, exclude_parent: str | None = None) -> str | None:
    """The newest finished trial run of `identity` in any experiment of the store (outside
    `exclude_parent`): a comparison sweep reuses the baselines another sweep trained."""
    experiments = [e.experiment_id for e in tracker.client.search_experiments()]
    runs = tracker.client.search_runs(
        experiments,
        filter_string=f"tags.`{TAG}identity` = '{identity}' and tags.`{TAG}status` = 'finished'",
        order_by=["attributes.start_time DESC"],
        max_results=20,
    )
    for run in runs:
        if run.data.tags.get("mlflow.parentRunId") != exclude_parent:
            return run.info.run_id
    return None


def copy_trial(tracker: Tracker, source_id: str, trial: Trial, n_trials: int) -> str:
    """A new trial run under the current sweep run holding a copy of the finished run
    `source_id`: its params, tags, metrics (with their curves) and artifacts; tagged
    `vaebench.cached_from` so the table and MLflow say it was not retrained."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    client = tracker.client
    src = client.get_run(source_id)
    keep = {k: v for k, v in src.data.tags.items() if not k.startswith("mlflow.")}
    keep.update({
        "mlflow.parentRunId": tracker.parent_id,
        f"{TAG}trial_name": trial.name,
        f"{TAG}trial_index": str(trial.index),
        f"{TAG}cached_from": source_id,
        # "finished" only once everything is copied: a half copy must be neither kept by a
        # resume nor found by the cache
        f"{TAG}status": "running",
    })  # fmt: skip
    if "mlflow.note.content" in src.data.tags:
        keep["mlflow.note.content"] = src.data.tags["mlflow.note.content"]
    run = client.create_run(
        tracker.experiment_id,
        run_name=f"{trial.index + 1:03d}/{n_trials} {trial.name} (cached)",
        tags=keep,
    )
    rid = run.info.run_id
    client.log_batch(rid, params=[Param(k, v) for k, v in src.data.params.items()])
    metrics = []
    for key in src.data.metrics:
        metrics += [Metric(key, m.value, m.timestamp, m.step)
                    for m in client.get_metric_history(source_id, key)]  # fmt: skip
    for start in range(0, len(metrics), _BATCH):
        client.log_batch(rid, metrics=metrics[start : start + _BATCH])
    with tempfile.TemporaryDirectory() as tmp:
        if client.list_artifacts(source_id):
            local = client.download_artifacts(source_id, "", tmp)
            client.log_artifacts(rid, local)
    client.set_tag(rid, f"{TAG}status", src.data.tags.get(f"{TAG}status", "finished"))
    client.set_terminated(rid, "FINISHED")
    return rid


def _dataset_input(result: dict[str, Any]) -> DatasetInput:
    """The trial's data for MLflow's dataset tracking (`mlflow.log_input`): the description
    without its parenthesis as name, the vaebench fingerprint as digest."""
    description = str(result.get("dataset", "unknown"))
    dataset = Dataset(
        name=re.sub(r" \([^)]*\)", "", description)[:500],
        digest=str(result["dataset_fingerprint"]),
        source_type="vaebench",
        source=json.dumps({"loader": "benchmark.data.load_dataset", "description": description}),
    )
    return DatasetInput(dataset, tags=[InputTag("mlflow.data.context", "train+test")])


def _params(trial: Trial) -> dict[str, str]:
    """A trial run's MLflow params: the flattened config and one readable likelihood label
    (e.g. gaussian(sigma=learned), which the report's rows and grid axis use)."""
    params = trial_params(trial.config)
    params["likelihood"] = trial.config.likelihood.label
    return {k: str(v) for k, v in params.items()}


def _shared_params(sweep: Sweep) -> dict[str, str]:
    """The params of a sweep run: the settings all its trials share, as MLflow strings."""
    shared = {
        k: v for k, v in trial_params(sweep.trials[0].config).items()
        if k not in sweep.axes and k != "seed"
    }  # fmt: skip
    shared.update(profile=sweep.profile, n_trials=len(sweep.trials), axes=",".join(sweep.axes))
    return {k: str(v) for k, v in shared.items()}
