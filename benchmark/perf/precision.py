"""One sweep under two settings, trial by trial: does bf16 (or another CPU) stay in the seed spread?

    python -m benchmark.perf.precision REFERENCE OTHER [--out results/perf/precision_<name>]

`REFERENCE` and `OTHER` are results folders (or runs.csv files) of the same sweep, e.g. the β
sweep trained in fp32 and with `--override train.precision=bf16`. Their trials are paired by
name (the same grid point and seed); every key of the recorded configs must agree except those
named in `--differ` (default `train.precision`), so nothing else can explain a difference. Each
metric column of the report (its metric registry entry) that varies across trials is judged
twice:

- **per grid point**, whether the other setting's mean over its m seeds lies in the 95%
  Student-t prediction interval of the reference's mean over as many new seeds,
  mean_ref ± t_{0.975, df} · s · √(1/m + 1/n), with s = cv · |mean_ref| and cv the
  reference's relative seed spread pooled over the grid points (df = trials − grid points;
  `benchmark.stats.pooled_relative_std`): "within the seed spread";
- **over all trials**, the paired difference other − reference with its 95% interval and the
  paired t-test, Holm-corrected across metrics (`benchmark.stats`): a shift that is systematic
  across the grid shows here even when each grid point's seeds are too few to show it.

Both sweeps' wall times come from their sweep.json. Writes `<out>.md` and `<out>.csv`.
Exit status: 0 written, 2 bad input (one line).
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats as sps

from benchmark import stats
from benchmark.atomic import write_text_atomic
from benchmark.cli import Parser
from benchmark.metrics import registry
from benchmark.paths import RESULTS


class PrecisionError(Exception):
    """Bad input: `str()` is the one line shown."""


def load(path: str | Path) -> tuple[pd.DataFrame, dict]:
    """(finished rows of runs.csv, sweep.json or {}) of a results folder or a runs.csv path."""
    p = Path(path)
    csv = p / "runs.csv" if p.is_dir() else p
    if not csv.is_file():
        raise PrecisionError(f"{path}: no runs.csv; allowed: a sweep's results folder or runs.csv")
    try:
        runs = pd.read_csv(csv)
    except (pd.errors.EmptyDataError, pd.errors.ParserError) as e:
        raise PrecisionError(f"{csv}: not a runs.csv ({str(e).splitlines()[0]})") from None
    missing = [c for c in ("trial", "status", "config") if c not in runs.columns]
    if missing:
        raise PrecisionError(f"{csv}: no `{missing[0]}` column; allowed: a runs.csv written by "
                             "benchmark.report since trials record their config")  # fmt: skip
    sweep = csv.parent / "sweep.json"
    return runs[runs["status"] == "finished"], (
        json.loads(sweep.read_text()) if sweep.is_file() else {}
    )


def _flat(d: dict, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _config(text: str) -> dict[str, object]:
    """A recorded config, flat, with every default filled in (keys added to the schema after a
    sweep ran are absent from its runs.csv, which is not a difference)."""
    from benchmark.config import TrialConfig

    try:
        return _flat(TrialConfig.model_validate(json.loads(text)).model_dump(mode="json"))
    except ValueError:  # a plugin variant not registered here: compare the record as written
        return _flat(json.loads(text))


def pair(ref: pd.DataFrame, other: pd.DataFrame, differ: list[str]) -> pd.DataFrame:
    """The trials both sweeps finished, joined by name (`_ref` / `_other` suffixes).

    Raises:
        PrecisionError: no common trial, or a pair's configs differ in a key outside `differ`.
    """
    both = ref.merge(other, on="trial", suffixes=("_ref", "_other"))
    if both.empty:
        raise PrecisionError("the two sweeps have no finished trial name in common")
    for _, row in both.iterrows():
        a, b = _config(row["config_ref"]), _config(row["config_other"])
        keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k) and k not in differ)
        if keys:
            k = keys[0]
            raise PrecisionError(f"trial {row['trial']!r}: config key {k} is {a.get(k)!r} in "
                                 f"one sweep and {b.get(k)!r} in the other; allowed to differ: "
                                 f"{', '.join(differ) or 'none'}")  # fmt: skip
    return both


def metric_keys(both: pd.DataFrame) -> list[str]:
    """The report's metric columns present in both sweeps that vary across trials."""
    out = []
    for col in both.columns:
        if not col.endswith("_ref"):
            continue
        key = col[: -len("_ref")]
        if f"{key}_other" not in both or registry.column_of(key) is None:
            continue
        values = pd.to_numeric(both[col], errors="coerce")
        if values.notna().all() and values.nunique() > 1:
            out.append(key)
    return out


