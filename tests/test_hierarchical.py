"""The hierarchical (Ladder) VAE: per-level KLs, the precision-weighted merge, the loss
decomposition, training, importance-sampled log p(x), sampling, architectures and depths."""

import math

import pydantic
import pytest
import torch
from torch.distributions import Normal, kl_divergence

import variants
import variants.hierarchical  # noqa: F401  (registers "hierarchical"; the registry adds it later)
from benchmark.config import ConfigError, TrainConfig, load_sweep
from benchmark.data import load_dataset
from benchmark.train import kl_weight, train
from benchmark.trial import run_trial
from variants.catalog import HierarchicalConfig
from variants.hierarchical import HierarchicalVAE, precision_weighted
from variants.losses import bernoulli_nll, diagonal_gaussian_kl

torch.set_num_threads(1)

SMOKE = "sweeps/smoke.yaml"


@pytest.fixture(scope="module")
def data():
    return load_dataset("dsprites", resolution=16, n_train=512, n_test=128)


def make(data, architecture="mlp2", lower_dims=(16,), latent_dim=4, **params) -> HierarchicalVAE:
    torch.manual_seed(0)
    config = HierarchicalConfig(lower_dims=list(lower_dims), **params)
    return HierarchicalVAE(
        config, image_shape=data.image_shape, latent_dim=latent_dim, architecture=architecture
    )


def mean_elbo(model, x, draws=100) -> float:
    """The batch-mean ELBO averaged over many noise draws (β = 1 parts: -(recon + kl))."""
    with torch.no_grad():
        return -sum((o.recon + o.kl).item() for o in (model.loss(x) for _ in range(draws))) / draws


@pytest.fixture(scope="module")
def trained(data):
    """200 steps with the variant's default KL warm-up; the ELBO on test images before and after."""
    model = make(data)
    x = data.x_test[:64]
    model.eval()
    before = mean_elbo(model, x, draws=20)
    model.train()
    fit = train(model, data.x_train, TrainConfig(steps=200, batch_size=32, log_every=50), seed=0)
    model.eval()
    return model, fit, before, x


def test_config_defaults_registration_and_validation():
    c = HierarchicalConfig()
    assert (c.beta, c.lower_dims, c.hidden) == (1.0, [16], 256)
    assert variants.get("hierarchical") is HierarchicalVAE
    assert HierarchicalVAE.default_kl_warmup_steps == 1000
    assert HierarchicalVAE.representation == "posterior mean of the top level"
    for bad in ({"lower_dims": []}, {"lower_dims": [8, 0]}, {"beta": 0}, {"hiden": 64}):
        with pytest.raises(pydantic.ValidationError):
            HierarchicalConfig(**bad)
    with pytest.raises(ConfigError, match="params.lower_dims"):
        load_sweep(SMOKE, overrides=["variant=hierarchical", "params.lower_dims=[]"])


@pytest.mark.parametrize("lower_dims", [(16,), (16, 8)])
def test_level_kls_match_torch_distributions(data, lower_dims):
    model = make(data, lower_dims=lower_dims)
    x = data.x_train[:32]
    torch.manual_seed(1)
    levels = model.infer(x)
    assert [lv.z.shape[-1] for lv in levels] == [*lower_dims, 4]
    for i, level in enumerate(levels):
        q = Normal(level.q_mean, (0.5 * level.q_logvar).exp())
        if i == len(levels) - 1:
            assert level.p_mean is None  # the top's prior is N(0, I)
            p = Normal(torch.zeros_like(level.q_mean), torch.ones_like(level.q_mean))
        else:
            p = Normal(level.p_mean, (0.5 * level.p_logvar).exp())
        expected = kl_divergence(q, p)
        assert expected.sum() > 0
        torch.testing.assert_close(level.kl_per_dim(), expected, rtol=1e-5, atol=1e-5)
    # The loss draws the same noise in the same order, so its extras are these levels' KLs.
    torch.manual_seed(1)
    out = model.loss(x)
    assert sorted(out.extras) == [f"kl_level_{i}" for i in range(1, len(levels) + 1)]
    for i, level in enumerate(levels, start=1):
        torch.testing.assert_close(out.extras[f"kl_level_{i}"], level.kl_per_dim().sum(-1).mean())


