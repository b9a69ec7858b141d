"""The decoder likelihoods (`variants.likelihoods`): each log p(x|z) against torch.distributions or
a direct sum, their means and samples, learned σ (Dai & Wipf 2019), every variant with every
likelihood, and the default Bernoulli numbers pinned to the pre-change formula."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import distributions as D

import variants
from benchmark.config import TrainConfig
from benchmark.train import train
from variants.likelihoods import LIKELIHOODS, build
from variants.likelihoods.continuous_bernoulli import cb_mean, log_normaliser
from variants.likelihoods.discretized_logistic import LEVELS, DiscretizedLogistic

SHAPE = (2, 3, 3)  # (C, H, W): tiny, with more than one channel so channel blocks matter


def _params(likelihood, batch=5, seed=0, scale=2.0):
    g = torch.Generator().manual_seed(seed)
    return scale * torch.randn(batch, *likelihood.param_shape(SHAPE), generator=g)


def test_bernoulli_is_the_pre_change_bce_bitwise_and_torch_bernoulli():
    lik = build("bernoulli")
    logits = _params(lik)
    grey = torch.rand(5, *SHAPE, generator=torch.Generator().manual_seed(1))
    # The pre-change formula of every variant's recon term, bit for bit.
    before = F.binary_cross_entropy_with_logits(logits, grey, reduction="none").flatten(1).sum(1)
    assert torch.equal(lik.nll(logits, grey), before)
    assert torch.equal(lik.mean(logits), torch.sigmoid(logits))
    binary = torch.bernoulli(grey, generator=torch.Generator().manual_seed(2))
    ref = D.Bernoulli(logits=logits).log_prob(binary).flatten(1).sum(1)
    torch.testing.assert_close(-lik.nll(logits, binary), ref)


@pytest.mark.parametrize("sigma", [0.05, 0.7, 2.0])
def test_gaussian_fixed_sigma_is_a_normal_density(sigma):
    lik = build("gaussian", {"sigma": sigma})
    params = _params(lik)
    x = torch.rand(5, *SHAPE, generator=torch.Generator().manual_seed(1))
    ref = D.Normal(torch.sigmoid(params), sigma).log_prob(x).flatten(1).sum(1)
    torch.testing.assert_close(-lik.nll(params, x), ref)
    # The summed MSE of the reference documents is this NLL at σ² = ½ up to D/2·log π.
    if sigma == 0.7:
        half = build("gaussian", {"sigma": math.sqrt(0.5)})
        mse = (x - half.mean(params)).pow(2).flatten(1).sum(1)
        const = 0.5 * math.prod(SHAPE) * math.log(math.pi)
        torch.testing.assert_close(half.nll(params, x), mse + const)


def test_gaussian_learned_sigma_is_a_parameter_and_a_normal_density():
    lik = build("gaussian", {"sigma": "learned"})
    assert [n for n, _ in lik.named_parameters()] == ["log_sigma"]
    assert lik.log_sigma.item() == 0.0  # σ = 1 at the start
    with torch.no_grad():
        lik.log_sigma.fill_(math.log(0.3))
    params = _params(lik)
    x = torch.rand(5, *SHAPE, generator=torch.Generator().manual_seed(1))
    ref = D.Normal(torch.sigmoid(params), 0.3).log_prob(x).flatten(1).sum(1)
    torch.testing.assert_close(-lik.nll(params, x), ref)
    assert lik.metrics() == {"likelihood_sigma": pytest.approx(0.3)}
    # A fixed σ adds nothing to the state dict: checkpoints of default models are unchanged.
    assert not build("gaussian", {"sigma": 0.1}).state_dict()


def test_continuous_bernoulli_matches_torch_and_integrates_to_one():
    lik = build("continuous_bernoulli")
    logits = _params(lik, scale=4.0)
    x = torch.rand(5, *SHAPE, generator=torch.Generator().manual_seed(1))
    ref = D.ContinuousBernoulli(logits=logits).log_prob(x).flatten(1).sum(1)
    torch.testing.assert_close(-lik.nll(logits, x), ref, rtol=1e-5, atol=1e-4)
    # In float64: torch's own float32 mean is the less accurate one at large |l|.
    l64 = logits.double()
    torch.testing.assert_close(lik.mean(l64), D.ContinuousBernoulli(logits=l64).mean)
    # Normalised on [0, 1]: the trapezoid rule over a fine grid, one pixel at a time.
    grid = torch.linspace(0, 1, 20001, dtype=torch.float64)
    for lg in (-30.0, -3.0, -1e-4, 0.0, 0.05, 2.0, 30.0):
        logit = torch.full_like(grid, lg)
        density = (-F.binary_cross_entropy_with_logits(logit, grid, reduction="none")
                   + log_normaliser(logit)).exp()  # fmt: skip
        assert torch.trapezoid(density, grid).item() == pytest.approx(1.0, abs=1e-6)
        mean = torch.trapezoid(grid * density, grid).item()
        got = cb_mean(torch.tensor(lg, dtype=torch.float64)).item()
        assert got == pytest.approx(mean, abs=1e-6)


def test_continuous_bernoulli_has_finite_gradients_at_zero_logits():
    logits = torch.tensor([0.0, 1e-5, -1e-5, 0.5], requires_grad=True)
    (log_normaliser(logits).sum() + cb_mean(logits).sum()).backward()
    assert torch.isfinite(logits.grad).all()


def test_discretized_logistic_probabilities_of_a_pixel_sum_to_one():
    lik = DiscretizedLogistic()
    g = torch.Generator().manual_seed(0)
    mu = torch.rand(7, generator=g, dtype=torch.float64) * 1.4 - 0.2  # also beyond [0, 1]
    log_s = torch.tensor([-6.0, -4.0, -3.0, -2.0, -1.0, 0.0, 1.0], dtype=torch.float64)
    # One "image" per (pixel, level): (7 pixels, 256 levels) as (7, 256, 1, 1, 1).
    params = torch.stack([mu, log_s], -1)[:, None, :, None, None].expand(7, LEVELS, 2, 1, 1)
    x = (torch.arange(LEVELS, dtype=torch.float64) / (LEVELS - 1))[None, :, None, None, None]
    log_p = -lik.nll(params, x.expand(7, LEVELS, 1, 1, 1))  # (7, 256)
    torch.testing.assert_close(log_p.exp().sum(1), torch.ones(7, dtype=torch.float64))
    # Each level's mass is the logistic CDF's difference over its bin (direct, not in logs).
    cdf = torch.sigmoid
    edges = (torch.arange(1, LEVELS, dtype=torch.float64) - 0.5) / (LEVELS - 1)
    inner = cdf((edges[None] - mu[:, None]) / log_s.exp()[:, None])  # (7, 255)
    direct = torch.diff(torch.cat([torch.zeros(7, 1), inner, torch.ones(7, 1)], 1), dim=1)
    torch.testing.assert_close(log_p.exp(), direct, atol=1e-12, rtol=1e-6)
    # mean() is the exact E[x] = Σ_k x_k P(k).
    exact = (direct * x.flatten()[None]).sum(1)
    torch.testing.assert_close(lik.mean(params[:, 0]).flatten(), exact)


@pytest.mark.parametrize(
    "name,params",
    [("bernoulli", {}), ("gaussian", {"sigma": 0.2}), ("continuous_bernoulli", {}),
     ("discretized_logistic", {})],
)  # fmt: skip
def test_samples_average_to_the_mean(name, params):
    lik = build(name, params)
    p = _params(lik, batch=1, scale=1.0).expand(20000, *lik.param_shape(SHAPE))
    draws = lik.sample(p, generator=torch.Generator().manual_seed(0))
    assert draws.shape == (20000, *SHAPE)
    if name != "gaussian":
        assert 0 <= draws.min() and draws.max() <= 1
    torch.testing.assert_close(draws.mean(0), lik.mean(p[:1])[0], atol=0.02, rtol=0)


@pytest.fixture
def one_thread():
    # 300 small steps: two intra-op threads only wait on each other on a busy 2-core machine.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_learned_sigma_follows_the_reconstruction_rmse_dai_wipf(one_thread):
    """Dai & Wipf 2019 (arXiv 1903.05789): with γ = σ² learned, σ² settles at the mean squared
    reconstruction error, which the optimum of D/2·log σ² + SSE/(2σ²) is; it falls far below its
    initial 1 as the decoder fits the data."""
    g = torch.Generator().manual_seed(0)
    z = torch.randn(512, 2, generator=g)
    mix = torch.randn(2, 16, generator=g)
    x = (torch.sigmoid(z @ mix) + 0.03 * torch.randn(512, 16, generator=g)).view(512, 1, 4, 4)
    torch.manual_seed(0)
    model = variants.get("vae")(
        variants.get("vae").Config(), image_shape=(1, 4, 4), latent_dim=2, architecture="mlp2",
        likelihood=build("gaussian", {"sigma": "learned"}),
    )  # fmt: skip
    assert model.likelihood.log_sigma.item() == 0.0  # σ = 1 at the start
    train(model, x, TrainConfig(steps=300, batch_size=64, lr=1e-2, log_every=300), seed=0)
    sigma = model.likelihood.log_sigma.exp().item()
    with torch.no_grad():
        post = model.encode(x)
        zs = post.mean + torch.randn_like(post.mean) * (0.5 * post.logvar).exp()
        rmse = (x - model.likelihood.mean(model.decoder(zs))).pow(2).mean().sqrt().item()
    # Measured: σ 0.170 against an RMSE of 0.168 (σ was 0.39 after 100 steps, 0.24 after 200).
    assert sigma < 0.25
    assert sigma == pytest.approx(rmse, rel=0.15)


LIKELIHOOD_CHOICES = [
    ("bernoulli", {}), ("gaussian", {"sigma": 0.1}), ("gaussian", {"sigma": "learned"}),
    ("continuous_bernoulli", {}), ("discretized_logistic", {}),
]  # fmt: skip


@pytest.mark.parametrize("variant", ["vae", "beta_vae", "cvae", "iwae", "vqvae", "hierarchical"])
@pytest.mark.parametrize("name,params", LIKELIHOOD_CHOICES)
def test_every_variant_trains_with_every_likelihood(variant, name, params):
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (32, 1, 4, 4), generator=g).float() / 255  # 8-bit pixels
    y = torch.randint(0, 3, (32,), generator=g)
    cls = variants.get(variant)
    extra = {"prior_steps": 2, "prior_width": 16} if variant == "vqvae" else {}
    torch.manual_seed(0)
    model = cls(
        cls.Config(**extra), image_shape=(1, 4, 4), latent_dim=2, architecture="mlp2",
        num_classes=3, likelihood=build(name, params),
    )  # fmt: skip
    fit = train(model, x, TrainConfig(steps=3, batch_size=8, log_every=1), seed=0, y=y)
    assert all(math.isfinite(h["train_loss"]) for h in fit.history)
    model.eval()
    assert model.reconstruct(x[:4], y[:4]).shape == (4, 1, 4, 4)
    model.after_training(x, y, seed=0)
    assert model.sample(4, y[:4], generator=torch.Generator().manual_seed(0)).shape == (4, 1, 4, 4)
    if model.continuous_latents:
        assert torch.isfinite(model.log_likelihood(x[:4], y[:4], k=3)).all()


def test_default_vae_loss_is_the_pre_change_formula_bitwise():
    cls = variants.get("vae")
    torch.manual_seed(0)
    model = cls(cls.Config(), image_shape=(1, 4, 4), latent_dim=2, architecture="mlp2")
    x = torch.rand(8, 1, 4, 4, generator=torch.Generator().manual_seed(1))
    # No likelihood parameters or buffers: the state dict is what it was.
    assert not [k for k in model.state_dict() if k.startswith("likelihood")]
    torch.manual_seed(5)
    out = model.loss(x)
    torch.manual_seed(5)
    post = model.encode(x)
    z = post.mean + torch.randn_like(post.mean) * (0.5 * post.logvar).exp()
    bce = F.binary_cross_entropy_with_logits(model.decoder(z), x, reduction="none")
    recon = bce.flatten(start_dim=-3).sum(-1)
    kl = 0.5 * (post.mean.pow(2) + post.logvar.exp() - 1.0 - post.logvar)
    assert torch.equal(out.recon, recon.mean())
    assert torch.equal(out.total, (recon + kl.sum(-1)).mean())


def test_every_registered_likelihood_is_covered():
    assert sorted(LIKELIHOODS) == sorted({name for name, _ in LIKELIHOOD_CHOICES})


def test_discretized_logistic_rejects_data_off_the_8bit_grid():
    assert DiscretizedLogistic.data_problem(torch.tensor([0.0, 1 / 255, 1.0])) is None
    problem = DiscretizedLogistic.data_problem(torch.tensor([0.0, 1 / 16]))
    assert problem and "8-bit" in problem
