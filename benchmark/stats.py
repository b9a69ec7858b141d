"""Statistics over seeds: Student-t intervals, best/tied marking, tests between variants.

Everything here is scipy.stats underneath; this module only fixes the conventions the tables
use:

- a cell is mean ± sample std (ddof=1) with the 95% Student-t confidence interval of the mean,
  mean ± t_{0.975, n-1} · std / √n, and n (the finished seeds) shown;
- the best value of a column is the best mean in the metric's declared direction; an entry
  whose interval overlaps the best one's is *tied* with it (an overlap test: conservative, it
  calls some real differences ties, never the other way round);
- a comparison of two variants is Welch's t-test, or the paired t-test when both ran the same
  seeds, with the 95% interval of the difference; p-values across metrics are Holm-corrected
  (Holm 1979), which controls the family-wise error rate without assuming independence.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

LEVEL = 0.95


@dataclass(frozen=True)
class Summary:
    """Mean, std (ddof=1), n and the 95% t-interval of the mean of one cell's seeds."""

    n: int
    mean: float
    std: float
    low: float
    high: float


def summarize(values: Sequence[float], level: float = LEVEL) -> Summary:
    """Summary of the finite `values`; with n < 2 the std and interval are NaN."""
    x = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    n = len(x)
    if n == 0:
        return Summary(0, math.nan, math.nan, math.nan, math.nan)
    mean = float(x.mean())
    if n < 2:
        return Summary(1, mean, math.nan, math.nan, math.nan)
    std = float(x.std(ddof=1))
    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * std / math.sqrt(n)
    return Summary(n, mean, std, mean - half, mean + half)


def pooled_std(groups: Sequence[Sequence[float]]) -> tuple[float, int]:
    """(pooled within-group std, degrees of freedom) over `groups` of seeds.

    s_p² = Σ_g Σ_i (x_gi − mean_g)² / (N − G) over the finite values, with G the groups that
    have any; (nan, 0) when no group has two values. It assumes one seed-to-seed variance for
    every group (e.g. every grid point of a sweep), which is what buys degrees of freedom when
    each group has only 2–3 seeds.
    """
    ss, n, g = 0.0, 0, 0
    for values in groups:
        x = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
        if len(x):
            ss += float(((x - x.mean()) ** 2).sum())
            n += len(x)
            g += 1
    df = n - g
    return (math.sqrt(ss / df), df) if df > 0 else (math.nan, 0)


def pooled_relative_std(groups: Sequence[Sequence[float]]) -> tuple[float, int]:
    """(pooled coefficient of variation, degrees of freedom) over `groups` of seeds.

    `pooled_std` of each group divided by the absolute value of its own mean (groups whose mean
    is 0 are left out). A sweep's grid points differ in scale by orders of magnitude (the ELBO
    of a Bernoulli and of a continuous-Bernoulli decoder, FD on two datasets), and the seed
    spread scales with them; pooling the relative spread keeps one noisy grid point from
    widening every other's interval. Multiply by a group's |mean| to get its std.
    """
    scaled = []
    for values in groups:
        x = [v for v in values if v is not None and math.isfinite(v)]
        m = abs(float(np.mean(x))) if x else 0.0
        if m > 0:
            scaled.append([v / m for v in x])
    return pooled_std(scaled)


def prediction_interval(
    values: Sequence[float], level: float = LEVEL, pooled: tuple[float, int] | None = None
) -> tuple[float, float]:
    """The Student-t prediction interval of one new draw from the population of `values`.

    mean ± t_{(1+level)/2, df} · s · √(1 + 1/n) over the n finite values, with s and df the
    sample std (ddof=1) and n − 1, or `pooled` = `pooled_std(...)` of the whole sweep. It is
    (nan, nan) without a std (fewer than 2 values, or df = 0), and the single point (mean,
    mean) when s = 0. `benchmark.verify` uses it to judge a rerun on another CPU, whose float
    noise makes it another draw from the seeds' spread rather than a bitwise copy.
    """
    x = [v for v in values if v is not None and math.isfinite(v)]
    if not x:
        return math.nan, math.nan
    mean = float(np.mean(x))
    std, df = pooled if pooled is not None else (summarize(x).std, len(x) - 1)
    if df < 1 or not math.isfinite(std):
        return math.nan, math.nan
    half = float(stats.t.ppf(0.5 + level / 2, df)) * std * math.sqrt(1 + 1 / len(x))
    return mean - half, mean + half


