"""VQ-VAE: quantiser, straight-through gradients, loss parts, EMA codebook, dead-code restart,
code statistics, the learned autoregressive prior and one end-to-end trial."""

import math

import pydantic
import pytest
import torch
import torch.nn.functional as F

import variants.vqvae  # noqa: F401  (registers "vqvae"; the registry's import is the integrator's)
from benchmark.config import ConfigError, TrainConfig, load_sweep
from benchmark.data import load_dataset
from benchmark.paths import REPO
from benchmark.train import train
from benchmark.trial import run_trial
from variants.vq_prior import MADE, CausalTransformer, fit_prior, grid_nll, sample_grids
from variants.vqvae import VQVAE, codebook_stats

torch.set_num_threads(1)

SMOKE = REPO / "sweeps" / "smoke.yaml"
P, K, D = 3, 5, 2  # positions, codes, code dim of the small hand-checked model
SHAPE = (1, 8, 8)


def make(latent_dim: int = P, image_shape=SHAPE, architecture: str = "mlp2", **params) -> VQVAE:
    params = {"codebook_size": K, "code_dim": D, **params}
    return VQVAE(
        VQVAE.Config(**params),
        image_shape=image_shape,
        latent_dim=latent_dim,
        architecture=architecture,
    )


def images(n: int = 16, shape=SHAPE, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand(n, *shape, generator=gen) > 0.5).float()


def spread_codebook(model: VQVAE, far: int | None = None) -> None:
    """Codes spread over the encoder outputs' range, so that several of them get used; code
    `far` is put where it is nearest to nothing."""
    with torch.no_grad():
        z = model.encode_grid(images(64)).reshape(-1, D)
        model.codebook.copy_(z[torch.linspace(0, z.shape[0] - 1, K).long()])
        if far is not None:
            model.codebook[far] = 1e3
        if model.config.ema:  # keep the moving averages consistent: e_i = m_i / N_i
            model.ema_sum.copy_(model.codebook * model.ema_count[:, None])


# --- the quantiser and the loss ---------------------------------------------------------------


def test_quantise_picks_the_nearest_code():
    torch.manual_seed(0)
    model = make()
    with torch.no_grad():
        model.codebook.copy_(torch.randn(K, D))
    z = torch.randn(7, P, D)
    brute = torch.cdist(z.reshape(-1, D), model.codebook.detach()).argmin(1).view(7, P)
    assert torch.equal(model.quantise(z), brute)
    near = model.codebook.detach()[[4, 0, 2]] + 1e-3  # each row a hair away from its code
    assert model.quantise(near[None]).tolist() == [[4, 0, 2]]


def test_straight_through_gives_the_encoder_gradients_of_the_reconstruction():
    torch.manual_seed(0)
    model = make()
    x = images()
    out = model.loss(x)
    out.recon.backward()
    assert model.encoder[1].weight.grad.abs().sum() > 0
    # Forward, the decoder sees the codes themselves; backward, recon skips the codebook.
    assert model.codebook.grad is None
    assert torch.allclose(out.recon, F.binary_cross_entropy_with_logits(
        model.decode_codes(model.codes(x)), x, reduction="sum") / x.shape[0])  # fmt: skip


def test_loss_parts_match_a_hand_computation():
    torch.manual_seed(0)
    model = make(commitment_cost=0.3)
    spread_codebook(model)
    x = images(12)
    out = model.eval().loss(x)

    z_e = model.encoder(x).view(12, P, D).detach()
    idx = torch.cdist(z_e.reshape(-1, D), model.codebook.detach()).argmin(1).view(12, P)
    e = model.codebook.detach()[idx]
    logits = model.decoder(e.flatten(1))
    recon = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum((1, 2, 3))
    sq = (z_e - e).pow(2).sum((1, 2))  # summed over positions and code dims, per example
    assert torch.allclose(out.recon, recon.mean(), rtol=1e-5)
    assert torch.allclose(out.extras["vq_loss"], (1 + 0.3) * sq.mean(), rtol=1e-5)
    assert torch.allclose(out.total, recon.mean() + 1.3 * sq.mean(), rtol=1e-5)
    assert out.kl.item() == pytest.approx(P * math.log(K))
    assert len(idx.unique()) > 1

    # Only the codebook term (weight 1) moves the codes: d/de of mean_b Σ ||sg[z_e] - e||².
    out.extras["vq_loss"].backward()
    expected = torch.zeros(K, D).index_add_(0, idx.flatten(), 2 * (e - z_e).reshape(-1, D)) / 12
    assert torch.allclose(model.codebook.grad, expected, atol=1e-6)


def test_loss_ignores_kl_weight_and_free_bits():
    model = make().eval()
    x = images()
    a, b = model.loss(x), model.loss(x, kl_weight=0.1, free_bits=2.0)
    assert torch.equal(a.total, b.total) and torch.equal(a.kl, b.kl)