def default_names(both: pd.DataFrame, differ: list[str]) -> tuple[str, str]:
    """Labels from the differing keys' values (e.g. ('fp32', 'bf16')), else reference/other."""
    row = both.iloc[0]
    a, b = _config(row["config_ref"]), _config(row["config_other"])
    keys = [k for k in differ if a.get(k) != b.get(k)]
    if not keys:
        return "reference", "other"
    return (",".join(str(a.get(k)) for k in keys), ",".join(str(b.get(k)) for k in keys))


def _group(trial: str) -> str:
    """A trial's grid point: its name without the seed."""
    return ",".join(p for p in trial.split(",") if not p.startswith("seed="))


def within_spread(
    ref: np.ndarray, other: np.ndarray, pooled: tuple[float, int], level: float = 0.95
) -> tuple[float, float]:
    """The interval the other setting's mean of len(other) seeds must lie in (nan: no std).

    mean(ref) ± t_{(1+level)/2, df} · s_p · √(1/m + 1/n), with `pooled` = (s_p, df) the
    reference's seed std at this grid point (cv · |mean_ref|, see `pooled_relative_std`).
    """
    n, m = len(ref), len(other)
    s, df = pooled
    if n < 1 or m < 1 or df < 1 or not math.isfinite(s):
        return math.nan, math.nan
    half = float(sps.t.ppf(0.5 + level / 2, df)) * s * math.sqrt(1 / m + 1 / n)
    return float(ref.mean() - half), float(ref.mean() + half)


