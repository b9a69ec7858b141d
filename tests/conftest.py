import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmark.paths import REPO


def run_cli(*args: str, cwd: Path = REPO, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run `python -m <args>` as a user would, capturing output."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=cwd, capture_output=True, text=True,
        timeout=timeout, env=env,
    )  # fmt: skip


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture(scope="session")
def smoke(tmp_path_factory):
    """sweeps/smoke.yaml run once through real Ray and MLflow: (results dir, completed process)."""
    results = tmp_path_factory.mktemp("smoke") / "results"
    out = run_cli("benchmark.run", "sweeps/smoke.yaml", "--results-dir", str(results))
    assert out.returncode == 0, out.stdout + out.stderr
    return results, out