def test_ema_moves_used_codes_toward_their_assigned_mean_and_drops_the_codebook_term():
    torch.manual_seed(0)
    model = make(ema=True, ema_decay=0.5, dead_code_threshold=0.0, commitment_cost=0.25)
    assert "codebook" not in dict(model.named_parameters())
    spread_codebook(model, far=K - 1)
    x = images(32)
    z_e = model.encode_grid(x).detach().reshape(-1, D)
    idx = model.codes(x).flatten()
    old = model.codebook.clone()

    frozen = model.eval().loss(x)  # evaluation never moves the codebook
    assert torch.equal(model.codebook, old)
    e = old[idx]
    assert torch.allclose(frozen.extras["vq_loss"], 0.25 * (z_e - e).pow(2).sum() / 32, rtol=1e-5)

    model.train().loss(x)
    used = idx.unique()
    assert 1 < len(used) < K  # both kinds of code are checked below
    for code in range(K):
        assigned = z_e[idx == code]
        if code in used:
            mean = assigned.mean(0)
            assert (model.codebook[code] - mean).norm() < 0.9 * (old[code] - mean).norm()
            # N = ½·1 + ½·n and m = ½·e + ½·Σz (Laplace smoothing is ~1e-5 here)
            n = len(assigned)
            expected = (0.5 * old[code] + 0.5 * assigned.sum(0)) / (0.5 + 0.5 * n)
            assert torch.allclose(model.codebook[code], expected, rtol=1e-3, atol=1e-5)
        else:
            assert torch.allclose(model.codebook[code], old[code], rtol=1e-3)


@pytest.mark.parametrize("ema", [False, True])
def test_a_dead_code_is_restarted_on_an_encoder_output(ema):
    def run(threshold: float) -> tuple[VQVAE, torch.Tensor]:
        torch.manual_seed(0)
        # usage of the unused code 0 becomes 0.1·1 + 0.9·0, below a threshold of 0.5
        model = make(ema=ema, ema_decay=0.1, dead_code_threshold=threshold)
        spread_codebook(model, far=0)
        x = images(32)
        z_e = model.encode_grid(x).detach().reshape(-1, D)
        model.train().loss(x)
        return model, z_e

    model, z_e = run(threshold=0.5)
    assert torch.cdist(model.codebook[:1].detach(), z_e).min() < 1e-6
    assert model.usage[0] == 1.0  # a fresh code's grace period
    again, _ = run(threshold=0.5)
    assert torch.equal(model.codebook, again.codebook)  # deterministic given the seed
    off, _ = run(threshold=0.0)
    assert torch.allclose(off.codebook[0], torch.full((D,), 1e3), rtol=1e-3)
    assert off.usage[0] < 0.5


def test_usage_and_perplexity_of_known_assignments():
    usage, perplexity = codebook_stats(torch.zeros(4, 3, dtype=torch.long), 8)
    assert usage.item() == pytest.approx(1 / 8) and perplexity.item() == pytest.approx(1.0)
    usage, perplexity = codebook_stats(torch.arange(4).repeat(3), 8)
    assert usage.item() == pytest.approx(0.5) and perplexity.item() == pytest.approx(4.0)

    model = make().eval()
    with torch.no_grad():
        model.codebook.fill_(1e3)
        model.codebook[2] = 0.0  # the only code anywhere near the encoder outputs
    extras = model.loss(images()).extras
    assert extras["codebook_usage"].item() == pytest.approx(1 / K)
    assert extras["perplexity"].item() == pytest.approx(1.0)


# --- the learned prior ------------------------------------------------------------------------


PRIORS = {
    "transformer": lambda p, k: CausalTransformer(p, k, width=32, layers=2, heads=4),
    "made": lambda p, k: MADE(p, k, width=64, layers=2),
}


@pytest.mark.parametrize("kind", PRIORS)
def test_prior_row_i_depends_only_on_earlier_positions(kind):
    torch.manual_seed(0)
    prior = PRIORS[kind](5, 7).eval()
    codes = torch.randint(0, 7, (4, 5))
    for j in range(5):
        changed = codes.clone()
        changed[:, j] = (changed[:, j] + 1) % 7
        a, b = prior(codes), prior(changed)
        assert torch.allclose(a[:, : j + 1], b[:, : j + 1], atol=1e-6)
        if j < 4:
            assert not torch.allclose(a[:, j + 1 :], b[:, j + 1 :])


@pytest.mark.parametrize("kind", PRIORS)
def test_prior_fitted_to_two_grids_samples_only_those_grids(kind):
    torch.manual_seed(0)
    grids = torch.tensor([[3, 1, 4, 1, 5, 9], [2, 7, 1, 8, 2, 8]])
    codes = grids.repeat(32, 1)
    prior = PRIORS[kind](6, 10)
    fit = fit_prior(prior, codes, steps=300, batch_size=32, lr=1e-2, seed=0)
    assert fit.nll < math.log(2) + 0.1  # a fair coin between the two grids
    drawn = sample_grids(prior, 64, device=torch.device("cpu"),
                         generator=torch.Generator().manual_seed(0))  # fmt: skip
    matches = (drawn[:, None, :] == grids[None]).all(-1)
    assert matches.any(1).all() and matches.any(0).all()


