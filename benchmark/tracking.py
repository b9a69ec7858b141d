"""MLflow bookkeeping: one parent run per sweep, one nested run per trial, written by the driver.

Only the driver process writes, so the embedded SQLite store has a single writer (DESIGN.md,
pitfalls: trials opening a fresh SQLite DB at once crash on its schema migration). The store,
the experiment and the parent run exist before the first trial starts.

What a trial run holds:
  params  the flattened trial config (`beta`, `train.steps`, `dataset.resolution`, ...)
  tags    vaebench.role=trial, vaebench.status (finished/diverged/failed), vaebench.trial_hash,
          vaebench.trial_name, vaebench.reason, notes (vaebench.note.<metric>), and the
          manifest: vaebench.commit (driver), vaebench.versions (the worker's packages),
          vaebench.device, vaebench.dataset_fingerprint, vaebench.trial_hash
  metrics the test metrics (mse, kl, elbo, mig, ...) and the training curves (train_* by step)
  artifacts reconstructions.png, samples.png, result.json (and traceback.txt for a crash)
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, Param, RunStatus, RunTag
from mlflow.tracking import MlflowClient

from benchmark.config import Sweep, Trial

TAG = "vaebench."
DONE = ("finished", "diverged")  # final outcomes; a 'failed' (crashed) trial is retried on rerun
_BATCH = 900  # MLflow accepts at most 1000 metrics per log_batch call
# MLflow announces its schema migrations at INFO on every new store; keep the console for progress.
logging.getLogger("mlflow").setLevel(logging.WARNING)
logging.getLogger("alembic").setLevel(logging.WARNING)


def default_tracking_uri(results_dir: str | Path) -> str:
    return f"sqlite:///{Path(results_dir).resolve() / 'mlflow.db'}"


def is_local_store(uri: str) -> bool:
    return uri.startswith("sqlite:") or uri.startswith("file:")


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
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
        self.uri = uri
        self.client = MlflowClient(tracking_uri=uri)
        self.logged_steps: dict[str, int] = {}
        self.manifest: dict[str, str] = {}
        self.identities: dict[int, str] = {}  # trial index → cache identity (benchmark.cache)
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

    def start_sweep(self, sweep: Sweep, manifest: dict[str, str]) -> str:
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
            "mlflow.note.content": sweep.description,
            **{f"{TAG}{k}": v for k, v in manifest.items()},
        }
        run = self.client.create_run(
            self.experiment_id, run_name=f"{sweep.results_name} {manifest['date']}", tags=tags
        )
        self.parent_id = run.info.run_id
        return self.parent_id

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

    def resume_sweep(self, parent_id: str, manifest: dict[str, str]) -> None:
        """Continue an interrupted sweep run: same run, marked running again, resume noted."""
        self.parent_id, self.manifest = parent_id, manifest
        self.client.update_run(parent_id, status="RUNNING")
        self.client.log_batch(parent_id, tags=[
            RunTag(f"{TAG}status", "running"),
            RunTag(f"{TAG}resumed", manifest["date"]),
            RunTag(f"{TAG}resumed_commit", manifest["commit"]),
        ])  # fmt: skip

    def reopen_trial(self, run_id: str) -> str:
        """Continue logging into an unfinished trial run (no duplicate run for a resumed trial)."""
        self.client.update_run(run_id, status="RUNNING")
        self.client.set_tag(run_id, f"{TAG}status", "running")
        if f"{TAG}reason" in self.client.get_run(run_id).data.tags:  # from a failed attempt
            self.client.delete_tag(run_id, f"{TAG}reason")
        history = self.client.get_metric_history(run_id, "train_loss")
        self.logged_steps[run_id] = max((m.step for m in history), default=0)
        return run_id

    def start_trial(self, trial: Trial, n_trials: int) -> str:
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
        }
        if trial.index in self.identities:
            tags[f"{TAG}identity"] = self.identities[trial.index]
        run = self.client.create_run(
            self.experiment_id, run_name=f"{trial.index + 1:03d}/{n_trials} {trial.name}", tags=tags
        )
        params = flatten(config.model_dump(mode="json"))
        params["variant_config"] = config.variant_config().model_dump_json()
        self.client.log_batch(run.info.run_id, params=[Param(k, str(v)) for k, v in params.items()])
        return run.info.run_id

    def log_curve(self, run_id: str, metrics: dict[str, float], step: int) -> None:
        """Training-curve points; after a resume, steps already logged are not logged twice."""
        if step > self.logged_steps.get(run_id, 0):
            self.log_metrics(run_id, metrics, step)

    def log_metrics(self, run_id: str, metrics: dict[str, float], step: int = 0) -> None:
        ts = _now_ms()
        items = [
            Metric(k, float(v), ts, step)
            for k, v in metrics.items()
            if isinstance(v, int | float) and not isinstance(v, bool)
        ]
        for start in range(0, len(items), _BATCH):
            self.client.log_batch(run_id, metrics=items[start : start + _BATCH])

    def finish_trial(
        self, run_id: str, result: dict[str, Any], artifact_dir: str | Path | None
    ) -> None:
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
        ):
            if key in result:
                tags.append(RunTag(f"{TAG}{key}", str(result[key])))
        self.client.log_batch(run_id, tags=tags)
        if artifact_dir is not None and Path(artifact_dir).is_dir():
            self.client.log_artifacts(run_id, str(artifact_dir))
        self.client.set_terminated(
            run_id, RunStatus.to_string(RunStatus.FINISHED if status == "finished" else
                                        RunStatus.FAILED)
        )  # fmt: skip

    def finish_sweep(self, summary: dict[str, int], interrupted: bool = False) -> None:
        text = ", ".join(f"{v} {k}" for k, v in summary.items())
        status = "interrupted" if interrupted else "finished"
        self.client.log_batch(
            self.parent_id,
            tags=[RunTag(f"{TAG}status", status), RunTag(f"{TAG}summary", text)],
        )
        self.client.set_terminated(self.parent_id, "KILLED" if interrupted else "FINISHED")


def find_cached(tracker: Tracker, identity: str, exclude_parent: str | None = None) -> str | None:
    """The newest finished trial run of `identity` in the experiment (outside `exclude_parent`)."""
    runs = tracker.client.search_runs(
        [tracker.experiment_id],
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
    client.set_terminated(rid, "FINISHED")
    return rid
