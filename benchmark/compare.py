"""Compare a candidate variant with baselines, metric by metric, with CIs and Holm-corrected tests.

    python -m benchmark.compare examples/plugin_variant/compare_btcvae.yaml
    python -m benchmark.compare sweeps/beta_tradeoff.yaml --candidate beta_tcvae \\
        --baseline beta_vae --metrics mig,mse,kl

The sweep runs first (through `benchmark.run`, with `variant` as a grid axis holding the
candidate and the baselines), so every variant sees the same data, architecture, budget and
seeds; thanks to the trial cache (`benchmark.cache`) baselines that already ran are copied, not
retrained. Then, for every grid point (the sweep's axes other than `variant` and `seed`) and
every baseline, each metric gets:

- candidate and baseline mean ± std over seeds, and the difference candidate − baseline with its
  95% interval;
- a two-sided t-test: paired when both ran the same seeds (seed-for-seed: same data order and
  initialisation noise), else Welch's; p-values Holm-corrected across the metrics;
- a verdict for the candidate: win, loss (significant, in the metric's better direction) or tie.

Outputs go beside the sweep's tables: `compare.md`, `compare.tex`, `compare.csv` and
`compare.png`. A sweep file can carry the comparison itself:

    compare: {candidate: beta_tcvae, baselines: [beta_vae], metrics: [mig, mse, kl]}
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import pandas as pd

from benchmark import stats
from benchmark.atomic import atomic_path, write_text_atomic
from benchmark.cli import Parser
from benchmark.paths import RESULTS

DEFAULT_METRICS = ("mse", "kl", "elbo", "nll", "mig")


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    """(compare's own options, the remaining arguments for benchmark.run).

    A bad compare option exits 2 with one line (`benchmark.cli.Parser`).
    """
    p = Parser(
        prog="python -m benchmark.compare",
        description="Run a sweep with a candidate variant and baselines, then compare them "
        "metric by metric (95%% CIs, paired or Welch t-tests, Holm correction). Other flags "
        "(--profile, --override, --results-dir, --rerun, --plugin, --num-cpus, --device, ...) "
        "go to benchmark.run.",
    )
    p.add_argument("sweep", help="the sweep file")
    p.add_argument("--candidate", help="the new variant (default: the sweep's compare block)")
    p.add_argument(
        "--baseline",
        action="append",
        default=[],
        metavar="VARIANT",
        help="a baseline variant; repeatable (default: the sweep's compare block)",
    )
    p.add_argument(
        "--metrics",
        help="comma-separated metric columns (default: the compare "
        f"block, else those of {', '.join(DEFAULT_METRICS)} the sweep has)",
    )
    return p.parse_known_args(argv)  # fmt: skip


def plan(sweep_file: str, args: argparse.Namespace, run_args: list[str]) -> dict:
    """Candidate, baselines and metrics from the flags or the sweep's `compare:` block.

    Raises `ConfigError` (one line naming the source) when they are missing or unknown.
    """
    from benchmark.config import ConfigError, load_sweep, parse_override

    profile = "default"
    if "--profile" in run_args:
        profile = run_args[run_args.index("--profile") + 1]
    overrides = [run_args[i + 1] for i, a in enumerate(run_args) if a == "--override"]
    sweep = load_sweep(sweep_file, profile, overrides, allow_large=True)
    block = sweep.compare or {}
    candidate = args.candidate or block.get("candidate")
    baselines = args.baseline or list(block.get("baselines", []))
    if not candidate or not baselines:
        raise ConfigError(
            sweep_file,
            "compare",
            "no candidate or baselines; give --candidate and"
            " --baseline, or a compare: {candidate: ..., baselines: [...]} block",
        )
    if candidate in baselines:
        raise ConfigError(sweep_file, "--baseline", f"{candidate!r} is the candidate")
    metrics = args.metrics.split(",") if args.metrics else block.get("metrics")
    variants_in_grid = {t.config.variant for t in sweep.trials}
    wanted = [candidate, *baselines]
    extra = []
    if not set(wanted) <= variants_in_grid:
        extra = ["--override", f"grid.variant=[{', '.join(wanted)}]"]
        for o in extra[1::2]:
            parse_override(o)
    return {"candidate": candidate, "baselines": baselines, "metrics": metrics,
            "run_args": [*run_args, *extra], "profile": profile}  # fmt: skip


def comparisons(
    runs: pd.DataFrame, axes: list[str], candidate: str, baselines: list[str], metrics: list[str]
) -> pd.DataFrame:
    """One row per (grid point, baseline, metric) with the test and its Holm-adjusted p-value."""
    from benchmark.report import direction

    ok = runs[runs["status"] == "finished"]
    keys = [a for a in axes if a not in ("variant", "seed") and a in ok.columns]
    groups = ok.groupby(keys, sort=False, dropna=False) if keys else [((), ok)]
    rows = []
    for key, g in groups:
        key = key if isinstance(key, tuple) else (key,)
        cand = g[g["variant"] == candidate].sort_values("seed")
        for base in baselines:
            b = g[g["variant"] == base].sort_values("seed")
            paired = len(cand) > 1 and list(cand["seed"]) == list(b["seed"])
            tests = [
                stats.compare(m, cand[m].dropna().tolist(), b[m].dropna().tolist(),
                              paired=paired and cand[m].notna().all() and b[m].notna().all())
                for m in metrics if m in g.columns
            ]  # fmt: skip
            for c in stats.verdicts(tests, {m: direction(m) for m in metrics}):
                rows.append({
                    **dict(zip(keys, key, strict=True)), "baseline": base, "metric": c.metric,
                    "candidate_mean": cand[c.metric].mean(), "candidate_std": cand[c.metric].std(),
                    "baseline_mean": b[c.metric].mean(), "baseline_std": b[c.metric].std(),
                    "n_candidate": c.n_candidate, "n_baseline": c.n_baseline, "diff": c.diff,
                    "diff_low": c.low, "diff_high": c.high, "test": c.test, "p": c.p,
                    "p_holm": c.p_holm, "verdict": c.verdict,
                    "better": direction(c.metric) or "none",
                })  # fmt: skip
    return pd.DataFrame(rows)


def _f(x: float, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:.{digits}g}"


def to_markdown(table: pd.DataFrame, candidate: str, keys: list[str], title: str) -> str:
    """The comparison table as Markdown: a section per baseline (and grid point), each with
    a verdict summary."""
    lines = [f"# {title}", "",
             f"Candidate **{candidate}** against each baseline, per grid point. Difference = "
             "candidate − baseline with its 95% interval; paired t-test when both ran the same "
             "seeds, else Welch's; p-values Holm-corrected across the metrics of one comparison; "
             "win/loss = significant at 0.05 after Holm in the metric's better direction.",
             ""]  # fmt: skip
    for key, g in table.groupby([*keys, "baseline"], sort=False):
        key = key if isinstance(key, tuple) else (key,)
        point, base = key[:-1], key[-1]
        where = ", ".join(f"{k}={v}" for k, v in zip(keys, point, strict=False))
        lines += [f"## vs {base}" + (f" ({where})" if where else ""), "",
                  f"| metric (better) | {candidate} | {base} | difference [95% CI] | test | p | "
                  "p (Holm) | verdict |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for _, r in g.iterrows():
            lines.append(
                f"| {r['metric']} ({r['better']}) | {_f(r['candidate_mean'])} ± "
                f"{_f(r['candidate_std'], 2)} (n={r['n_candidate']}) | {_f(r['baseline_mean'])}"
                f" ± {_f(r['baseline_std'], 2)} (n={r['n_baseline']}) | {_f(r['diff'])} "
                f"[{_f(r['diff_low'])}, {_f(r['diff_high'])}] | {r['test']} | {_f(r['p'], 3)} |"
                f" {_f(r['p_holm'], 3)} | {r['verdict']} |"
            )
        counts = g["verdict"].value_counts()
        lines += ["", "Summary: " + ", ".join(f"{counts.get(v, 0)} {v}" for v in
                                              ("win", "tie", "loss", "differs")), ""]  # fmt: skip
    return "\n".join(lines)


def to_latex(table: pd.DataFrame, candidate: str, keys: list[str], title: str) -> str:
    """The comparison as a booktabs LaTeX table (difference, 95% interval, Holm p, verdict)."""
    from benchmark.report import _tex_escape

    cols = [*keys, "baseline", "metric", "diff", "diff_low", "diff_high", "p_holm", "verdict"]
    lines = ["% Generated by benchmark.compare; needs \\usepackage{booktabs}.",
             "\\begin{table}[t]", "\\centering", "\\small",
             f"\\caption{{{_tex_escape(title)}: {_tex_escape(candidate)} minus baseline, 95\\% "
             "interval, Holm-corrected p.}",
             f"\\begin{{tabular}}{{{'l' * (len(keys) + 2)}rrl}}", "\\toprule",
             " & ".join(_tex_escape(c) for c in [*keys, "baseline", "metric"])
             + " & difference [95\\% CI] & $p_\\mathrm{Holm}$ & verdict \\\\",
             "\\midrule"]  # fmt: skip
    for _, r in table[cols].iterrows():
        cells = [_tex_escape(str(r[c])) for c in [*keys, "baseline", "metric"]]
        cells += [f"{_f(r['diff'])} [{_f(r['diff_low'])}, {_f(r['diff_high'])}]",
                  _f(r["p_holm"], 3), r["verdict"]]  # fmt: skip
        lines.append(" & ".join(cells) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}", "\\end{table}"]
    return "\n".join(lines) + "\n"


def figure(runs: pd.DataFrame, metrics: list[str], axes: list[str], path: Path) -> None:
    """Mean and 95% CI over seeds per variant, a panel per metric; writes `path` .png and .pdf."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    ok = runs[runs["status"] == "finished"]
    metrics = [m for m in metrics if m in ok.columns and ok[m].notna().any()]
    keys = [a for a in axes if a not in ("variant", "seed")]
    fig, axs = plt.subplots(1, len(metrics), figsize=(3.6 * len(metrics), 3.2), squeeze=False)
    for ax, m in zip(axs[0], metrics, strict=True):
        x = keys[0] if keys else "variant"
        sns.pointplot(data=ok, x=x, y=m, hue="variant", errorbar=("ci", 95), dodge=0.3,
                      linestyle="none", ax=ax)  # fmt: skip
        ax.set_title(m)
        ax.grid(alpha=0.3)
    fig.suptitle("mean and 95% CI over seeds", fontsize=9)
    fig.tight_layout()
    for suffix in (".png", ".pdf"):
        with atomic_path(path.with_suffix(suffix)) as tmp:
            fig.savefig(tmp, dpi=130)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    """`python -m benchmark.compare`: run the sweep (benchmark.run), compare, write compare.*.

    Exit codes: 0 done; 1 nothing to compare; 2 a bad sweep, option or override (one line);
    otherwise benchmark.run's own code when the sweep could not run.
    """
    from benchmark import run as run_cli
    from benchmark.config import ConfigError, load_sweep
    from benchmark.report import load_runs
    from benchmark.tracking import default_tracking_uri

    args, run_args = parse_args(argv)
    for i, a in enumerate(run_args):  # plugins must be importable before the plan validates
        if a == "--plugin" and i + 1 < len(run_args):
            __import__(run_args[i + 1])
    try:
        p = plan(args.sweep, args, run_args)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    code = run_cli.main([args.sweep, *p["run_args"]])
    if code not in (0, 1):
        return code
    overrides = [p["run_args"][i + 1] for i, a in enumerate(p["run_args"]) if a == "--override"]
    sweep = load_sweep(args.sweep, p["profile"], overrides, allow_large=True)
    results = Path(run_cli.option(p["run_args"], "--results-dir", str(RESULTS)))
    uri = run_cli.option(p["run_args"], "--tracking-uri", None) or default_tracking_uri(results)
    sr = load_runs(uri, sweep.results_name)
    metrics = p["metrics"] or [m for m in DEFAULT_METRICS if m in sr.runs.columns]
    table = comparisons(sr.runs, sr.axes, p["candidate"], p["baselines"], metrics)
    if table.empty:
        print("error: no finished trials of the candidate and baselines to compare",
              file=sys.stderr)  # fmt: skip
        return 1
    keys = [a for a in sr.axes if a not in ("variant", "seed") and a in table.columns]
    out = results / sweep.results_name
    title = f"{sweep.name}: {p['candidate']} vs {', '.join(p['baselines'])}"
    write_text_atomic(out / "compare.csv", table.to_csv(index=False))
    write_text_atomic(out / "compare.md", to_markdown(table, p["candidate"], keys, title))
    write_text_atomic(out / "compare.tex", to_latex(table, p["candidate"], keys, title))
    figure(sr.runs, metrics, sr.axes, out / "compare.png")
    print((out / "compare.md").read_text())
    for name in ("compare.md", "compare.tex", "compare.csv", "compare.png", "compare.pdf"):
        print(f"wrote {out / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