def judge(both: pd.DataFrame, keys: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per grid point × metric rows, per metric paired-test rows); see the module docstring."""
    cells = []
    both = both.assign(point=both["trial"].map(_group))
    groups = list(both.groupby("point", sort=False))
    cv = {k: stats.pooled_relative_std([g[f"{k}_ref"].tolist() for _, g in groups]) for k in keys}
    for point, g in groups:
        for key in keys:
            a = g[f"{key}_ref"].to_numpy(float)
            b = g[f"{key}_other"].to_numpy(float)
            lo, hi = within_spread(a, b, (cv[key][0] * abs(a.mean()), cv[key][1]))
            cells.append({"point": point, "metric": key, "n": len(g), "ref_mean": a.mean(),
                          "ref_std": a.std(ddof=1) if len(a) > 1 else math.nan,
                          "other_mean": b.mean(), "low": lo, "high": hi,
                          "within": bool(lo <= b.mean() <= hi) if lo == lo else None})  # fmt: skip
    tests = [
        stats.compare(k, both[f"{k}_other"].to_numpy(float), both[f"{k}_ref"].to_numpy(float),
                      paired=True)
        for k in keys
    ]  # fmt: skip
    directions = {k: (registry.column_of(k)[1].better if registry.column_of(k) else None)
                  for k in keys}  # fmt: skip
    judged = stats.verdicts(tests, directions)
    rows = [{"metric": c.metric, "n_pairs": c.n_candidate, "diff": c.diff, "low": c.low,
             "high": c.high, "p": c.p, "p_holm": c.p_holm, "verdict": c.verdict,
             "ref_seed_std": float(np.nanmean([x["ref_std"] for x in cells
                                               if x["metric"] == c.metric]))}
            for c in judged]  # fmt: skip
    return pd.DataFrame(cells), pd.DataFrame(rows)


def _g(x: float) -> str:
    return "n/a" if x != x else f"{x:.4g}"


def markdown(cells: pd.DataFrame, tests: pd.DataFrame, names: tuple[str, str],
             info: list[str]) -> str:  # fmt: skip
    """The report: provenance lines, the per-metric paired tests, then every grid point."""
    ref, other = names
    lines = [f"# {other} against {ref}", "", *[f"- {x}" for x in info], ""]
    lines += [f"## Over all paired trials: {other} − {ref} (paired t, Holm across metrics)", "",
              "| Metric | n pairs | difference [95% CI] | mean seed std (ref) | p | p (Holm) | "
              "verdict |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for _, r in tests.iterrows():
        lines.append(f"| {r['metric']} | {r['n_pairs']} | {_g(r['diff'])} [{_g(r['low'])}, "
                     f"{_g(r['high'])}] | {_g(r['ref_seed_std'])} | {_g(r['p'])} | "
                     f"{_g(r['p_holm'])} | {r['verdict']} |")  # fmt: skip
    n_in = int((cells["within"] == True).sum())  # noqa: E712 (None = no interval)
    n_all = int(cells["within"].notna().sum())
    lines += ["", f"## Per grid point: is {other}'s mean within {ref}'s seed spread?", "",
              f"{n_in} of {n_all} (grid point, metric) cells are within the 95% prediction "
              f"interval of {ref}'s mean over as many new seeds (relative seed spread "
              f"pooled over the grid points). Each cell is tested at 95%, so about "
              f"{0.05 * n_all:.1f} cells are expected outside by chance alone even when "
              "nothing changed.", "",
              f"| Grid point | Metric | {ref} mean ± std | {other} mean | 95% interval | "
              "within |", "|---|---|---|---|---|---|"]  # fmt: skip
    for _, r in cells.iterrows():
        w = "n/a" if r["within"] is None else ("yes" if r["within"] else "**no**")
        lines.append(f"| {r['point']} | {r['metric']} | {_g(r['ref_mean'])} ± "
                     f"{_g(r['ref_std'])} | {_g(r['other_mean'])} | [{_g(r['low'])}, "
                     f"{_g(r['high'])}] | {w} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """`python -m benchmark.perf.precision`; exit 0 written, 2 bad input (one line)."""
    p = Parser(prog="python -m benchmark.perf.precision",
                                description=__doc__.split("\n")[0])  # fmt: skip
    p.add_argument("reference", help="results folder (or runs.csv) of the reference setting")
    p.add_argument("other", help="results folder (or runs.csv) of the other setting")
    p.add_argument("--names", default=None,
                   help="labels of the two (default: their values of the --differ keys, e.g. "
                   "fp32,bf16, else reference,other)")  # fmt: skip
    p.add_argument("--differ", default="train.precision",
                   help="comma-separated config keys allowed to differ (default train.precision;"
                   " '' for none: the same config rerun elsewhere)")  # fmt: skip
    p.add_argument("--out", default=None,
                   help="output path without suffix, .md and .csv are written (default "
                   "results/perf/precision_<reference folder's name>)")  # fmt: skip
    args = p.parse_args(argv)
    try:
        if args.names is not None:
            names = tuple(args.names.split(","))
            if len(names) != 2 or not all(names):
                raise PrecisionError(f"--names {args.names!r}: allowed: two labels, e.g. "
                                     "fp32,bf16")  # fmt: skip
        ref, ref_sweep = load(args.reference)
        other, other_sweep = load(args.other)
        differ = [k for k in args.differ.split(",") if k]
        both = pair(ref, other, differ)
        if args.names is None:
            names = default_names(both, differ)
        keys = metric_keys(both)
        if not keys:
            raise PrecisionError("no metric column varies across the paired trials")
    except PrecisionError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    cells, tests = judge(both, keys)
    info = []
    from benchmark.verify import recorded_environment

    for name, path, sw, runs in ((names[0], args.reference, ref_sweep, ref),
                                 (names[1], args.other, other_sweep, other)):  # fmt: skip
        folder = Path(path) if Path(path).is_dir() else Path(path).parent
        envs = sorted({" / ".join(recorded_environment(r, folder).values())
                       for _, r in runs.iterrows()} - {""})  # fmt: skip
        info.append(f"**{name}**: `{path}`, {len(runs)} finished trials, "
                    f"{sw.get('minutes', 'n/a')} min wall (sweep.json), commit "
                    f"{sw.get('commit', '?')}, CPU "
                    f"{', '.join(envs) or 'not recorded'}")  # fmt: skip
    if ref_sweep.get("minutes") and other_sweep.get("minutes"):
        info.append(f"wall-time ratio {names[0]}/{names[1]}: "
                    f"{ref_sweep['minutes'] / other_sweep['minutes']:.2f}")  # fmt: skip
    ref_name = (Path(args.reference) if Path(args.reference).is_dir()
                else Path(args.reference).parent).resolve().name  # fmt: skip
    out = Path(args.out) if args.out else RESULTS / "perf" / f"precision_{ref_name}"
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        if not os.access(out.parent, os.W_OK):
            raise OSError("not writable")
    except OSError as e:
        print(f"error: --out {out}: cannot write there ({e})", file=sys.stderr)
        return 2
    write_text_atomic(out.with_suffix(".md"), markdown(cells, tests, names, info))
    table = pd.concat([tests.assign(kind="paired"), cells.assign(kind="grid point")])
    write_text_atomic(out.with_suffix(".csv"), table.to_csv(index=False))
    print(markdown(cells, tests, names, info).split("## Per grid point")[0], end="")
    print(f"wrote {out.with_suffix('.md')} and {out.with_suffix('.csv')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
