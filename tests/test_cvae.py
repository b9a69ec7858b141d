"""The conditional VAE: loss convention, label conditioning, sampling, training, log p(x|y)."""

import pydantic
import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Bernoulli, Normal, kl_divergence

import variants
import variants.cvae  # noqa: F401  (registers "cvae"; the registry's built-in list may not yet)
from benchmark.config import TrainConfig, load_sweep
from benchmark.data import load_dataset
from benchmark.train import train
from benchmark.trial import run_trial
from variants.architectures import ARCHITECTURES
from variants.cvae import CVAE

torch.set_num_threads(1)


def make_cvae(data, *, latent_dim=4, architecture="mlp2", **config) -> CVAE:
    return CVAE(
        CVAE.Config(**config),
        image_shape=data.image_shape,
        latent_dim=latent_dim,
        architecture=architecture,
        num_classes=data.num_classes,
    )


@pytest.fixture(scope="module")
def sprites():
    return load_dataset("dsprites", resolution=16, n_train=512, n_test=128)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", n_test=297)


@pytest.fixture(scope="module")
def trained_on_digits(digits):
    """A CVAE trained briefly on the 8x8 digits, whose 10 labels change the images strongly."""
    torch.manual_seed(0)
    model = make_cvae(digits)
    train(
        model, digits.x_train, TrainConfig(steps=150, batch_size=64, log_every=50),
        seed=0, y=digits.y_train,
    )  # fmt: skip
    return model.eval()


def test_registered_and_needs_labels():
    assert variants.get("cvae") is CVAE
    assert CVAE.needs_labels and CVAE.continuous_latents
    assert CVAE.Config().beta == 1.0
    with pytest.raises(pydantic.ValidationError):
        CVAE.Config(beta=0)
    with pytest.raises(pydantic.ValidationError):
        CVAE.Config(hidden=3)


@pytest.mark.parametrize(("beta", "kl_weight", "free_bits"), [(1.0, 1.0, 0.0), (2.0, 0.5, 0.3)])
def test_loss_matches_a_hand_computation_on_the_same_noise(sprites, beta, kl_weight, free_bits):
    torch.manual_seed(0)
    model = make_cvae(sprites, beta=beta)
    x, y = sprites.x_train[:32], sprites.y_train[:32]
    torch.manual_seed(7)
    out = model.loss(x, y, kl_weight=kl_weight, free_bits=free_bits)

    torch.manual_seed(7)
    eps = torch.randn(32, 4)
    with torch.no_grad():
        post = model.encode(x, y)
        q = Normal(post.mean, (0.5 * post.logvar).exp())
        z = q.loc + q.scale * eps
        logits = model.decoder(torch.cat([z, F.one_hot(y, 3).float()], dim=1))
        recon = -Bernoulli(logits=logits).log_prob(x).sum(dim=(1, 2, 3))
        kl_per_dim = kl_divergence(q, Normal(0.0, 1.0))
    kl_term = kl_per_dim.mean(0).clamp(min=free_bits).sum()
    expected_total = recon.mean() + beta * kl_weight * kl_term

    torch.testing.assert_close(out.recon, recon.mean())
    torch.testing.assert_close(out.kl, kl_per_dim.sum(1).mean())  # β = 1, no free bits in kl
    torch.testing.assert_close(out.total, expected_total)
    assert out.extras == {}


def test_missing_or_invalid_labels_raise(sprites):
    model = make_cvae(sprites)
    x, y = sprites.x_train[:8], sprites.y_train[:8]
    for call in (model.loss, model.encode, model.reconstruct, model.log_likelihood):
        with pytest.raises(ValueError, match="needs the class labels"):
            call(x)
        with pytest.raises(ValueError, match=r"in \[0, 3\)"):
            call(x, torch.full((8,), 3))
        with pytest.raises(ValueError, match=r"in \[0, 3\)"):
            call(x, torch.full((8,), -1))
        with pytest.raises(ValueError, match="shape"):
            call(x, y[:4])
        with pytest.raises(ValueError, match="integer"):
            call(x, y.float())
    with pytest.raises(ValueError, match="labelled dataset"):
        CVAE(CVAE.Config(), image_shape=(1, 16, 16), latent_dim=4, architecture="mlp2")


def test_changing_the_label_changes_posterior_and_reconstruction(trained_on_digits, digits):
    x, y = digits.x_test, digits.y_test
    wrong = (y + 1) % digits.num_classes
    model = trained_on_digits
    assert not torch.allclose(model.encode(x, y).mean, model.encode(x, wrong).mean)
    right_err = (model.reconstruct(x, y) - x).pow(2).mean()
    wrong_err = (model.reconstruct(x, wrong) - x).pow(2).mean()
    # The decoder relies on the label: a wrong one reconstructs a different digit.
    assert wrong_err > 1.5 * right_err


