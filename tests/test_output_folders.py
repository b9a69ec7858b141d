"""Where outputs go: a run with overrides never replaces the sweep's own folder, a folder holds
exactly its run's outputs, and a reader never creates a tracking store."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from benchmark.atomic import remove_stale
from benchmark.config import load_sweep, overrides_hash
from tests.conftest import REPO


def _digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_overrides_name_their_own_folder_whatever_their_spelling_or_order():
    smoke = REPO / "sweeps" / "smoke.yaml"
    assert load_sweep(smoke).results_name == "smoke"  # the committed folders keep their names
    a = load_sweep(smoke, overrides=["train.steps=20", "grid.beta=[2]"]).results_name
    b = load_sweep(smoke, overrides=["grid.beta=[ 2 ]", "train.steps=20"]).results_name
    assert a == b and a.startswith("smoke+") and len(a) == len("smoke+") + 8
    assert a != load_sweep(smoke, overrides=["train.steps=21", "grid.beta=[2]"]).results_name
    # where one override sets what another does, the later one wins: order then matters
    assert overrides_hash(["likelihood=gaussian", "likelihood.sigma=0.2"]) != overrides_hash(
        ["likelihood.sigma=0.2", "likelihood=gaussian"]
    )
    assert overrides_hash(["grid.seed=[0]", "seed=3"]) != overrides_hash(
        ["seed=3", "grid.seed=[0]"]
    )


def test_remove_stale_keeps_exactly_the_given_files(tmp_path):
    keep = [tmp_path / "new.png"]
    for name in ("new.png", "old.png", ".writer.123.tmp.png"):
        (tmp_path / name).write_bytes(b"x")
    assert remove_stale(tmp_path, keep) == [tmp_path / "old.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".writer.123.tmp.png", "new.png"]
    assert remove_stale(tmp_path / "absent", keep) == []


def test_an_override_run_has_its_own_folder_and_report_finds_it(smoke, tmp_path, cli):
    # The smoke store copied: its β=4 trial is in the trial cache, so the override run below
    # copies it instead of training (no Ray start).
    results = tmp_path / "results"
    shutil.copytree(smoke[0], results, ignore=shutil.ignore_patterns("ray"))
    before = _digests(results / "smoke")
    out = cli("benchmark.run", "sweeps/smoke.yaml", "--results-dir", str(results),
              "--override", "grid.beta=[4]")  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    name = f"smoke+{overrides_hash(['grid.beta=[4]'])}"
    folder = results / name
    assert f"go to {folder}/" in out.stdout
    assert _digests(results / "smoke") == before  # the sweep's own outputs untouched
    table = (folder / "table.md").read_text()
    assert "profile `default`, overrides `grid.beta=[4]`" in table
    assert "cache: 1 trials" in out.stdout  # copied from the sweep's own run, not retrained
    rows = (folder / "table.csv").read_text().splitlines()[1:]
    assert len(rows) == 1 and rows[0].startswith("4.0,"), rows
    assert json.loads((folder / "sweep.json").read_text())["overrides"] == ["grid.beta=[4]"]
    assert sorted(p.name for p in (folder / "images").iterdir()) == [
        "beta-4.0_seed-0_reconstructions.png", "beta-4.0_seed-0_samples.png"]  # fmt: skip

    # Outputs of an older run in the same folder (a β since dropped) are removed by the report.
    for stale in ("images/beta-1.0_seed-0_samples.png", "figures/old_vs_beta.png"):
        (folder / stale).write_bytes(b"stale")
    again = cli("benchmark.report", "sweeps/smoke.yaml", "--results-dir", str(results),
                "--override", "grid.beta=[ 4 ]")  # fmt: skip
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"wrote {folder / 'table.md'}" in again.stdout
    assert not (folder / "images/beta-1.0_seed-0_samples.png").exists()
    assert not (folder / "figures/old_vs_beta.png").exists()
    assert (folder / "images/beta-4.0_seed-0_samples.png").is_file()
    assert (folder / "figures/training_curves.png").is_file()


@pytest.mark.parametrize("tracking", [None, "file"])
def test_report_on_a_missing_store_creates_nothing(cli, tmp_path, tracking):
    results = tmp_path / "results"
    args = ["benchmark.report", "sweeps/beta_tradeoff.yaml", "--results-dir", str(results)]
    if tracking:
        args += ["--tracking-uri", (tmp_path / "mlruns").as_uri()]
    out = cli(*args)
    assert out.returncode == 2, out.stdout + out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: no MLflow store at "), out.stderr
    assert "python -m benchmark.run sweeps/beta_tradeoff.yaml" in lines[0]
    assert "committed tables and figures are in results/beta_tradeoff/" in lines[0]
    assert list(tmp_path.iterdir()) == []
