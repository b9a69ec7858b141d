"""The IWAE: its bound against the ELBO, monotonicity in k, gradients, training, KL warm-up."""

import math

import pydantic
import pytest
import torch
from torch.distributions import Bernoulli, Normal

import variants
import variants.iwae  # noqa: F401  (registers "iwae"; the registry's built-in list may not yet)
from benchmark.config import TrainConfig, load_sweep
from benchmark.data import load_dataset
from benchmark.train import train
from benchmark.trial import run_trial
from variants.architectures import ARCHITECTURES
from variants.iwae import IWAE

torch.set_num_threads(1)


def make_iwae(data, *, k=5, architecture="mlp2") -> IWAE:
    return IWAE(
        IWAE.Config(k=k), image_shape=data.image_shape, latent_dim=4, architecture=architecture
    )


@pytest.fixture(scope="module")
def sprites():
    return load_dataset("dsprites", resolution=16, n_train=512, n_test=128)


@pytest.fixture(scope="module")
def trained(sprites):
    """An IWAE (k = 5) trained briefly, with its curve of -L_k."""
    torch.manual_seed(0)
    model = make_iwae(sprites)
    curve = []
    train(
        model, sprites.x_train, TrainConfig(steps=150, batch_size=32, log_every=50), seed=0,
        on_log=lambda step, record: curve.append(record["train_loss"]),
    )  # fmt: skip
    return model.eval(), curve


def with_k(model: IWAE, data, k: int) -> IWAE:
    """The same weights with another number of importance samples."""
    other = make_iwae(data, k=k)
    other.load_state_dict(model.state_dict())
    return other.eval()


def test_registered_with_a_validated_k():
    assert variants.get("iwae") is IWAE
    assert IWAE.Config().k == 5
    with pytest.raises(pydantic.ValidationError):
        IWAE.Config(k=0)
    with pytest.raises(pydantic.ValidationError):
        IWAE.Config(beta=2.0)  # β is not an IWAE hyper-parameter