def test_samples_follow_their_labels(trained_on_digits, digits):
    model, classes = trained_on_digits, digits.num_classes
    labels = torch.arange(classes).repeat_interleave(100)
    samples = model.sample(len(labels), labels, generator=torch.Generator().manual_seed(0))
    assert samples.shape == (len(labels), *digits.image_shape)
    assert samples.min() >= 0 and samples.max() <= 1
    # Same noise, different labels: different images.
    same_z = model.sample(
        len(labels), (labels + 1) % classes, generator=torch.Generator().manual_seed(0)
    )
    assert (samples - same_z).abs().mean() > 0.05
    # Each label's mean sample is nearest to the mean training image of that very class.
    data_means = torch.stack([digits.x_train[digits.y_train == c].mean(0) for c in range(classes)])
    sample_means = torch.stack([samples[labels == c].mean(0) for c in range(classes)])
    nearest = torch.cdist(sample_means.flatten(1), data_means.flatten(1)).argmin(1)
    assert nearest.tolist() == list(range(classes))


def test_unlabelled_sampling_draws_labels_from_the_generator(trained_on_digits):
    model = trained_on_digits
    a = model.sample(64, generator=torch.Generator().manual_seed(1))
    b = model.sample(64, generator=torch.Generator().manual_seed(1))
    c = model.sample(64, generator=torch.Generator().manual_seed(2))
    assert a.shape == (64, 1, 8, 8)
    assert torch.equal(a, b) and not torch.equal(a, c)
    # The labels come first from the generator, then the noise.
    gen = torch.Generator().manual_seed(1)
    labels = torch.randint(10, (64,), generator=gen)
    z = torch.randn(64, 4, generator=gen)
    expected = torch.sigmoid(model.decoder(torch.cat([z, F.one_hot(labels, 10).float()], 1)))
    torch.testing.assert_close(a, expected)


def test_short_training_reduces_the_loss(sprites):
    torch.manual_seed(0)
    model = make_cvae(sprites)
    seen = []
    train(
        model, sprites.x_train, TrainConfig(steps=150, batch_size=32, log_every=50), seed=0,
        y=sprites.y_train, on_log=lambda step, record: seen.append(record["train_loss"]),
    )  # fmt: skip
    assert len(seen) == 3
    assert seen[-1] < 0.8 * seen[0]


def test_importance_sampled_log_likelihood_is_above_the_elbo(trained_on_digits, digits):
    model = trained_on_digits
    x, y = digits.x_test, digits.y_test
    torch.manual_seed(0)
    log_px = model.log_likelihood(x, y, k=500)
    assert log_px.shape == (x.shape[0],) and torch.isfinite(log_px).all()
    with torch.no_grad():
        elbo = torch.stack([-(out.recon + out.kl) for out in (model.loss(x, y) for _ in range(20))])
    assert log_px.mean() >= elbo.mean()
    assert log_px.mean() < 0


@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
def test_every_architecture_builds_and_runs(sprites, architecture):
    torch.manual_seed(0)
    model = make_cvae(sprites, architecture=architecture)
    x, y = sprites.x_train[:8], sprites.y_train[:8]
    out = model.loss(x, y)
    out.total.backward()
    assert torch.isfinite(out.total) and out.recon > 0 and out.kl >= 0
    assert model.encode(x, y).mean.shape == (8, 4)
    assert model.reconstruct(x, y).shape == x.shape
    assert model.sample(8, y).shape == x.shape
    assert model.log_likelihood(x, y, k=3).shape == (8,)


def test_a_trial_runs_end_to_end_with_labels(tmp_path):
    smoke = load_sweep("sweeps/smoke.yaml").trials[0].config
    config = smoke.model_copy(
        update={
            "variant": "cvae",
            "beta": None,
            "eval": smoke.eval.model_copy(
                update={"metrics": [*smoke.eval.metrics, "nll"], "nll_k": 10, "nll_points": 50}
            ),
        }
    )
    result = run_trial(config, tmp_path)
    assert result["status"] == "finished"
    assert result["elbo"] == pytest.approx(-(result["recon"] + result["kl"]))
    assert 0 <= result["mig"] <= 1
    assert result["nll"] > 0
    assert "conditional log p(x|y)" in result["notes"]["likelihood"]
    assert (tmp_path / "samples.png").is_file()
