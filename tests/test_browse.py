"""The smoke sweep's runs as a researcher browses them: a real MLflow server and headless Chromium.

Skipped only when no Chromium is installed (CI installs it: `apt-get install -y chromium`).
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from PIL import Image

CHROMIUM = next(
    (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None
)
# Where to keep the screenshot (default: the test's tmp dir).
SHOTS = Path(os.environ["VAEBENCH_SCREENSHOTS"]) if "VAEBENCH_SCREENSHOTS" in os.environ else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(base: str, endpoint: str, **query: str) -> dict:
    url = f"{base}{endpoint}?{urllib.parse.urlencode(query)}"
    with urllib.request.urlopen(url, timeout=10) as r:  # noqa: S310 - our own local server
        return json.load(r)


def _post(base: str, endpoint: str, body: dict) -> dict:
    req = urllib.request.Request(
        f"{base}{endpoint}", json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=10) as r:  # noqa: S310
        return json.load(r)


@pytest.fixture
def mlflow_server(smoke, tmp_path):
    """`mlflow server` (the venv's) on a free local port over the smoke store; stopped after."""
    results, _ = smoke
    port = _free_port()
    log = open(tmp_path / "mlflow.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri",
         f"sqlite:///{results / 'mlflow.db'}", "--host", "127.0.0.1", "--port", str(port),
         "--workers", "2"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=2):  # noqa: S310
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    text = (tmp_path / "mlflow.log").read_text()
                    pytest.fail(f"mlflow server did not start:\n{text}")
                time.sleep(0.5)
        yield base
    finally:
        # The server's own process group (uvicorn and its workers): only what this test started.
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def _chromium(url: str, shot: Path, profile: Path, size: str = "1400,900") -> None:
    """Load `url` headless and save a screenshot to `shot` (one retry with a fresh profile:
    under heavy load headless Chromium occasionally never ends its virtual-time budget)."""
    for attempt in range(2):
        proc = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--no-first-run", f"--user-data-dir={profile / str(attempt)}",
             "--virtual-time-budget=15000", f"--window-size={size}", f"--screenshot={shot}", url],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        )  # fmt: skip
        try:
            _, err = proc.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            err = "timed out"
        finally:
            if proc.poll() is None:  # Chromium and its helpers: only the group this test started
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if proc.returncode == 0 and shot.is_file():
            return
    pytest.fail(f"headless Chromium did not render {url}: {err[-2000:]}")


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (apt-get install -y chromium)")
def test_sweep_and_trial_runs_browse_in_the_mlflow_ui(mlflow_server, tmp_path):
    base = mlflow_server
    exp = _get(base, "/api/2.0/mlflow/experiments/get-by-name", experiment_name="smoke")
    exp_id = exp["experiment"]["experiment_id"]
    runs = _post(base, "/api/2.0/mlflow/runs/search", {"experiment_ids": [exp_id]})["runs"]

    def role(run: dict) -> str:
        return next(t["value"] for t in run["data"]["tags"] if t["key"] == "vaebench.role")

    (sweep,) = [r for r in runs if role(r) == "sweep"]
    trials = [r for r in runs if role(r) == "trial"]
    assert len(trials) == 2
    sweep_id = sweep["info"]["run_id"]
    files = _get(base, "/api/2.0/mlflow/artifacts/list", run_id=sweep_id)["files"]
    assert {"table.md", "table.tex", "table.csv", "figure.png"} <= {f["path"] for f in files}

    trial_id = trials[0]["info"]["run_id"]
    images = _get(base, "/api/2.0/mlflow/artifacts/list", run_id=trial_id, path="images")
    pngs = [f["path"] for f in images["files"] if f["path"].endswith(".png")]
    assert {p.split("+")[0] for p in pngs} == {"images/reconstructions", "images/samples"}
    recon = next(p for p in pngs if p.startswith("images/reconstructions"))
    url = f"{base}/get-artifact?" + urllib.parse.urlencode({"path": recon, "run_id": trial_id})
    with urllib.request.urlopen(url, timeout=10) as r:  # noqa: S310
        (tmp_path / "recon.png").write_bytes(r.read())
    with Image.open(tmp_path / "recon.png") as img:
        # 16-px tiles upscaled to >= 64 px, 8 a row, plus the label margin.
        assert img.width > 8 * 64

    shot = (SHOTS or tmp_path) / "sweep-run.png"
    shot.parent.mkdir(parents=True, exist_ok=True)
    page = f"{base}/#/experiments/{exp_id}/runs/{sweep_id}/artifacts?workflowType=machine_learning"
    _chromium(page, shot, tmp_path / "chromium")
    with Image.open(shot) as img:
        assert img.size == (1400, 900)
        assert len(img.convert("L").getcolors(1 << 16) or []) > 20  # not a blank page
