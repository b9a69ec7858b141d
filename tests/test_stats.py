"""Seed statistics: t-intervals and tests against scipy.stats, Holm, best/tied marking."""

import math

import numpy as np
import pytest
from scipy import stats as sps

from benchmark import stats


def test_interval_is_scipys_student_t():
    x = [0.51, 0.47, 0.55, 0.49]
    s = stats.summarize(x)
    low, high = sps.t.interval(0.95, len(x) - 1, loc=np.mean(x), scale=sps.sem(x))
    assert (s.n, s.low, s.high) == (
        4,
        pytest.approx(low, rel=1e-12),
        pytest.approx(high, rel=1e-12),
    )
    assert s.std == pytest.approx(np.std(x, ddof=1), rel=1e-12)


def test_one_seed_has_no_interval_and_nan_is_dropped():
    s = stats.summarize([1.0, math.nan])
    assert s.n == 1 and s.mean == 1.0 and math.isnan(s.low) and math.isnan(s.std)


def test_welch_and_paired_match_scipy():
    a, b = [1.0, 1.2, 0.9, 1.1], [0.7, 0.8, 0.75, 0.9]
    w = stats.compare("m", a, b)
    ref = sps.ttest_ind(a, b, equal_var=False)
    assert w.test == "Welch t" and w.p == pytest.approx(ref.pvalue, rel=1e-12)
    ci = ref.confidence_interval(0.95)
    assert (w.low, w.high) == (pytest.approx(ci.low), pytest.approx(ci.high))
    assert w.diff == pytest.approx(np.mean(a) - np.mean(b))
    p = stats.compare("m", a, b, paired=True)
    assert p.test == "paired t" and p.p == pytest.approx(sps.ttest_rel(a, b).pvalue, rel=1e-12)


def test_holm_by_hand():
    # sorted: .005*4=.02, .01*3=.03, .03*2=.06, .04*1=.04 -> monotone max .06
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    out = stats.holm([0.2, math.nan])
    assert out[0] == pytest.approx(0.2) and math.isnan(out[1])


def test_verdicts_follow_the_direction_after_holm():
    lower_better = stats.compare("mse", [0.1, 0.11, 0.1, 0.105], [0.2, 0.21, 0.2, 0.19])
    noise = stats.compare("mig", [0.1, 0.3, 0.2], [0.2, 0.1, 0.25])
    out = stats.verdicts([lower_better, noise], {"mse": "lower", "mig": "higher"})
    assert [c.verdict for c in out] == ["win", "tie"]
    assert out[0].p_holm == pytest.approx(min(1, 2 * lower_better.p))
    worse = stats.verdicts([stats.compare("mig", [0.1, 0.11, 0.1], [0.5, 0.51, 0.5])],
                           {"mig": "higher"})  # fmt: skip
    assert worse[0].verdict == "loss"


def test_best_and_tied_marks():
    a = stats.summarize([1.0, 1.1, 0.9])  # best (lower)
    b = stats.summarize([1.05, 1.2, 1.0])  # overlaps a
    c = stats.summarize([5.0, 5.1, 4.9])  # far away
    assert stats.mark_best([a, b, c], "lower") == ["best", "tied", ""]
    assert stats.mark_best([a, b, c], "higher") == ["", "", "best"]
    assert stats.mark_best([a, b, c], None) == ["", "", ""]


def test_prediction_interval_is_scipys_student_t_for_one_new_draw():
    x = [0.51, 0.47, 0.55, 0.49]
    sd = float(np.std(x, ddof=1)) * math.sqrt(1 + 1 / len(x))
    low, high = sps.t.interval(0.99, len(x) - 1, loc=np.mean(x), scale=sd)
    assert stats.prediction_interval(x, 0.99) == (
        pytest.approx(low, rel=1e-12),
        pytest.approx(high, rel=1e-12),
    )
    assert stats.prediction_interval([3.0, 3.0]) == (3.0, 3.0)
    assert all(math.isnan(v) for v in stats.prediction_interval([1.0]))


def test_pooled_std_and_its_prediction_interval():
    groups = [[1.0, 1.4], [5.0, 5.2, 4.9], [9.0]]
    resid = [-0.2, 0.2, *(np.array([5.0, 5.2, 4.9]) - np.mean([5.0, 5.2, 4.9]))]
    s, df = stats.pooled_std(groups)
    assert df == 6 - 3 and s == pytest.approx(math.sqrt(np.sum(np.square(resid)) / 3), rel=1e-12)
    low, high = sps.t.interval(0.95, 3, loc=1.2, scale=s * math.sqrt(1 + 1 / 2))
    assert stats.prediction_interval([1.0, 1.4], 0.95, pooled=(s, df)) == (
        pytest.approx(low, rel=1e-12),
        pytest.approx(high, rel=1e-12),
    )
    assert stats.pooled_std([[1.0], [2.0]]) == (pytest.approx(math.nan, nan_ok=True), 0)


def test_pooled_relative_std_is_the_pooled_std_of_each_group_over_its_mean():
    groups = [[1.0, 1.2], [100.0, 90.0, 110.0], [0.0, 0.0]]
    cv, df = stats.pooled_relative_std(groups)
    assert (cv, df) == stats.pooled_std([[1 / 1.1, 1.2 / 1.1], [1.0, 0.9, 1.1]])
    assert df == 3
