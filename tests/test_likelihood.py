"""Importance-sampled log p(x) against a model whose likelihood is known in closed form.

Probabilistic PCA as a linear-Gaussian VAE: p(z) = N(0, I_d), p(x|z) = N(Wz + mu, s^2 I_D), so
log p(x) = log N(x; mu, W W^T + s^2 I). The true posterior is N(m(x), s^2 M^-1) with
M = W^T W + s^2 I; the encoder is the best diagonal Gaussian proposal for importance sampling:
the exact mean with the posterior's marginal variances. The ELBO is then strictly below
log p(x), and the IS estimate must close the gap as k grows.
"""

import math

import pytest
import torch
from torch import distributions as D

from variants.base import Posterior
from variants.likelihood import importance_sampled_log_likelihood


@pytest.fixture(autouse=True)
def float64():
    # Closed-form comparisons to a few thousandths of a nat need double precision.
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(before)


DIM_Z, DIM_X, NOISE = 3, 8, 0.5


def _ppca(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    # Correlated columns: the true posterior covariance is clearly not diagonal.
    mix = torch.tensor([[1.0, 0.5, 0.3], [0.0, 0.8, 0.3], [0.0, 0.0, 0.8]], dtype=torch.float64)
    W = torch.randn(DIM_X, DIM_Z, generator=g, dtype=torch.float64) @ mix
    mu = torch.randn(DIM_X, generator=g, dtype=torch.float64)
    marginal = D.MultivariateNormal(mu, W @ W.T + NOISE**2 * torch.eye(DIM_X))
    x = marginal.sample((64,))
    M = W.T @ W + NOISE**2 * torch.eye(DIM_Z)
    mean = torch.linalg.solve(M, W.T @ (x - mu).T).T
    # The diagonal of the true posterior covariance: the best diagonal proposal for importance
    # sampling (it matches the marginals, so it is never narrower than the posterior).
    logvar = torch.log(torch.diagonal(NOISE**2 * torch.linalg.inv(M))).expand_as(mean)
    return W, mu, x, marginal.log_prob(x), Posterior(mean, logvar)


def _log_px_given_z(W, mu, x):
    def f(z):  # z: (m, B, d) -> (m, B)
        return D.Normal(z @ W.T + mu, NOISE).log_prob(x).sum(-1)

    return f


def _elbo(W, mu, x, post):
    var = post.logvar.exp()
    resid = x - post.mean @ W.T - mu
    expected_ll = -0.5 * DIM_X * math.log(2 * math.pi * NOISE**2) - (
        resid.pow(2).sum(-1) + (var * W.pow(2).sum(0)).sum(-1)
    ) / (2 * NOISE**2)
    kl = D.kl_divergence(D.Normal(post.mean, var.sqrt()), D.Normal(0.0, 1.0)).sum(-1)
    return expected_ll - kl


def test_is_estimate_matches_the_closed_form_likelihood():
    W, mu, x, exact, post = _ppca()
    torch.manual_seed(0)
    est = importance_sampled_log_likelihood(post, _log_px_given_z(W, mu, x), k=5000)
    elbo = _elbo(W, mu, x, post)
    assert est.shape == exact.shape == (64,)
    # The diagonal posterior is not exact: the ELBO sits clearly below log p(x) ...
    assert (elbo < exact - 1e-3).all()
    assert (exact - elbo).mean() > 0.3
    # ... and the IS estimate with k = 5000 closes that gap: no example is off by more than a few
    # hundredths of a nat, and on average the estimate is unbiased to a few thousandths.
    torch.testing.assert_close(est, exact, atol=0.06, rtol=0)
    assert (est - exact).mean().abs() < 0.005
    assert (est - exact).abs().mean() < 0.02


def test_more_samples_tighten_the_bound():
    W, mu, x, exact, post = _ppca(1)
    f = _log_px_given_z(W, mu, x)
    gaps = []
    for k in (1, 10, 1000):
        torch.manual_seed(0)
        runs = torch.stack([importance_sampled_log_likelihood(post, f, k=k) for _ in range(32)])
        gaps.append((exact - runs.mean(0)).mean().item())
    # k = 1 is the one-sample ELBO: its mean gap is the ELBO's gap; the gap shrinks with k.
    elbo_gap = (exact - _elbo(W, mu, x, post)).mean().item()
    assert abs(gaps[0] - elbo_gap) < 0.05 * elbo_gap
    assert gaps[0] > gaps[1] > gaps[2] >= -0.01


def test_the_exact_posterior_makes_every_weight_equal():
    W, mu, x, _, _ = _ppca(2)
    # A diagonal proposal is the exact posterior when M is diagonal: W with orthogonal columns.
    Q, _ = torch.linalg.qr(W)
    W2 = Q * torch.tensor([2.0, 1.0, 0.5])
    marginal = D.MultivariateNormal(mu, W2 @ W2.T + NOISE**2 * torch.eye(DIM_X))
    M2 = W2.T @ W2 + NOISE**2 * torch.eye(DIM_Z)
    assert torch.allclose(M2, torch.diag(torch.diagonal(M2)))
    mean2 = torch.linalg.solve(M2, W2.T @ (x - mu).T).T
    post = Posterior(mean2, torch.log(NOISE**2 / torch.diagonal(M2)).expand_as(mean2))
    est = importance_sampled_log_likelihood(post, _log_px_given_z(W2, mu, x), k=3)
    # Every importance weight equals p(x): even k = 3 is exact.
    torch.testing.assert_close(est, marginal.log_prob(x), atol=1e-9, rtol=0)


def test_is_estimate_with_the_gaussian_likelihood_matches_ppca():
    """The same check through the Gaussian decoder likelihood's NLL (`gaussian_nll`, which
    `variants.likelihoods.Gaussian` uses), with x as (1, 2, 4) images: its constant −D/2·log(2πσ²)
    is what makes the IS estimate land on the closed-form log p(x) of the marginal density."""
    from variants.likelihoods.gaussian import gaussian_nll

    W, mu, x, exact, post = _ppca(0)
    images = x.view(-1, 1, 2, 4)
    log_sigma = torch.tensor(math.log(NOISE))

    def log_px_given_z(z):  # (m, B, d) -> (m, B)
        return -gaussian_nll((z @ W.T + mu).view(*z.shape[:2], 1, 2, 4), log_sigma, images)

    z = torch.randn(3, *post.mean.shape, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(log_px_given_z(z), _log_px_given_z(W, mu, x)(z))
    torch.manual_seed(0)
    est = importance_sampled_log_likelihood(post, log_px_given_z, k=5000)
    torch.testing.assert_close(est, exact, atol=0.06, rtol=0)
    assert (est - exact).mean().abs() < 0.005
    # Without the constant the "likelihood" would be off by D/2·log(2πσ²) nats per example.
    assert abs(0.5 * DIM_X * math.log(2 * math.pi * NOISE**2)) > 1.0
