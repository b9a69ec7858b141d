"""Loss terms and diagonal-Gaussian building blocks shared by the variants, each written once.

Likelihood convention (docs/design.md, "Conventions"): images live in [0, 1] and are modelled by a
Bernoulli decoder that outputs logits. The reconstruction term is the negative log-likelihood
-log p(x|z) = BCE-with-logits **summed over pixels** (one number per example, in nats); the KL is
the closed-form KL(q(z|x) || N(0, I)) **summed over latent dims**. Losses are then averaged over
the batch. Never average over pixels: that divides the likelihood by D and silently multiplies
the effective β by D.

The Gaussian helpers are on every default trial's training path: their operation order and RNG
draws are pinned by `benchmark.numerics` (results/numerics.json); an algebraically equal rewrite
(e.g. `sqrt(exp(logvar))` for `exp(0.5 * logvar)`) changes the committed numbers.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

LOG_2PI = math.log(2.0 * math.pi)


def bernoulli_nll(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """-log p(x|z) per example (nats), summed over every non-batch dim. Shapes (..., C, H, W)."""
    nll = F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none")
    return nll.flatten(start_dim=-3).sum(-1)


def reparameterise(
    mean: torch.Tensor,
    logvar: torch.Tensor,
    *,
    sample_shape: tuple[int, ...] = (),
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """z = mean + ε·exp(logvar / 2), ε ~ N(0, I): a differentiable draw from N(mean, e^logvar).

    The reparameterisation trick of Kingma & Welling 2014 (arXiv:1312.6114). mean and logvar
    have one shape S (e.g. (B, d)); z has shape (*sample_shape, *S), one ε per element, drawn in
    one call from `generator` (None: torch's global generator, which training seeds and
    checkpoints) on mean's device and dtype.
    """
    eps = torch.randn(
        (*sample_shape, *mean.shape), generator=generator, device=mean.device, dtype=mean.dtype
    )
    return mean + eps * (0.5 * logvar).exp()


def gaussian_kl(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(logvar)) || N(0, 1)) per latent dim, in closed form (nats). Shape (B, d)."""
    return 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar)


def diagonal_gaussian_kl(
    q_mean: torch.Tensor, q_logvar: torch.Tensor, p_mean: torch.Tensor, p_logvar: torch.Tensor
) -> torch.Tensor:
    """KL(N(q_mean, e^q_logvar) ‖ N(p_mean, e^p_logvar)) per dim, in closed form (nats).

    All four arguments broadcast to one shape, which the result has (e.g. (B, d)). For a
    standard-normal p use `gaussian_kl` (the training path's own operation order).
    """
    return 0.5 * (
        p_logvar - q_logvar + ((q_logvar.exp() + (q_mean - p_mean).pow(2)) / p_logvar.exp()) - 1.0
    )


def kl_with_free_bits(kl_per_dim: torch.Tensor, nats_per_dim: float) -> torch.Tensor:
    """The KL term of the objective under free bits (Kingma et al. 2016, arXiv:1606.04934).

    kl_per_dim: (B, d) in nats. Each latent dim's batch-mean KL is clamped from below at
    `nats_per_dim`, so the optimiser gains nothing by pushing a dim below it; 0 disables it.
    Returns shape (B,) whose batch mean is sum_j max(mean_b KL_bj, λ).
    """
    if nats_per_dim <= 0:
        return kl_per_dim.sum(-1)
    batch_mean = kl_per_dim.mean(0)
    # The clamp acts on the batch mean; shifting every example by the same amount keeps the
    # per-example shape (B,) while making the batch mean exactly the clamped sum.
    extra = (batch_mean.clamp(min=nats_per_dim) - batch_mean).sum()
    return kl_per_dim.sum(-1) + extra


def _scaled_sq_residual(z: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    return LOG_2PI + logvar + (z - mean).pow(2) / logvar.exp()


def gaussian_log_density(z: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mean, exp(logvar)) per element (nats), all arguments broadcast together."""
    return -0.5 * _scaled_sq_residual(z, mean, logvar)


def gaussian_log_prob(z: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mean, exp(logvar)) summed over the last dim (nats): (..., d) -> (...)."""
    # Sum first, then scale: not `gaussian_log_density(...).sum(-1)`, whose rounding differs.
    return -0.5 * _scaled_sq_residual(z, mean, logvar).sum(-1)


def standard_normal_log_prob(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I) summed over the last dim (nats): (..., d) -> (...)."""
    return -0.5 * (LOG_2PI + z.pow(2)).sum(-1)


def log_mean_exp(log_w: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """log (1/k) Σ_i exp(log_w_i) over `dim` (k = its size), computed stably; that dim is removed.

    With log_w the log importance weights (k, B) it is the k-sample IWAE bound per example
    (Burda et al. 2016, arXiv:1509.00519).
    """
    return torch.logsumexp(log_w, dim=dim) - math.log(log_w.shape[dim])
