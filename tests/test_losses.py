"""The loss conventions of docs/design.md, checked against torch.distributions."""

import math

import pytest
import torch
from torch import distributions as D

import variants
from variants.likelihood import chunked_log_mean_exp
from variants.losses import (
    bernoulli_nll,
    diagonal_gaussian_kl,
    gaussian_kl,
    gaussian_log_prob,
    kl_with_free_bits,
    log_mean_exp,
    reparameterise,
)


def test_kl_matches_torch_distributions():
    g = torch.Generator().manual_seed(0)
    mean, logvar = torch.randn(16, 7, generator=g) * 2, torch.randn(16, 7, generator=g)
    q = D.Normal(mean, (0.5 * logvar).exp())
    p = D.Normal(torch.zeros_like(mean), torch.ones_like(mean))
    expected = D.kl_divergence(q, p)
    torch.testing.assert_close(gaussian_kl(mean, logvar), expected, rtol=1e-6, atol=1e-6)


def test_bernoulli_nll_is_summed_over_pixels_not_averaged():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(5, 1, 8, 8, generator=g)
    x = torch.rand(5, 1, 8, 8, generator=g).round()
    expected = -D.Bernoulli(logits=logits).log_prob(x).sum(dim=(1, 2, 3))
    got = bernoulli_nll(logits, x)
    assert got.shape == (5,)
    torch.testing.assert_close(got, expected)
    # Averaging over pixels instead would divide by 64 and silently rescale β.
    assert torch.all(got > 10 * expected / 64)


def test_gaussian_log_prob_matches_torch():
    g = torch.Generator().manual_seed(2)
    z, mean, logvar = (torch.randn(4, 3, generator=g) for _ in range(3))
    expected = D.Normal(mean, (0.5 * logvar).exp()).log_prob(z).sum(-1)
    torch.testing.assert_close(gaussian_log_prob(z, mean, logvar), expected)


def test_free_bits_clamps_the_batch_mean_per_dim():
    kl = torch.tensor([[0.1, 2.0], [0.3, 4.0]])  # dim 0 mean 0.2, dim 1 mean 3.0
    assert kl_with_free_bits(kl, 0.0).mean().item() == pytest.approx(3.2)
    assert kl_with_free_bits(kl, 0.5).mean().item() == pytest.approx(0.5 + 3.0)
    kl.requires_grad_(True)
    kl_with_free_bits(kl, 0.5).mean().backward()
    # Below the threshold a dim gets no gradient; above it, the usual 1/B.
    torch.testing.assert_close(kl.grad, torch.tensor([[0.0, 0.5], [0.0, 0.5]]))


def _model(name: str, **params) -> variants.base.Variant:
    cls = variants.get(name)
    return cls(cls.Config(**params), image_shape=(1, 16, 16), latent_dim=3, architecture="mlp2")


@pytest.mark.parametrize("beta", [0.5, 4.0])
def test_vae_loss_is_recon_plus_beta_kl_batch_mean(beta):
    torch.manual_seed(0)
    model = _model("beta_vae", beta=beta)
    x = (torch.rand(6, 1, 16, 16) > 0.5).float()
    torch.manual_seed(3)
    out = model.loss(x)
    # Recompute by hand with the same noise.
    torch.manual_seed(3)
    post = model.encode(x)
    z = post.mean + torch.randn_like(post.mean) * (0.5 * post.logvar).exp()
    recon = -D.Bernoulli(logits=model.decoder(z)).log_prob(x).sum(dim=(1, 2, 3))
    q = D.Normal(post.mean, (0.5 * post.logvar).exp())
    kl = D.kl_divergence(q, D.Normal(0.0, 1.0)).sum(-1)
    torch.testing.assert_close(out.recon, recon.mean())
    torch.testing.assert_close(out.kl, kl.mean())
    torch.testing.assert_close(out.total, (recon + beta * kl).mean())


def test_kl_weight_scales_only_the_kl_term():
    torch.manual_seed(0)
    model = _model("beta_vae", beta=2.0)
    x = (torch.rand(4, 1, 16, 16) > 0.5).float()
    torch.manual_seed(5)
    half = model.loss(x, kl_weight=0.5)
    torch.manual_seed(5)
    full = model.loss(x)
    torch.testing.assert_close(half.total, half.recon + 0.5 * 2.0 * half.kl)
    torch.testing.assert_close(full.total, full.recon + 2.0 * full.kl)