def mark_best(cells: Sequence[Summary], direction: str | None) -> list[str]:
    """'best', 'tied' or '' per cell; `direction` is 'lower', 'higher' or None (no marking).

    A cell is tied when its interval overlaps the best cell's (cells with n < 2 have no
    interval and are never tied; an exact equal mean is).
    """
    if direction not in ("lower", "higher"):
        return [""] * len(cells)
    finite = [i for i, c in enumerate(cells) if math.isfinite(c.mean)]
    if len(finite) < 2:
        return [""] * len(cells)
    sign = 1 if direction == "lower" else -1
    best = min(finite, key=lambda i: sign * cells[i].mean)
    b = cells[best]
    out = [""] * len(cells)
    out[best] = "best"
    for i in finite:
        if i == best:
            continue
        c = cells[i]
        overlap = (
            all(map(math.isfinite, (b.low, b.high, c.low, c.high)))
            and c.low <= b.high
            and b.low <= c.high
        )
        if overlap or c.mean == b.mean:
            out[i] = "tied"
    return out


@dataclass(frozen=True)
class Comparison:
    """Candidate minus baseline on one metric, over seeds."""

    metric: str
    n_candidate: int
    n_baseline: int
    diff: float  # mean(candidate) - mean(baseline)
    low: float  # 95% interval of the difference
    high: float
    p: float  # two-sided, uncorrected
    test: str  # "paired t" or "Welch t"
    p_holm: float = math.nan
    verdict: str = ""  # win / tie / loss for the candidate, after Holm


def compare(
    metric: str,
    candidate: Sequence[float],
    baseline: Sequence[float],
    *,
    paired: bool = False,
    level: float = LEVEL,
) -> Comparison:
    """Welch's t-test (or the paired t-test) of candidate against baseline.

    `paired=True` needs equal-length sequences whose i-th entries share a seed. With fewer than
    two values on a side no test is possible: p and the interval are NaN.
    """
    a = np.asarray(candidate, dtype=float)
    b = np.asarray(baseline, dtype=float)
    diff = float(a.mean() - b.mean()) if len(a) and len(b) else math.nan
    if len(a) < 2 or len(b) < 2 or (paired and len(a) != len(b)):
        return Comparison(metric, len(a), len(b), diff, math.nan, math.nan, math.nan,
                          "paired t" if paired else "Welch t")  # fmt: skip
    if paired:
        res = stats.ttest_rel(a, b)
        test = "paired t"
    else:
        res = stats.ttest_ind(a, b, equal_var=False)
        test = "Welch t"
    ci = res.confidence_interval(level)
    p = float(res.pvalue)
    if not math.isfinite(p):  # identical constant samples: no evidence of a difference
        p = 1.0
    low, high = float(ci.low), float(ci.high)
    if not math.isfinite(low):
        low = high = diff
    return Comparison(metric, len(a), len(b), diff, low, high, p, test)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values (NaN entries stay NaN and are not counted)."""
    idx = [i for i, p in enumerate(pvalues) if math.isfinite(p)]
    order = sorted(idx, key=lambda i: pvalues[i])
    m = len(order)
    out = [math.nan] * len(pvalues)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        out[i] = running
    return out


def verdicts(
    comparisons: Sequence[Comparison], directions: dict[str, str | None], alpha: float = 0.05
) -> list[Comparison]:
    """Holm-correct the p-values and call each metric a win, tie or loss for the candidate.

    A metric without a direction (e.g. KL, a trade-off) is 'differs'/'tie' rather than a win.
    """
    adjusted = holm([c.p for c in comparisons])
    out = []
    for c, p in zip(comparisons, adjusted, strict=True):
        d = directions.get(c.metric)
        if not math.isfinite(p) or p >= alpha:
            v = "tie"
        elif d is None:
            v = "differs"
        else:
            better = c.diff < 0 if d == "lower" else c.diff > 0
            v = "win" if better else "loss"
        out.append(Comparison(**{**c.__dict__, "p_holm": p, "verdict": v}))
    return out
