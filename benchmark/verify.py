"""Rerun trials of a committed sweep from their recorded configs and compare every metric.

    python -m benchmark.verify results/beta_tradeoff            # the first finished trial
    python -m benchmark.verify results/beta_tradeoff --trial "beta=4,seed=1"
    python -m benchmark.verify results/variants --first 3

Each trial's full config is recorded in `runs.csv` (column `config`), so the rerun needs neither
MLflow nor the sweep file. The rerun trains on the CPU with the thread count the trial recorded,
scores FD with the committed feature nets (`results/feature_nets/`, whatever results dir the
original run wrote to), and prints per metric the committed value, the rerun value and whether
they agree to `--rtol` (default 1e-6). Exit status: 0 when every metric of every rerun trial
matches, 1 when one does not, 2 for bad input.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import sys
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from benchmark.numerics import VOLATILE
from benchmark.paths import FEATURE_NETS

# Bookkeeping columns of runs.csv that are not results of the trial.
NOT_METRICS = {"index", "seed", "beta", "latent_dim", "steps", "batch_size", "lr", "threads"}


class VerifyError(Exception):
    """Bad input to verify: `str()` is the one line shown to the user."""


def metric_columns(row: pd.Series) -> list[str]:
    """The numeric result columns of a runs.csv row that a rerun must reproduce."""
    out = []
    for key, value in row.items():
        if key in NOT_METRICS or key.startswith("note.") or any(v in key for v in VOLATILE):
            continue
        if isinstance(value, int | float) and not isinstance(value, bool):
            if not (isinstance(value, float) and math.isnan(value)):
                out.append(str(key))
    return out


def pick_rows(runs: pd.DataFrame, trials: list[str], first: int) -> pd.DataFrame:
    """The finished rows named in `trials`, else the first `first` finished rows."""
    ok = runs[runs["status"] == "finished"]
    if trials:
        missing = [t for t in trials if t not in set(runs["trial"])]
        if missing:
            from benchmark.config.errors import did_you_mean

            raise VerifyError(
                f"--trial {missing[0]!r}: no such trial; allowed: {', '.join(runs['trial'])}"
                + did_you_mean(missing[0], list(runs["trial"]))
            )
        ok = ok[ok["trial"].isin(trials)]
        if ok.empty:
            raise VerifyError(f"--trial {trials[0]!r}: the trial did not finish; nothing to check")
        return ok
    if ok.empty:
        raise VerifyError("no finished trial in runs.csv; nothing to check")
    return ok.head(first)


def trial_config(row: pd.Series):
    """The `TrialConfig` recorded in a runs.csv row.

    Raises:
        VerifyError: the row has no config, or it does not validate with this code (e.g. a
            plugin variant whose package is neither installed nor named with --plugin).
    """
    import pydantic

    from benchmark.config import TrialConfig

    if "config" not in row or not isinstance(row["config"], str):
        raise VerifyError(
            "runs.csv has no `config` column (made before verify existed); regenerate the sweep"
        )
    try:
        return TrialConfig.model_validate(json.loads(row["config"]))
    except pydantic.ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "config"
        msg = err["msg"].removeprefix("Value error, ")
        hint = "; a plugin variant needs its package installed or --plugin MODULE" if (
            where == "variant") else ""  # fmt: skip
        raise VerifyError(f"trial {row['trial']!r} of runs.csv: {where}: {msg}{hint}") from None


def rerun(row: pd.Series, feature_nets: Path, outputs: Path | None = None) -> dict[str, Any]:
    """Train and evaluate the trial of `row` again, on the CPU, as it was run; with `outputs`,
    its images (reconstructions, samples, latent traversals) are kept in `outputs/<trial>/`."""
    import torch

    from benchmark.trial import run_trial

    config = trial_config(row)
    threads = int(row["threads"]) if "threads" in row and pd.notna(row["threads"]) else 1
    torch.set_num_threads(threads)
    curve: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp) if outputs is None else outputs / str(row["trial"]).replace("/", "_")
        result = run_trial(config, workdir, curve.append, device="cpu", feature_nets=feature_nets)
    # runs.csv holds the training curve's last point (MLflow's latest value of each curve).
    return {**(curve[-1] if curve else {}), **result}


def check(row: pd.Series, result: dict[str, Any], rtol: float) -> list[tuple[str, Any, Any, bool]]:
    """(metric, committed, rerun, match) for every metric column of `row`."""
    out = []
    for key in metric_columns(row):
        a, b = row[key], result.get(key)
        ok = b is not None and math.isclose(float(a), float(b), rel_tol=rtol, abs_tol=1e-12)
        out.append((key, a, b, ok))
    if result.get("status") != row["status"]:
        out.append(("status", row["status"], result.get("status"), False))
    return out


def main(argv: list[str] | None = None) -> int:
    """`python -m benchmark.verify`: rerun committed trials from runs.csv and compare every metric.

    Exit codes: 0 all metrics agree within --rtol; 1 some differ; 2 bad input (one line).
    """
    p = argparse.ArgumentParser(
        prog="python -m benchmark.verify",
        description="Rerun trials of a committed sweep from runs.csv and compare every metric.",
    )
    p.add_argument("results", help="a sweep's results folder, e.g. results/beta_tradeoff")
    p.add_argument(
        "--trial",
        action="append",
        default=[],
        metavar="NAME",
        help="a trial name from runs.csv, e.g. 'beta=4,seed=1' (repeatable)",
    )
    p.add_argument(
        "--first",
        type=int,
        default=1,
        metavar="N",
        help="without --trial: the first N finished trials (default 1)",
    )
    p.add_argument("--rtol", type=float, default=1e-6, help="relative tolerance (default 1e-6)")
    p.add_argument(
        "--feature-nets",
        default=str(FEATURE_NETS),
        help="the FD feature nets (default: the committed results/feature_nets)",
    )
    p.add_argument(
        "--outputs",
        metavar="DIR",
        help="keep each rerun's images (incl. latent traversals) in DIR/<trial>/",
    )
    p.add_argument(
        "--plugin",
        action="append",
        default=[],
        metavar="MODULE",
        help="import a module that registers a variant (as benchmark.run does)",
    )
    args = p.parse_args(argv)  # fmt: skip
    csv = Path(args.results) / "runs.csv"
    try:
        if not csv.is_file():
            raise VerifyError(f"{csv}: no such file; allowed: a folder holding a sweep's runs.csv")
        if args.first < 1:
            raise VerifyError(f"--first: {args.first} is not allowed; allowed: an integer >= 1")
        if not 0 <= args.rtol < 1:  # also rejects nan
            raise VerifyError(f"--rtol: {args.rtol} is not allowed; allowed: 0 <= rtol < 1")
        rows = pick_rows(pd.read_csv(csv), args.trial, args.first)
        if "config" not in rows.columns:
            raise VerifyError(f"{csv}: no `config` column (made before verify existed); "
                              "regenerate the sweep")  # fmt: skip
        for module in args.plugin:
            try:
                importlib.import_module(module)
            except ImportError as e:
                raise VerifyError(f"--plugin {module}: cannot import it ({e})") from None
        for _, row in rows.iterrows():  # every config checked before the first long rerun
            trial_config(row)
    except VerifyError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    bad = 0
    for _, row in rows.iterrows():
        print(f"rerunning {row['trial']} ({csv}) ...", flush=True)
        result = rerun(row, Path(args.feature_nets),
                       Path(args.outputs).resolve() if args.outputs else None)  # fmt: skip
        lines = check(row, result, args.rtol)
        width = max(len(k) for k, *_ in lines)
        print(f"  {'metric':{width}s}  {'committed':>14s}  {'rerun':>14s}  match")
        for key, a, b, ok in lines:
            fa = f"{a:.7g}" if isinstance(a, float) else str(a)
            fb = f"{b:.7g}" if isinstance(b, float) else str(b)
            print(f"  {key:{width}s}  {fa:>14s}  {fb:>14s}  {'yes' if ok else 'NO'}")
        n_bad = sum(not ok for *_, ok in lines)
        sha = row.get("model_sha256")
        if isinstance(sha, str) and sha:
            # Informational: bitwise-equal weights are expected on the same CPU and torch
            # build only; the verdict rests on the metrics.
            same = "yes" if sha == result.get("model_sha256") else "no (expected on another CPU)"
            print(f"  trained weights bitwise equal: {same}")
        bad += n_bad
        print(f"  {row['trial']}: {len(lines) - n_bad}/{len(lines)} metrics match "
              f"(rtol {args.rtol:g})")  # fmt: skip
    print("verified: every metric matches" if not bad else f"NOT verified: {bad} mismatches")
    return 0 if not bad else 1


if __name__ == "__main__":
    sys.exit(main())