def hand_log_weights(model: IWAE, x: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """log p(x|z) + log p(z) - log q(z|x) per sample with torch.distributions, shape (k, B)."""
    post = model.encode(x)
    q = Normal(post.mean, (0.5 * post.logvar).exp())
    z = q.loc + q.scale * eps
    logits = model.decoder(z.flatten(0, 1)).unflatten(0, eps.shape[:2])
    log_px = Bernoulli(logits=logits).log_prob(x.expand_as(logits)).sum(dim=(-3, -2, -1))
    return log_px + Normal(0.0, 1.0).log_prob(z).sum(-1) - q.log_prob(z).sum(-1)


def test_with_one_sample_the_bound_is_the_elbo_on_the_same_noise(sprites):
    torch.manual_seed(0)
    model = make_iwae(sprites, k=1)
    x = sprites.x_train[:64]
    torch.manual_seed(3)
    out = model.loss(x)
    torch.manual_seed(3)
    eps = torch.randn(1, 64, 4)
    with torch.no_grad():
        elbo = hand_log_weights(model, x, eps)[0]  # the one-sample ELBO estimate, per example
    torch.testing.assert_close(out.extras["iwae_bound"], elbo.mean())
    torch.testing.assert_close(out.total, -elbo.mean())


def test_bound_and_parts_match_a_hand_computation_for_k_samples(sprites):
    torch.manual_seed(0)
    model = make_iwae(sprites, k=7)
    x = sprites.x_train[:16]
    torch.manual_seed(5)
    out = model.loss(x)
    torch.manual_seed(5)
    eps = torch.randn(7, 16, 4)
    with torch.no_grad():
        log_w = hand_log_weights(model, x, eps)
        post = model.encode(x)
        q = Normal(post.mean, (0.5 * post.logvar).exp())
        z = q.loc + q.scale * eps
        logits = model.decoder(z.flatten(0, 1)).unflatten(0, (7, 16))
        recon = -Bernoulli(logits=logits).log_prob(x.expand_as(logits)).sum(dim=(-3, -2, -1))
        kl = torch.distributions.kl_divergence(q, Normal(0.0, 1.0)).sum(-1)
    bound = torch.logsumexp(log_w, 0) - math.log(7)
    torch.testing.assert_close(out.total, -bound.mean())
    torch.testing.assert_close(out.extras["iwae_bound"], bound.mean())
    torch.testing.assert_close(out.recon, recon.mean())  # averaged over the k samples
    torch.testing.assert_close(out.kl, kl.mean())  # closed form


def test_kl_weight_scales_the_prior_ratio_and_free_bits_are_rejected(sprites):
    torch.manual_seed(0)
    model = make_iwae(sprites, k=4)
    x = sprites.x_train[:16]
    torch.manual_seed(1)
    full = model.loss(x)
    torch.manual_seed(1)
    warm = model.loss(x, kl_weight=0.25)
    torch.manual_seed(1)
    eps = torch.randn(4, 16, 4)
    with torch.no_grad():
        post = model.encode(x)
        z = post.mean + (0.5 * post.logvar).exp() * eps
        q = Normal(post.mean, (0.5 * post.logvar).exp())
        logits = model.decoder(z.flatten(0, 1)).unflatten(0, (4, 16))
        log_px = Bernoulli(logits=logits).log_prob(x.expand_as(logits)).sum(dim=(-3, -2, -1))
        ratio = Normal(0.0, 1.0).log_prob(z).sum(-1) - q.log_prob(z).sum(-1)
    weighted = torch.logsumexp(log_px + 0.25 * ratio, 0) - math.log(4)
    torch.testing.assert_close(warm.total, -weighted.mean())
    # The reported bound and the ELBO parts do not depend on the warm-up.
    torch.testing.assert_close(warm.extras["iwae_bound"], full.extras["iwae_bound"])
    torch.testing.assert_close(warm.recon, full.recon)
    torch.testing.assert_close(warm.kl, full.kl)
    assert not torch.isclose(warm.total, full.total)
    with pytest.raises(ValueError, match="free bits"):
        model.loss(x, free_bits=0.5)


def test_bound_does_not_decrease_as_k_grows(trained, sprites):
    model, _ = trained
    x = sprites.x_train[:256]
    bounds = {}
    for k in (1, 5, 50):
        same_weights = with_k(model, sprites, k)
        torch.manual_seed(11)
        with torch.no_grad():
            draws = [same_weights.loss(x).extras["iwae_bound"] for _ in range(4)]
        bounds[k] = torch.stack(draws).mean().item()
    assert bounds[1] <= bounds[5] <= bounds[50], bounds
    # The gaps are real, not noise: a nat or more each on this model.
    assert bounds[5] - bounds[1] > 1.0 and bounds[50] - bounds[5] > 0.5, bounds


def test_gradient_flows_and_one_step_changes_the_parameters(sprites):
    torch.manual_seed(0)
    model = make_iwae(sprites, k=5)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    out = model.loss(sprites.x_train[:32])
    out.total.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name
    optimizer.step()
    for name, p in model.named_parameters():
        assert not torch.equal(p, before[name]), name


def test_short_training_reduces_the_negative_bound(trained):
    _, curve = trained
    assert len(curve) == 3
    assert curve[-1] < 0.8 * curve[0]


def test_bound_is_above_the_elbo_on_average(trained, sprites):
    model, _ = trained
    torch.manual_seed(2)
    with torch.no_grad():
        outs = [model.loss(sprites.x_test) for _ in range(5)]
    bound = torch.stack([out.extras["iwae_bound"] for out in outs]).mean()
    elbo = torch.stack([-(out.recon + out.kl) for out in outs]).mean()
    assert bound >= elbo, (bound, elbo)


def test_log_likelihood_is_the_k_sample_bound_estimate(trained, sprites):
    model, _ = trained
    x = sprites.x_test
    torch.manual_seed(0)
    log_px = model.log_likelihood(x, k=500)
    assert log_px.shape == (x.shape[0],) and torch.isfinite(log_px).all()
    torch.manual_seed(0)
    with torch.no_grad():
        bound_5 = torch.stack([model.loss(x).extras["iwae_bound"] for _ in range(10)]).mean()
    assert log_px.mean() >= bound_5


@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
def test_every_architecture_builds_and_runs(sprites, architecture):
    torch.manual_seed(0)
    model = make_iwae(sprites, k=3, architecture=architecture)
    x = sprites.x_train[:8]
    out = model.loss(x)
    out.total.backward()
    assert torch.isfinite(out.total) and out.recon > 0 and out.kl >= 0
    assert model.reconstruct(x).shape == x.shape
    assert model.sample(8).shape == x.shape
    assert model.log_likelihood(x, k=3).shape == (8,)


def test_a_trial_reports_the_bound(tmp_path):
    smoke = load_sweep("sweeps/smoke.yaml").trials[0].config
    config = smoke.model_copy(update={"variant": "iwae", "beta": None, "params": {"k": 3}})
    result = run_trial(config, tmp_path)
    assert result["status"] == "finished"
    assert result["elbo"] == pytest.approx(-(result["recon"] + result["kl"]))
    assert result["iwae_bound"] >= result["elbo"]
    assert "k=3" in result["notes"]["objective"]
