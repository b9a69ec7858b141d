"""Committed results a reader can check: verify reruns, statistics and LaTeX in the tables."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from benchmark import numerics
from tests.conftest import REPO, run_cli


def test_verify_reruns_a_trial_and_matches_every_metric(smoke):
    results, _ = smoke
    out = run_cli("benchmark.verify", str(results / "smoke"), "--trial", "beta=4,seed=0")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "verified: every metric matches" in out.stdout
    for metric in ("mse", "kl", "elbo", "mig", "train_loss"):
        assert re.search(rf"^\s+{metric}\s+\S+\s+\S+\s+yes$", out.stdout, re.M), metric


def test_verify_reports_a_tampered_value(smoke, tmp_path):
    results, _ = smoke
    shutil.copytree(results / "smoke", tmp_path / "smoke")
    csv = tmp_path / "smoke" / "runs.csv"
    runs = pd.read_csv(csv)
    runs.loc[runs["trial"] == "beta=1,seed=0", "kl"] *= 1 + 1e-5
    runs.to_csv(csv, index=False)
    out = run_cli("benchmark.verify", str(tmp_path / "smoke"), "--trial", "beta=1,seed=0")
    assert out.returncode == 1
    assert re.search(r"^\s+kl\s+\S+\s+\S+\s+NO$", out.stdout, re.M)
    assert "NOT verified: 1 mismatches" in out.stdout


def test_trials_record_the_environment_their_bits_depend_on(smoke):
    results, _ = smoke
    runs = pd.read_csv(results / "smoke" / "runs.csv")
    assert {json.loads(e) == numerics.environment() for e in runs["environment"]} == {True}


def _on_another_cpu(smoke, tmp_path, kl_factor: float) -> Path:
    """A copy of the smoke sweep whose trial beta=4,seed=0 was 'recorded on another CPU' and
    has two more seeds (its metrics scaled by 0.99 and 1.01, and kl by `kl_factor` in all)."""
    results, _ = smoke
    shutil.copytree(results / "smoke", tmp_path / "smoke")
    csv = tmp_path / "smoke" / "runs.csv"
    runs = pd.read_csv(csv)
    row = runs[runs["trial"] == "beta=4,seed=0"].iloc[0].copy()
    row["environment"] = json.dumps({"cpu": "Other CPU", "isa": "AVX2", "torch": "2.0"})
    rows = [row]
    for seed, f in ((1, 0.99), (2, 1.01)):
        r = row.copy()
        r["trial"], r["seed"] = f"beta=4,seed={seed}", seed
        r["config"] = json.dumps({**json.loads(row["config"]), "seed": seed})
        for key in ("mse", "kl", "elbo", "mig", "train_loss"):
            r[key] = row[key] * f
        rows.append(r)
    out = pd.DataFrame(rows)
    out["kl"] *= kl_factor
    pd.concat([runs[runs["trial"] != "beta=4,seed=0"], out]).to_csv(csv, index=False)
    return tmp_path / "smoke"


def test_verify_on_another_cpu_judges_by_the_committed_seeds(smoke, tmp_path):
    folder = _on_another_cpu(smoke, tmp_path, kl_factor=1.0)
    out = run_cli("benchmark.verify", str(folder), "--trial", "beta=4,seed=0")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "recorded on another machine (cpu: Other CPU → " in out.stdout
    assert "this grid point's 3 committed seeds and the relative seed spread pooled" in out.stdout
    assert re.search(r"^\s+kl\s+\S+\s+\S+\s+yes\s+\[\S+, \S+\]\s+yes$", out.stdout, re.M)
    assert (
        "not a bitwise check" in out.stdout and "consistent with the committed seeds" in out.stdout
    )
    # --judge exact asks for bits whatever the recorded machine (this rerun ran here: it passes)
    exact = run_cli("benchmark.verify", str(folder), "--trial", "beta=4,seed=0", "--judge", "exact")
    assert exact.returncode == 0 and "verified: every metric matches" in exact.stdout


def test_verify_on_another_cpu_fails_a_value_outside_the_seeds_spread(smoke, tmp_path):
    folder = _on_another_cpu(smoke, tmp_path, kl_factor=3.0)  # every committed kl tripled
    out = run_cli("benchmark.verify", str(folder), "--trial", "beta=4,seed=0")
    assert out.returncode == 1, out.stdout + out.stderr
    assert re.search(r"^\s+kl\s+\S+\s+\S+\s+NO\s+\[\S+, \S+\]\s+NO$", out.stdout, re.M)
    assert "NOT consistent: 1 metrics outside the seeds' spread" in out.stdout


def test_recorded_environment_of_a_table_made_before_the_column(tmp_path):
    from benchmark.verify import recorded_environment

    (tmp_path / "table.md").write_text(
        "# t\n\n- **Machine**: x86_64, 2 cores (AMD EPYC), 24 GiB, no GPU; devices: cpu\n"
    )
    row = pd.Series({"trial": "a", "environment": float("nan")})
    assert recorded_environment(row, tmp_path) == {"cpu": "AMD EPYC"}
    row["environment"] = json.dumps({"cpu": "X", "isa": "AVX512", "torch": "2.14.1"})
    assert recorded_environment(row, tmp_path)["isa"] == "AVX512"


@pytest.mark.parametrize("text", ["", "trial,seed\nbeta=1,0\n"])
def test_verify_refuses_a_file_that_is_not_a_runs_csv(text, tmp_path, capsys):
    from benchmark.verify import main

    (tmp_path / "runs.csv").write_text(text)
    assert main([str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and ("not a runs.csv" in err or "no `status` column" in err)


def test_verify_bad_input_is_one_line(tmp_path):
    out = run_cli("benchmark.verify", str(tmp_path))
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "runs.csv" in out.stderr


@pytest.mark.parametrize("rtol", ["-1", "nan", "1"])
def test_verify_refuses_a_tolerance_that_cannot_judge_before_any_rerun(rtol, capsys):
    from benchmark.verify import main

    assert main([str(REPO / "results" / "beta_tradeoff"), "--rtol", rtol]) == 2
    out = capsys.readouterr()
    assert out.err.startswith(f"error: --rtol: {float(rtol)} is not allowed") and not out.out


def test_verify_names_a_trial_whose_variant_is_not_registered(smoke, tmp_path):
    # e.g. a plugin's results checked without its package: one line before any rerun
    results, _ = smoke
    shutil.copytree(results / "smoke", tmp_path / "smoke")
    csv = tmp_path / "smoke" / "runs.csv"
    runs = pd.read_csv(csv)
    config = json.loads(runs.loc[0, "config"])
    runs.loc[0, "config"] = json.dumps({**config, "variant": "beta_tcvae"})
    runs.to_csv(csv, index=False)
    out = run_cli("benchmark.verify", str(tmp_path / "smoke"))
    assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr
    assert "variant: unknown variant 'beta_tcvae'" in out.stderr and "--plugin" in out.stderr
    out = run_cli("benchmark.verify", str(tmp_path / "smoke"), "--plugin", "no_such_module")
    assert out.returncode == 2 and "--plugin no_such_module: cannot import it" in out.stderr


def test_sweep_records_its_numerics_and_tables_show_them(smoke):
    results, _ = smoke
    record = json.loads((results / "smoke" / "sweep.json").read_text())
    assert record["numerics"] == {"core": numerics.digest(numerics.load_pins()["core"])}
    md = (results / "smoke" / "table.md").read_text()
    assert f"core {record['numerics']['core']}" in md
    assert "95% Student-t interval" in md
    runs = pd.read_csv(results / "smoke" / "runs.csv")
    assert json.loads(runs["config"][0])["variant"] == "beta_vae"


def test_latex_table_is_booktabs_and_compiles(smoke, tmp_path):
    results, _ = smoke
    tex = (results / "smoke" / "table.tex").read_text()
    assert "\\textbackslash" not in tex  # the old caption broke on an escaped \pm
    assert tex.count("\\toprule") == tex.count("\\midrule") == tex.count("\\bottomrule") == 1
    spec = re.search(r"\\begin\{tabular\}\{([lr]+)\}", tex).group(1)
    header = tex.split("\\toprule\n")[1].split("\n")[0]
    assert len(spec) == header.count("&") + 1 and spec.startswith("l") and "r" in spec
    assert tex.count("$") % 2 == 0
    doc = tmp_path / "doc.tex"
    doc.write_text("\\documentclass{article}\\usepackage{booktabs}\\begin{document}"
                   f"{tex}\\end{{document}}\n")  # fmt: skip
    engine = shutil.which("pdflatex")
    if engine:  # compile for real where a LaTeX engine is installed (.ci/run installs one)
        out = subprocess.run([engine, "-interaction=nonstopmode", "-halt-on-error", doc.name],
                             cwd=tmp_path, capture_output=True, text=True, timeout=120)  # fmt: skip
        assert out.returncode == 0, out.stdout[-2000:]