def test_sample_before_after_training_raises():
    model = make()
    with pytest.raises(RuntimeError, match="after_training"):
        model.sample(4)


def test_encode_and_log_likelihood_say_they_do_not_apply():
    model = make()
    assert VQVAE.continuous_latents is False
    with pytest.raises(NotImplementedError, match="deterministic"):
        model.encode(images())
    with pytest.raises(NotImplementedError, match="discrete-latent VQ-VAE"):
        model.log_likelihood(images())
    notes = model.notes()
    assert f"{P * math.log(K):.3f}" in notes["kl"] and "not applicable" in notes["mig"]


def test_prior_on_one_repeated_image_samples_its_reconstruction():
    torch.manual_seed(0)
    model = make(prior_steps=60, prior_width=32, prior_batch_size=16)
    spread_codebook(model)
    x = images(1).repeat(40, 1, 1, 1)
    result = model.after_training(x, None, seed=0)
    assert result["prior_nll"] < 0.05 * P * math.log(K) and result["prior_seconds"] > 0
    assert model.training  # the hook restores the mode it found
    model.eval()
    samples = model.sample(8, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(samples, model.reconstruct(x[:1]).expand(8, -1, -1, -1), atol=1e-6)

    # The fitted prior travels with the state dict.
    clone = make(prior_steps=60, prior_width=32, prior_batch_size=16)
    clone.load_state_dict(model.state_dict())
    assert torch.equal(clone.eval().sample(8), samples)


def test_prior_nll_on_a_trained_models_codes_falls_well_below_uniform():
    torch.manual_seed(0)
    data = load_dataset("digits", n_test=297)
    p, k = 6, 16
    model = make(latent_dim=p, codebook_size=k, code_dim=8, prior_steps=300, prior_lr=3e-3)
    train(model, data.x_train, TrainConfig(steps=300, batch_size=64), seed=0)
    codes = model.codes(data.x_train)
    assert len(codes.unique(dim=0)) > 10  # a real distribution of grids, not one grid
    with torch.no_grad():
        before = grid_nll(model.prior_net.eval(), codes).mean().item()
    assert before == pytest.approx(p * math.log(k), rel=0.15)
    result = model.after_training(data.x_train, data.y_train, seed=0)
    assert result["prior_nll"] < 0.5 * p * math.log(k)
    a = model.sample(6, generator=torch.Generator().manual_seed(3))
    b = model.sample(6, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and a.shape == (6, *data.image_shape)
    assert a.min() >= 0 and a.max() <= 1


# --- config and integration -------------------------------------------------------------------


def test_config_rejects_beta_and_unknown_keys():
    for bad in ({"beta": 2.0}, {"codebook_sizee": 8}, {"prior_width": 30, "prior_heads": 4}):
        with pytest.raises(pydantic.ValidationError):
            VQVAE.Config.model_validate(bad)
    with pytest.raises(ConfigError, match="beta"):
        load_sweep(SMOKE, overrides=["variant=vqvae"])  # the smoke grid sweeps β


def test_conv4_architecture_trains_one_step():
    torch.manual_seed(0)
    model = make(latent_dim=4, image_shape=(1, 16, 16), architecture="conv4")
    x = images(8, (1, 16, 16))
    model.loss(x).total.backward()
    assert model.encoder[0].weight.grad.abs().sum() > 0
    assert model.reconstruct(x).shape == x.shape


def test_smoke_trial_end_to_end_is_reproducible(tmp_path):
    sweep = load_sweep(
        SMOKE,
        overrides=["variant=vqvae", "grid.beta=[null]", "train.steps=240", "train.log_every=60",
                   "params.prior_steps=100", "params.prior_width=32"],
    )  # fmt: skip
    (trial,) = sweep.trials
    seen = []
    result = run_trial(trial.config, tmp_path / "a", report=seen.append)
    assert result["status"] == "finished"
    losses = [r["train_loss"] for r in seen]
    recons = [r["train_recon"] for r in seen]
    assert len(losses) == 4 and losses[-1] < 0.5 * losses[0] and recons[-1] < recons[0]
    latent_dim = trial.config.latent_dim
    assert result["kl"] == pytest.approx(latent_dim * math.log(64))
    assert result["elbo"] == pytest.approx(-(result["recon"] + result["kl"]))
    assert 0 < result["codebook_usage"] <= 1 and result["perplexity"] >= 1
    assert 0 < result["prior_nll"] < latent_dim * math.log(64)
    assert "mig" not in result and "not applicable" in result["notes"]["mig"]

    again = run_trial(trial.config, tmp_path / "b")
    for key in ("recon", "mse", "vq_loss", "perplexity", "prior_nll"):
        assert again[key] == result[key], key
    samples = [(tmp_path / run / "samples.png").read_bytes() for run in ("a", "b")]
    assert samples[0] == samples[1]
