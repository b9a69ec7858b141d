"""Rerun trials of a committed sweep from their recorded configs and compare every metric.

    python -m benchmark.verify results/beta_tradeoff            # the first finished trial
    python -m benchmark.verify results/beta_tradeoff --trial "beta=4,seed=1"
    python -m benchmark.verify results/variants --first 3

Each trial's full config is recorded in `runs.csv` (column `config`), so the rerun needs neither
MLflow nor the sweep file. The rerun trains on the CPU with the thread count the trial recorded,
scores FD with the committed feature nets (`results/feature_nets/`, whatever results dir the
original run wrote to), and prints per metric the committed value, the rerun value and whether
they agree to `--rtol` (default 1e-6).

Bitwise equality holds on the CPU kind, ISA and torch build the trial ran on (each trial records
them: runs.csv column `environment`). On another CPU the kernels (MKL/oneDNN GEMMs, ATen's
vectorised reductions) sum in another order, and thousands of training steps amplify those last
bits, so a rerun there is another draw of the run-to-run noise, not a copy. verify says which
case it is in and, on another CPU, judges each metric against the committed seeds of the same
grid point: the rerun must lie in the Student-t prediction interval of one new seed, at a 95%
family-wise level over the trial's metrics (Bonferroni). `--judge exact|spread` forces one way.

Exit status: 0 when every rerun trial passes its judgement, 1 when one does not, 2 for bad
input.
"""

from __future__ import annotations

import importlib
import json
import math
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmark.cli import Parser
from benchmark.numerics import VOLATILE, environment
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


def recorded_environment(row: pd.Series, folder: Path) -> dict[str, str]:
    """The CPU kind, ISA and torch build the trial of `row` was trained on.

    From runs.csv's `environment` column; for tables made before it existed, only the CPU
    model, read from the **Machine** line of the sweep's `table.md` (empty if neither exists).
    """
    env = row.get("environment")
    if isinstance(env, str) and env.startswith("{"):
        return json.loads(env)
    table = folder / "table.md"
    if table.is_file():
        m = re.search(r"^- \*\*Machine\*\*: [^(\n]*\(([^)\n]+)\)", table.read_text(), re.M)
        if m:
            return {"cpu": m.group(1)}
    return {}


def differences(recorded: dict[str, str], here: dict[str, str]) -> list[str]:
    """'key: recorded → here' for each known key of `recorded` that this machine differs in."""
    return [f"{k}: {recorded[k]} → {here.get(k, '?')}" for k in sorted(recorded)
            if recorded[k] != here.get(k)]  # fmt: skip


def _point(config: str) -> str:
    """A trial's grid point: its recorded config without the seed."""
    d = json.loads(config)
    d.pop("seed", None)
    return json.dumps(d, sort_keys=True)


def _finished(runs: pd.DataFrame) -> pd.DataFrame:
    ok = runs[runs["status"] == "finished"]
    return ok[ok["config"].apply(lambda c: isinstance(c, str))]


def seeds_of(runs: pd.DataFrame, row: pd.Series) -> pd.DataFrame:
    """The finished rows of `runs` with `row`'s config but any seed (`row` itself included)."""
    ok = _finished(runs)
    return ok[ok["config"].apply(_point) == _point(row["config"])]


def spread(
    runs: pd.DataFrame, row: pd.Series, lines: list[tuple[str, Any, Any, bool]]
) -> tuple[list[tuple[float, float, bool]], float, int]:
    """((low, high, within) per line of `check`, the level, the smallest df) for `row`.

    Each metric's interval is the prediction interval of one new seed at `row`'s grid point:
    its committed seeds' mean ± t · cv · |mean| · √(1 + 1/n), with cv the seed-to-seed
    coefficient of variation pooled over every grid point of the sweep
    (`benchmark.stats.pooled_relative_std`: 2–3 seeds a point would give t ≈ 4–400 alone, and
    grid points differ in scale by orders of magnitude). The level is 95% family-wise over the
    metrics that vary (Bonferroni). A metric equal across all seeds (a parameter count, a
    fixed k) must match to the rtol already judged; without two seeds anywhere there is no
    interval and the exact judgement stands.
    """
    from benchmark.stats import pooled_relative_std, prediction_interval

    ok = _finished(runs)
    points = ok["config"].apply(_point)
    seeds = ok[points == _point(row["config"])]
    varying = [k for k, *_ in lines if k in ok.columns
               and pd.to_numeric(ok[k], errors="coerce").nunique() > 1]  # fmt: skip
    level = 1 - 0.05 / max(len(varying), 1)
    out, dfs = [], []
    for key, _, b, same in lines:
        if key not in varying or b is None:
            out.append((math.nan, math.nan, same))
            continue
        values = pd.to_numeric(ok[key], errors="coerce")
        cv, df = pooled_relative_std([values[points == p].tolist() for p in points.unique()])
        dfs.append(df)
        here = values[seeds.index].tolist()
        scale = abs(float(np.nanmean(here))) if here else math.nan
        lo, hi = prediction_interval(here, level, pooled=(cv * scale, df))
        out.append((lo, hi, same or (not math.isnan(lo) and lo <= float(b) <= hi)))
    return out, level, min(dfs, default=0)


