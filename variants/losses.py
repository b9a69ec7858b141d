"""Loss terms shared by the variants, in the project's one convention.

Likelihood convention (docs/design.md, "Conventions"): images live in [0, 1] and are modelled by a
Bernoulli decoder that outputs logits. The reconstruction term is the negative log-likelihood
-log p(x|z) = BCE-with-logits **summed over pixels** (one number per example, in nats); the KL is
the closed-form KL(q(z|x) || N(0, I)) **summed over latent dims**. Losses are then averaged over
the batch. Never average over pixels: that divides the likelihood by D and silently multiplies
the effective β by D.
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


def gaussian_kl(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(logvar)) || N(0, 1)) per latent dim, in closed form (nats). Shape (B, d)."""
    return 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar)


def free_bits(kl_per_dim: torch.Tensor, nats_per_dim: float) -> torch.Tensor:
    """The KL term of the objective under free bits (Kingma et al. 2016), per example.

    Each latent dim's batch-mean KL is clamped from below at `nats_per_dim`, so the optimiser
    gains nothing by pushing a dim below it; 0 disables it. Returns shape (B,) whose batch mean is
    sum_j max(mean_b KL_bj, λ).
    """
    if nats_per_dim <= 0:
        return kl_per_dim.sum(-1)
    batch_mean = kl_per_dim.mean(0)
    # The clamp acts on the batch mean; shifting every example by the same amount keeps the
    # per-example shape (B,) while making the batch mean exactly the clamped sum.
    extra = (batch_mean.clamp(min=nats_per_dim) - batch_mean).sum()
    return kl_per_dim.sum(-1) + extra


def gaussian_log_prob(z: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mean, exp(logvar)) summed over the last dim."""
    return -0.5 * (LOG_2PI + logvar + (z - mean).pow(2) / logvar.exp()).sum(-1)


def standard_normal_log_prob(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I) summed over the last dim."""
    return -0.5 * (LOG_2PI + z.pow(2)).sum(-1)