def test_diagonal_gaussian_kl_over_a_wide_range_of_parameters():
    g = torch.Generator().manual_seed(0)
    qm, pm = torch.randn(2, 50, 6, generator=g) * 3
    qv, pv = torch.rand(2, 50, 6, generator=g) * 16 - 8
    expected = kl_divergence(Normal(qm, (0.5 * qv).exp()), Normal(pm, (0.5 * pv).exp()))
    torch.testing.assert_close(diagonal_gaussian_kl(qm, qv, pm, pv), expected, rtol=1e-5, atol=1e-5)
    assert diagonal_gaussian_kl(qm, qv, qm, qv).abs().max() < 1e-6


def test_precision_weighted_merge_matches_hand_computation():
    # μ̂ = 1, σ̂² = 1 and μ_p = 3, σ_p² = 3: σ_q² = 1 / (1 + 1/3) = 0.75, μ_q = (1 + 3/3)·0.75.
    mean, logvar = precision_weighted(
        torch.tensor([1.0]), torch.tensor([0.0]), torch.tensor([3.0]), torch.tensor([math.log(3)])
    )
    torch.testing.assert_close(mean, torch.tensor([1.5]))
    torch.testing.assert_close(logvar.exp(), torch.tensor([0.75]))
    # Against the textbook formula on random inputs, and symmetric in its two arguments.
    g = torch.Generator().manual_seed(0)
    ma, mb = torch.randn(2, 40, 5, generator=g)
    va, vb = torch.rand(2, 40, 5, generator=g) * 4 + 0.05
    var = 1 / (1 / va + 1 / vb)
    mean, logvar = precision_weighted(ma, va.log(), mb, vb.log())
    torch.testing.assert_close(logvar.exp(), var)
    torch.testing.assert_close(mean, (ma / va + mb / vb) * var)
    mean2, logvar2 = precision_weighted(mb, vb.log(), ma, va.log())
    torch.testing.assert_close((mean2, logvar2), (mean, logvar))
    # Extreme confidence on one side: finite, and the confident side wins.
    mean, logvar = precision_weighted(
        torch.tensor([2.0]), torch.tensor([-60.0]), torch.tensor([-5.0]), torch.tensor([60.0])
    )
    assert torch.isfinite(mean).all() and torch.isfinite(logvar).all()
    torch.testing.assert_close(mean, torch.tensor([2.0]))
    torch.testing.assert_close(logvar, torch.tensor([-60.0]))


@pytest.mark.parametrize("lower_dims", [(16,), (16, 8)])
def test_model_merges_bottom_up_and_prior_by_precision(data, lower_dims):
    model = make(data, lower_dims=lower_dims)
    x = data.x_train[:16]
    with torch.no_grad():
        up = model.bottom_up(x)
        levels = model.infer(x, stochastic=False)
    top_mean, top_logvar = up[-1]
    torch.testing.assert_close(levels[-1].q_mean, top_mean)
    torch.testing.assert_close(levels[-1].q_logvar, top_logvar)
    for level, (up_mean, up_logvar) in zip(levels[:-1], up[:-1], strict=True):
        q_mean, q_logvar = precision_weighted(up_mean, up_logvar, level.p_mean, level.p_logvar)
        torch.testing.assert_close(level.q_mean, q_mean)
        torch.testing.assert_close(level.q_logvar, q_logvar)
        # The posterior is more precise than either of its two sources.
        assert (level.q_logvar <= torch.minimum(up_logvar, level.p_logvar) + 1e-6).all()
    # Deterministic inference takes each level's posterior mean as its z.
    for level in levels:
        torch.testing.assert_close(level.z, level.q_mean)


def test_loss_decomposes_as_documented(data):
    model = make(data, lower_dims=(16, 8), beta=2.0)
    x = data.x_train[:32]
    torch.manual_seed(3)
    out = model.loss(x, kl_weight=0.3)
    torch.manual_seed(3)
    levels = model.infer(x)
    recon = bernoulli_nll(model.decoder(levels[0].z), x)
    torch.testing.assert_close(out.recon, recon.mean())
    assert out.recon > 0 and out.kl > 0
    torch.testing.assert_close(out.kl, sum(out.extras.values()))
    torch.testing.assert_close(out.total, out.recon + 2.0 * 0.3 * out.kl)
    # kl_weight and β enter only `total`: recon and kl are the ELBO's parts.
    torch.manual_seed(3)
    other = model.loss(x, kl_weight=1.0)
    torch.testing.assert_close((other.recon, other.kl), (out.recon, out.kl))
    torch.testing.assert_close(other.total, other.recon + 2.0 * other.kl)
    # Free bits clamp each level's batch-mean KL per dim from below.
    torch.manual_seed(3)
    fb = model.loss(x, kl_weight=0.3, free_bits=0.5)
    clamped = sum(lv.kl_per_dim().mean(0).clamp(min=0.5).sum() for lv in levels)
    torch.testing.assert_close(fb.total, recon.mean() + 2.0 * 0.3 * clamped)
    torch.testing.assert_close(fb.kl, out.kl)  # the reported KL is never clamped
    assert fb.total > out.total


