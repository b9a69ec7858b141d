"""A real two-node Ray cluster and an MLflow tracking server on 127.0.0.1 (issue 13).

The test starts, each in its own process group so that it can stop exactly what it started:
  - a Ray head node (1 CPU, custom resource `head`) and a second Ray node (1 CPU, resource
    `worker`), both through `ray start --block`;
  - `mlflow server` with its own SQLite backend store and a proxied artifact destination.
Then it runs `sweeps/smoke.yaml` (4 trials) from a third directory with `--address`,
`--tracking-uri` and a `file://` `--storage-path` (the pyarrow URI code path), kills the second
node once it has finished a trial and checkpointed another, and checks the outcome.

Why the checkout is really not importable on the nodes: the shared venv has the project
installed in editable mode, i.e. a `.pth` hook in its site-packages that maps `benchmark` to the
checkout from any directory. The nodes therefore run on an *overlay venv*: a fresh venv (no pip,
0.2 s) whose only content is a `.pth` line naming the shared venv's site-packages. Python adds
that folder to `sys.path` but does not execute the `.pth` files inside it, so every dependency
imports and `import benchmark` fails (asserted below). PYTHONPATH is removed from the nodes'
environment and their working directories are empty temporary folders. The code can only reach
the trials through the job's `runtime_env` (`benchmark.tune.code_runtime_env`).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.request
import venv
from pathlib import Path

import psutil
import pytest

from benchmark.config import overrides_hash
from benchmark.metric_names import to_mlflow
from tests.conftest import REPO

pytestmark = pytest.mark.cluster

N_TRIALS = 4  # smoke.yaml: beta in {1, 4} x seed in {0, 1}
# Long enough that the second node joins in while the head still has trials to run (at 400
# steps an idle machine finished all four on the head before the worker node took one), and
# to kill a trial between its first checkpoint and its end.
STEPS = 1500


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _overlay_venv(where: Path) -> Path:
    """A venv that sees the current environment's packages but not the editable project."""
    venv.EnvBuilder(with_pip=False, symlinks=True).create(where)
    paths = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    site = Path(
        subprocess.check_output(
            [
                str(where / "bin" / "python"),
                "-c",
                "import sysconfig; print(sysconfig.get_paths()['purelib'])",
            ],
            text=True,
        ).strip()
    )
    (site / "shared_deps.pth").write_text("\n".join(paths) + "\n")
    return where / "bin" / "python"


