"""`dvc repro` runs the real chain data → sweep → tables → figures (on the smoke sweep)."""

import os
import re
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
    (work / "results").mkdir()
    shutil.copy(REPO / "results" / "numerics.json", work / "results" / "numerics.json")
    shutil.copy(REPO / ".dvcignore", work / ".dvcignore")
    pipeline = (REPO / "dvc.yaml").read_text()
    sweeps = re.search(r"- sweeps: \[[a-z_, ]+\]", pipeline)
    assert sweeps, "dvc.yaml lists its sweeps in one `- sweeps: [...]` line"
    smoke = pipeline.replace(sweeps.group(0), "- sweeps: [smoke]")
    # A feature net that trains in seconds (8x8 digits) stands in for the real ones.
    nets = "fashion_mnist_32: {dataset: fashion_mnist, resolution: 32}"
    assert nets in smoke
    smoke = smoke.replace(nets, "digits_8: {dataset: digits, resolution: 8}")
    smoke = smoke.replace("      dsprites_32: {dataset: dsprites, resolution: 32}\n", "")
    assert "frozen: true" in smoke  # the committed nets are never retrained by a repro
    smoke = smoke.replace("frozen: true", "frozen: false")
    (work / "dvc.yaml").write_text(smoke)

    assert _dvc("init", "--no-scm", cwd=work).returncode == 0
    out = _dvc("repro", cwd=work)
    assert out.returncode == 0, out.stdout + out.stderr
    stages = ("feature_net@digits_8", "data@smoke", "sweep@smoke", "tables@smoke",
              "figures@smoke")  # fmt: skip
    assert (work / "results" / "feature_nets" / "fd_digits_8px.json").is_file()
    for stage in stages:
        assert f"'{stage}'" in out.stdout
    results = work / "results" / "smoke"
    for name in ("sweep.json", "runs.csv", "table.md", "table.tex", "table.csv", "figure.png"):
        assert (results / name).is_file(), name
    assert "dSprites-like" in (results / "table.md").read_text()
    assert (work / "dvc.lock").is_file()

    again = _dvc("repro", cwd=work)  # everything is up to date: nothing reruns
    assert again.returncode == 0
    assert "Running stage" not in again.stdout