def test_short_training_with_default_warmup_improves_the_elbo(trained):
    model, fit, before, x = trained
    assert fit.history[-1]["kl_weight"] == kl_weight(199, 1000) == pytest.approx(0.2)
    losses = [r["train_loss"] for r in fit.history]
    assert losses[-1] < 0.8 * losses[0]
    after = mean_elbo(model, x, draws=20)
    assert after > before + 50  # -ELBO ~180 nats at init, ~35 after 200 steps


def test_importance_sampled_log_likelihood_bounds(trained):
    model, _, _, x = trained
    torch.manual_seed(0)
    log_px = model.log_likelihood(x, k=500)
    assert log_px.shape == (x.shape[0],) and torch.isfinite(log_px).all()
    assert (log_px < 0).all()
    elbo = mean_elbo(model, x, draws=100)
    assert log_px.mean().item() >= elbo
    # With k = 1 the estimator is the one-sample ELBO: unbiased for it on average, which checks
    # that log w carries every prior and posterior term of the hierarchy.
    k1 = torch.stack([model.log_likelihood(x, k=1) for _ in range(100)]).mean().item()
    assert k1 == pytest.approx(elbo, abs=0.3)
    with pytest.raises(ValueError):
        model.log_likelihood(x, k=0)


def test_sample_reconstruct_and_encode(data):
    model = make(data, lower_dims=(16, 8)).eval()
    s = model.sample(10, generator=torch.Generator().manual_seed(0))
    assert s.shape == (10, *data.image_shape)
    assert s.min() >= 0 and s.max() <= 1
    again = model.sample(10, generator=torch.Generator().manual_seed(0))
    other = model.sample(10, generator=torch.Generator().manual_seed(1))
    assert torch.equal(s, again) and not torch.equal(s, other)
    x = data.x_test[:8]
    r = model.reconstruct(x)
    assert r.shape == x.shape and r.min() >= 0 and r.max() <= 1
    assert torch.equal(r, model.reconstruct(x))
    post = model.encode(x)
    assert post.mean.shape == post.logvar.shape == (8, 4)  # the top level, not z_1
    torch.testing.assert_close(post.mean, model.bottom_up(x)[-1][0])


@pytest.mark.parametrize("architecture", ["mlp2", "conv4"])
@pytest.mark.parametrize("lower_dims", [(16,), (16, 8)])
def test_architectures_and_depths(data, architecture, lower_dims):
    model = make(data, architecture=architecture, lower_dims=lower_dims, hidden=64)
    x = data.x_train[:16]
    out = model.loss(x)
    assert torch.isfinite(out.total)
    assert len(out.extras) == len(lower_dims) + 1
    out.total.backward()
    unused = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum()]
    assert not unused
    model.eval()
    assert model.reconstruct(x).shape == x.shape
    assert model.sample(4).shape == (4, *data.image_shape)
    log_px = model.log_likelihood(x, k=3)
    assert log_px.shape == (16,) and torch.isfinite(log_px).all()


def test_run_trial_reports_per_level_kl_and_nll(tmp_path):
    sweep = load_sweep(
        SMOKE,
        overrides=[
            "variant=hierarchical",
            "params.lower_dims=[8, 6]",
            "params.hidden=64",
            "train.kl_warmup_steps=0",
            "eval.metrics=[mse, kl, elbo, nll, active_units]",
            "eval.nll_k=20",
            "eval.nll_points=64",
        ],
    )
    result = run_trial(sweep.trials[0].config, tmp_path)
    assert result["status"] == "finished"
    levels = [result[f"kl_level_{i}"] for i in (1, 2, 3)]
    assert result["kl"] == pytest.approx(sum(levels), rel=1e-5)
    assert result["nll"] > 0 and result["nll_k"] == 20
    assert result["notes"]["representation"] == "posterior mean of the top level"
    assert (tmp_path / "samples.png").exists()