def test_standard_vae_has_beta_one():
    assert _model("vae").beta == 1.0
    with pytest.raises(Exception, match="beta"):
        variants.get("vae").Config(beta=2.0)


def test_log_likelihood_bounds_the_elbo_and_is_finite():
    torch.manual_seed(0)
    model = _model("vae")
    x = (torch.rand(8, 1, 16, 16) > 0.5).float()
    torch.manual_seed(1)
    ll = model.log_likelihood(x, k=500)
    with torch.no_grad():
        elbo = torch.stack([-(o.recon + o.kl) for o in (model.loss(x) for _ in range(200))])
    assert ll.shape == (8,) and torch.isfinite(ll).all()
    # log p(x) >= ELBO; the k=500 estimate sits above the (well-averaged) ELBO.
    assert ll.mean() >= elbo.mean() - 0.05
    # Binary pixels: p(x) <= 1.
    assert (ll < 0).all() and math.isfinite(ll.mean().item())


def test_reparameterise_draws_what_the_inline_formulas_drew():
    # The variants used to write the draw out; the shared helper must consume the same RNG
    # stream and give the same bits, also for a non-contiguous mean (a chunk of the encoder).
    torch.manual_seed(7)
    mean, logvar = torch.randn(5, 6).chunk(2, dim=-1)
    torch.manual_seed(11)
    inline = mean + torch.randn_like(mean) * (0.5 * logvar).exp()
    torch.manual_seed(11)
    assert torch.equal(reparameterise(mean, logvar), inline)
    g = torch.Generator().manual_seed(3)
    inline_k = mean + (0.5 * logvar).exp() * torch.randn((4, *mean.shape), generator=g)
    g.manual_seed(3)
    drawn = reparameterise(mean, logvar, sample_shape=(4,), generator=g)
    assert drawn.shape == (4, 5, 3) and torch.equal(drawn, inline_k)


def test_reparameterised_draws_have_the_posterior_moments():
    mean, logvar = torch.tensor([1.5, -2.0]), torch.tensor([0.0, math.log(0.25)])
    g = torch.Generator().manual_seed(0)
    z = reparameterise(mean, logvar, sample_shape=(200_000,), generator=g)
    torch.testing.assert_close(z.mean(0), mean, atol=0.01, rtol=0)
    torch.testing.assert_close(z.std(0), torch.tensor([1.0, 0.5]), atol=0.01, rtol=0)


def test_log_mean_exp_is_stable_and_exact():
    w = torch.tensor([[0.0, 1000.0], [math.log(3.0), 1000.0 + math.log(3.0)]])
    got = log_mean_exp(w, dim=0)
    torch.testing.assert_close(got, torch.tensor([math.log(2.0), 1000.0 + math.log(2.0)]))


def test_chunked_importance_sampling_does_not_depend_on_the_chunk():
    log_w = torch.randn(10, 3, generator=torch.Generator().manual_seed(0)) * 5

    def estimate(chunk: int) -> torch.Tensor:
        taken = 0

        def next_weights(m: int) -> torch.Tensor:
            nonlocal taken
            taken += m
            return log_w[taken - m : taken]

        return chunked_log_mean_exp(next_weights, 10, chunk)

    expected = torch.log(torch.exp(log_w).mean(0))
    for chunk in (1, 3, 10, 64):
        torch.testing.assert_close(estimate(chunk), expected)
    with pytest.raises(ValueError, match="k must be >= 1"):
        chunked_log_mean_exp(lambda m: log_w[:m], 0)


def test_diagonal_gaussian_kl_against_a_standard_normal_is_gaussian_kl():
    g = torch.Generator().manual_seed(4)
    mean, logvar = torch.randn(8, 3, generator=g), torch.randn(8, 3, generator=g)
    zeros = torch.zeros_like(mean)
    torch.testing.assert_close(
        diagonal_gaussian_kl(mean, logvar, zeros, zeros), gaussian_kl(mean, logvar)
    )