class Group:
    """A process started in a new session; `kill` signals that process group and nothing else."""

    def __init__(self, cmd: list[str], cwd: Path, env: dict[str, str], log: Path) -> None:
        self.log = log
        with open(log, "w") as out:
            self.proc = subprocess.Popen(
                cmd,
                cwd=cwd,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill(self, sig: int = signal.SIGKILL) -> None:
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass

    def stop(self) -> None:
        self.kill(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        self.kill(signal.SIGKILL)  # what a graceful exit left behind in the group
        self.proc.wait()

    def text(self) -> str:
        return self.log.read_text(errors="replace")


def _wait(what: str, ready, deadline: float, groups: list[Group]) -> None:
    while not ready():
        for g in groups:
            if g.proc.poll() is not None:
                pytest.fail(f"{what}: {g.proc.args[:4]} exited early:\n{g.text()[-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail(
                f"{what}: not ready in time:\n" + "\n".join(g.text()[-2000:] for g in groups)
            )
        time.sleep(0.3)


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def _raylet_node_id(group: Group) -> str | None:
    """The Ray node id of the raylet in this process group (from its command line)."""
    for p in psutil.process_iter(["pid", "name", "cmdline"]):
        try:
            if os.getpgid(p.info["pid"]) != group.proc.pid or p.info["name"] != "raylet":
                continue
        except (ProcessLookupError, PermissionError):
            continue
        for arg in p.info["cmdline"] or []:
            if arg.startswith("--node_id="):
                return arg.split("=", 1)[1]
    return None


def _attempts(trial_dir: Path) -> list[dict]:
    path = trial_dir / "attempts.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _result(trial_dir: Path) -> dict | None:
    path = trial_dir / "out" / "result.json"
    return json.loads(path.read_text()) if path.is_file() else None


def test_two_nodes_mlflow_server_and_a_lost_node(tmp_path: Path) -> None:
    t_start = time.monotonic()
    # Generous: the suite shares 2 cores with whatever else runs; ~90 s on an idle machine.
    deadline = t_start + 600
    base_env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    base_env.update(RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0", PYTHONUNBUFFERED="1")
    # The head notices a dead node within ~2 s instead of Ray's default ~15 s.
    head_env = {
        **base_env,
        "RAY_health_check_period_ms": "500",
        "RAY_health_check_timeout_ms": "500",
        "RAY_health_check_failure_threshold": "3",
    }
    python = _overlay_venv(tmp_path / "nodeenv")
    head_dir, worker_dir, driver_dir = (tmp_path / d for d in ("head", "worker", "driver"))
    for d in (head_dir, worker_dir, driver_dir):
        d.mkdir()
    probe = subprocess.run(
        [str(python), "-c", "import yaml, pydantic; import benchmark"],
        cwd=worker_dir,
        env=base_env,
        capture_output=True,
        text=True,
    )
    assert probe.returncode != 0 and "No module named 'benchmark'" in probe.stderr, probe.stderr

    ray_tmp = Path(f"/tmp/vb{os.getpid()}")  # short: Ray's socket paths must fit in 107 bytes
    gcs = _free_port()
    mlflow_port = _free_port()

    def ray_node(extra: list[str], cwd: Path, env: dict[str, str], name: str) -> Group:
        ports = []
        for flag in (
            "--node-manager-port",
            "--object-manager-port",
            "--dashboard-agent-grpc-port",
            "--dashboard-agent-listen-port",
            "--runtime-env-agent-port",
            "--metrics-export-port",
        ):
            ports += [flag, str(_free_port())]
        cmd = [
            str(python),
            "-m",
            "ray.scripts.scripts",
            "start",
            "--block",
            "--num-cpus",
            "1",
            "--node-ip-address",
            "127.0.0.1",
            "--disable-usage-stats",
            "--temp-dir",
            str(ray_tmp),
            "--min-worker-port",
            "0",
            "--max-worker-port",
            "0",
            *ports,
            *extra,
        ]
        return Group(cmd, cwd, env, tmp_path / f"{name}.log")

    groups: list[Group] = []
    try:
        head = ray_node(
            [
                "--head",
                "--port",
                str(gcs),
                "--include-dashboard=false",
                "--dashboard-port",
                str(_free_port()),
                "--resources",
                '{"head": 1}',
            ],
            head_dir,
            head_env,
            "head",
        )
        groups.append(head)
        server = Group(
            [
                sys.executable,
                "-m",
                "mlflow",
                "server",
                "--host",
                "127.0.0.1",
                "--port",
                str(mlflow_port),
                "--workers",
                "1",
                "--backend-store-uri",
                f"sqlite:///{tmp_path / 'mlflow.db'}",
                "--artifacts-destination",
                str(tmp_path / "art"),
                "--serve-artifacts",
            ],
            tmp_path,
            base_env,
            tmp_path / "mlflow.log",
        )
        groups.append(server)
        # Started at once: the second node keeps trying the head's GCS until it answers.
        worker = ray_node(
            ["--address", f"127.0.0.1:{gcs}", "--resources", '{"worker": 1}'],
            worker_dir,
            base_env,
            "worker",
        )
        groups.append(worker)
        started = "Ray runtime started"
        _wait("ray head", lambda: started in head.text(), deadline, [head])
        _wait("ray worker node", lambda: started in worker.text(), deadline, [worker])
        tracking = f"http://127.0.0.1:{mlflow_port}"
        _wait("mlflow server", lambda: _http_ok(f"{tracking}/health"), deadline, [server])
        head_id, worker_id = _raylet_node_id(head), _raylet_node_id(worker)
        assert head_id and worker_id and head_id != worker_id
        t_up = time.monotonic() - t_start

        store = tmp_path / "store"
        driver = Group(
            [
                sys.executable,
                "-m",
                "benchmark.run",
                str(REPO / "sweeps" / "smoke.yaml"),
                "--address",
                f"127.0.0.1:{gcs}",
                "--tracking-uri",
                tracking,
                "--storage-path",
                store.as_uri(),
                "--results-dir",
                str(driver_dir / "results"),
                "--override",
                "grid.seed=[0,1]",
                "--override",
                f"train.steps={STEPS}",
                "--override",
                "train.log_every=100",
                "--checkpoint-every",
                "50",
                "--no-report",
            ],
            driver_dir,
            {**base_env, "PYTHONPATH": str(REPO)},
            tmp_path / "driver.log",
        )
        groups.append(driver)

        # Kill the second node once it has finished a trial and checkpointed the next one.
        killed: dict[str, object] = {}
        while driver.proc.poll() is None and time.monotonic() < deadline:
            trials = sorted(store.glob("*/trials/*"))
            finished_there = [d for d in trials if (_result(d) or {}).get("node_id") == worker_id]
            running_there = [
                d
                for d in trials
                if _result(d) is None
                and (d / "state.pt").is_file()
                and (_attempts(d) or [{}])[-1].get("node_id") == worker_id
            ]
            if not killed and finished_there and running_there:
                worker.kill()
                # Judged after the kill: a trial that ended between the look and the kill was
                # not cut off.
                cut = [d for d in running_there if _result(d) is None]
                killed = {
                    "at": time.monotonic(),
                    "trial": cut[0].name if cut else None,
                    "finished": {d.name for d in trials if _result(d) is not None},
                }
            time.sleep(0.1)
        code = driver.proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        log = driver.text()
        assert code == 0, log[-4000:]
        assert killed, f"the second node never finished a trial and checkpointed another:\n{log}"
        assert killed["trial"], f"the checkpointed trial ended just before the kill:\n{log}"
        t_sweep = time.monotonic() - t_start - t_up
        for g in (driver, worker, head):  # the checks below need only the tracking server
            g.stop()
        _check_storage(store, killed, head_id, worker_id)
        _check_server(tracking, tmp_path, driver_dir, store, head_id, worker_id)
    finally:
        for g in reversed(groups):
            g.stop()
        shutil.rmtree(ray_tmp, ignore_errors=True)
    print(f"cluster up in {t_up:.0f}s, sweep with a lost node in {t_sweep:.0f}s")


def _check_storage(store: Path, killed: dict, head_id: str, worker_id: str) -> None:
    """The shared storage: who ran what, and the retried trial's checkpoint."""
    trials = {d.name: d for d in store.glob("*/trials/*")}
    assert len(trials) == N_TRIALS
    results = {h: _result(d) for h, d in trials.items()}
    assert all(r and r["status"] == "finished" for r in results.values()), results
    for h in killed["finished"]:  # finished before the node was lost: not run again
        assert len(_attempts(trials[h])) == 1, (h, _attempts(trials[h]))
    retried = _attempts(trials[killed["trial"]])
    assert retried[0]["node_id"] == worker_id and retried[-1]["node_id"] == head_id, retried
    assert retried[-1]["start_step"] > 0, (
        f"the retry did not continue from its checkpoint: {retried}"
    )
    assert results[killed["trial"]]["resumed_from_step"] == retried[-1]["start_step"]
    assert {r["node_id"] for r in results.values()} == {head_id, worker_id}
    assert all(r["hostname"] == socket.gethostname() for r in results.values())


def _check_server(
    tracking: str, tmp_path: Path, driver_dir: Path, store: Path, head_id: str, worker_id: str
) -> None:
    """Every run, metric and image on the tracking server, read back through its REST API."""
    from mlflow.tracking import MlflowClient

    results = {d.name: _result(d) for d in store.glob("*/trials/*")}
    client = MlflowClient(tracking_uri=tracking)
    # the experiment of the sweep as run with the driver's overrides (Sweep.results_name)
    overrides = ["grid.seed=[0,1]", f"train.steps={STEPS}", "train.log_every=100"]
    exp = client.get_experiment_by_name(f"smoke+{overrides_hash(overrides)}")
    assert exp.artifact_location.startswith("mlflow-artifacts:"), exp.artifact_location
    runs = client.search_runs([exp.experiment_id], max_results=100)
    trial_runs = [r for r in runs if r.data.tags.get("vaebench.role") == "trial"]
    assert len(trial_runs) == N_TRIALS and len(runs) == N_TRIALS + 1
    assert {r.data.tags["vaebench.node_id"] for r in trial_runs} == {head_id, worker_id}
    for r in trial_runs:
        h = r.data.tags["vaebench.trial_hash"]
        assert r.info.status == "FINISHED" and r.data.tags["vaebench.status"] == "finished"
        assert r.data.tags["vaebench.node_id"] == results[h]["node_id"]
        assert r.data.tags["vaebench.hostname"] == results[h]["hostname"]
        assert r.data.metrics[to_mlflow("mse")] == pytest.approx(results[h]["mse"])
        curve = to_mlflow("train_loss")
        steps = [m.step for m in client.get_metric_history(r.info.run_id, curve)]
        assert steps == sorted(set(steps)) and steps[-1] == STEPS, steps  # no step twice
        names = {a.path for a in client.list_artifacts(r.info.run_id)}
        assert {"reconstructions.png", "samples.png", "result.json"} <= names, names
        png = client.download_artifacts(r.info.run_id, "samples.png", str(tmp_path))
        assert Path(png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # Proxied: the files are in the server's artifact destination, not in any client's disk.
    assert len(list((tmp_path / "art").rglob("samples.png"))) == N_TRIALS
    assert not (driver_dir / "results" / "mlartifacts").exists()
