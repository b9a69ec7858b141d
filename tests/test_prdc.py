"""Precision, recall, density and coverage through the authors' `prdc` package (Naeem et al.
2020, arXiv:2002.09797): its published sanity case. The metric inside a trial, on the same
feature net and N as FD, is tested in test_image_quality.py (which has the feature net)."""

import numpy as np
import pytest

from benchmark.metrics.prdc import precision_recall_density_coverage


def test_two_independent_standard_normal_samples_give_density_1_and_coverage_097():
    # prdc's README: two independent N(0, I) sets of 10,000 points in 1,000 dims, k = 5, give
    # density 1.0089 and coverage 0.9698 (coverage -> 1 - 2^-k = 0.969 for equal distributions).
    # Fewer points here (2,000) keep the test to about a second.
    rng = np.random.default_rng(0)
    real = rng.standard_normal((2000, 1000))
    fake = rng.standard_normal((2000, 1000))
    scores = precision_recall_density_coverage(real, fake, nearest_k=5)
    assert scores["density"] == pytest.approx(1.0, abs=0.05)
    assert scores["coverage"] == pytest.approx(0.97, abs=0.015)
    # A shifted set is far from the real one: every score drops.
    far = precision_recall_density_coverage(real, fake + 3.0, nearest_k=5)
    assert far["coverage"] < 0.1 and far["density"] < 0.1 and far["precision"] < 0.1


def test_too_few_points_for_k_is_an_error():
    with pytest.raises(ValueError, match="N=6 is too few for k=5"):
        precision_recall_density_coverage(np.zeros((6, 3)), np.zeros((10, 3)), nearest_k=5)
