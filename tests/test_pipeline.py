"""`dvc repro` runs the real chain data → sweep → tables → figures (on the smoke sweep)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO


def _dvc(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "DVC_NO_ANALYTICS": "1",
        # The stages call `python`: make it this interpreter.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    return subprocess.run(
        [sys.executable, "-m", "dvc", *args], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip


def test_dvc_repro_builds_the_smoke_results(tmp_path):
    work = tmp_path / "project"
    ignore = shutil.ignore_patterns("__pycache__")
    for folder in ("benchmark", "variants", "sweeps"):
        shutil.copytree(REPO / folder, work / folder, ignore=ignore)
    shutil.copy(REPO / ".dvcignore", work / ".dvcignore")
    pipeline = (REPO / "dvc.yaml").read_text()
    assert "- sweeps: [beta_tradeoff, variants]" in pipeline
    smoke = pipeline.replace("- sweeps: [beta_tradeoff, variants]", "- sweeps: [smoke]")
    (work / "dvc.yaml").write_text(smoke)

    assert _dvc("init", "--no-scm", cwd=work).returncode == 0
    out = _dvc("repro", cwd=work)
    assert out.returncode == 0, out.stdout + out.stderr
    for stage in ("data@smoke", "sweep@smoke", "tables@smoke", "figures@smoke"):
        assert f"'{stage}'" in out.stdout
    results = work / "results" / "smoke"
    for name in ("sweep.json", "runs.csv", "table.md", "table.tex", "table.csv", "figure.png"):
        assert (results / name).is_file(), name
    assert "dSprites-like" in (results / "table.md").read_text()
    assert (work / "dvc.lock").is_file()

    again = _dvc("repro", cwd=work)  # everything is up to date: nothing reruns
    assert again.returncode == 0
    assert "Running stage" not in again.stdout