def main(argv: list[str] | None = None) -> int:
    """`python -m benchmark.verify`: rerun committed trials from runs.csv and compare every metric.

    Exit codes: 0 every rerun trial passes its judgement (exact: every metric to --rtol;
    spread: every metric within the committed seeds' interval); 1 one does not; 2 bad input
    (one line).
    """
    p = Parser(
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
        "--judge",
        choices=["auto", "exact", "spread"],
        default="auto",
        help="exact: every metric to --rtol; spread: within the committed seeds' prediction "
        "interval; auto (default): exact on the recorded CPU kind, ISA and torch build, "
        "spread on another",
    )
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
        try:
            runs = pd.read_csv(csv)
        except (pd.errors.EmptyDataError, pd.errors.ParserError) as e:
            raise VerifyError(f"{csv}: not a runs.csv ({str(e).splitlines()[0]})") from None
        missing = [c for c in ("trial", "status") if c not in runs.columns]
        if missing:
            raise VerifyError(f"{csv}: no `{missing[0]}` column; allowed: a runs.csv written by "
                              "benchmark.report")  # fmt: skip
        rows = pick_rows(runs, args.trial, args.first)
        if "config" not in rows.columns:
            raise VerifyError(f"{csv}: no `config` column (made before verify existed); "
                              "regenerate the sweep")  # fmt: skip
        for module in args.plugin:
            try:
                importlib.import_module(module)
            except ImportError as e:
                raise VerifyError(f"--plugin {module}: cannot import it ({e})") from None
        for _, row in rows.iterrows():  # every config checked before the first long rerun
            metrics = trial_config(row).eval.metrics
            if {"fd", "fid"} & set(metrics) and not Path(args.feature_nets).is_dir():
                raise VerifyError(f"--feature-nets {args.feature_nets}: no such folder; trial "
                                  f"{row['trial']!r} scores FD with a committed feature net; "
                                  f"allowed: a folder like {FEATURE_NETS}")  # fmt: skip
    except VerifyError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    here = environment()
    bad = {"exact": 0, "spread": 0}
    for _, row in rows.iterrows():
        recorded = recorded_environment(row, csv.parent)
        moved = differences(recorded, here)
        known = {"cpu", "isa", "torch"} <= set(recorded)
        judge = args.judge if args.judge != "auto" else ("spread" if moved else "exact")
        print(f"rerunning {row['trial']} ({csv}) ...", flush=True)
        if moved:
            print(f"  recorded on another machine ({'; '.join(moved)}): trained weights are "
                  "not bitwise reproducible across CPU kinds, ISAs or torch builds (other "
                  "kernels sum in another order and training amplifies the last bits)")  # fmt: skip
        elif not known:
            print("  the trial's ISA and torch build were not recorded (runs.csv before the "
                  "`environment` column): a mismatch may be another ISA's float noise; "
                  "--judge spread checks it against the seeds")  # fmt: skip
        result = rerun(row, Path(args.feature_nets),
                       Path(args.outputs).resolve() if args.outputs else None)  # fmt: skip
        lines = check(row, result, args.rtol)
        bounds, level, df = spread(runs, row, lines)
        n_seeds = len(seeds_of(runs, row))
        if judge == "spread":
            print(f"  judged by spread: each varying metric must lie in the {level:.2%} "
                  f"prediction interval of one new seed (95% family-wise, Bonferroni), from "
                  f"this grid point's {n_seeds} committed seeds and the relative seed spread "
                  f"pooled over the sweep's grid points (df {df}); 'match' is equality to "
                  f"rtol {args.rtol:g}")  # fmt: skip
            if df < 4:
                print(f"  warning: only {df} degrees of freedom: the interval is wide and "
                      "catches gross errors only")  # fmt: skip
        width = max(len(k) for k, *_ in lines)
        head = f"  {'metric':{width}s}  {'committed':>14s}  {'rerun':>14s}  match"
        base = len(head)
        if judge == "spread":
            head += f"  {'interval of a new seed':>34s}  within"
        print(head)
        for (key, a, b, ok), (lo, hi, within) in zip(lines, bounds, strict=True):
            fa = f"{a:.7g}" if isinstance(a, float) else str(a)
            fb = f"{b:.7g}" if isinstance(b, float) else str(b)
            line = f"  {key:{width}s}  {fa:>14s}  {fb:>14s}  {'yes' if ok else 'NO'}"
            if judge == "spread":
                iv = "(constant: exact)" if math.isnan(lo) else f"[{lo:.6g}, {hi:.6g}]"
                line = f"{line:<{base}s}  {iv:>34s}  {'yes' if within else 'NO'}"
            print(line)
        sha = row.get("model_sha256")
        if isinstance(sha, str) and sha:
            same = sha == result.get("model_sha256")
            why = " (same CPU, ISA and torch build: the numerics changed)" if (
                not same and known and not moved) else ""  # fmt: skip
            print(f"  trained weights bitwise equal: {'yes' if same else 'no'}{why}")
        if judge == "exact":
            n_bad = sum(not ok for *_, ok in lines)
            print(f"  {row['trial']}: {len(lines) - n_bad}/{len(lines)} metrics match "
                  f"(rtol {args.rtol:g})")  # fmt: skip
        else:
            n_bad = sum(not w for *_, w in bounds)
            print(f"  {row['trial']}: {len(lines) - n_bad}/{len(lines)} metrics within the "
                  f"committed seeds' spread (not a bitwise check)")  # fmt: skip
        bad[judge] += n_bad
    verdicts = []
    if bad["exact"]:
        verdicts.append(f"NOT verified: {bad['exact']} mismatches")
    if bad["spread"]:
        verdicts.append(f"NOT consistent: {bad['spread']} metrics outside the seeds' spread")
    if not verdicts:
        judged = {args.judge} if args.judge != "auto" else {
            "spread" if differences(recorded_environment(r, csv.parent), here) else "exact"
            for _, r in rows.iterrows()}  # fmt: skip
        verdicts.append("verified: every metric matches" if judged == {"exact"} else
                        "consistent with the committed seeds" if judged == {"spread"} else
                        "verified (same machine) and consistent with the committed seeds "
                        "(another machine)")  # fmt: skip
    print("; ".join(verdicts))
    return 0 if not sum(bad.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
