"""The importance-sampled estimate of log p(x) shared by the continuous-latent variants.

    log p(x) ≈ log (1/k) Σ_i p(x|z_i) p(z_i) / q(z_i|x),   z_i ~ q(z|x)

It is a stochastic lower bound whose expectation rises to log p(x) as k grows (Burda et al.
2016, arXiv:1509.00519); k = 1 is the one-sample ELBO. Samples are drawn in chunks so memory
stays at chunk × batch decoded images whatever k is.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from variants.base import Posterior
from variants.losses import (
    gaussian_log_prob,
    log_mean_exp,
    reparameterise,
    standard_normal_log_prob,
)


def chunked_log_mean_exp(
    log_weights: Callable[[int], torch.Tensor], k: int, chunk: int = 64
) -> torch.Tensor:
    """log (1/k) Σ_i w_i over k importance samples drawn `chunk` at a time; shape (B,), nats.

    `log_weights(m)` draws m fresh samples and returns their log weights, shape (m, B); it is
    called with m = chunk, …, chunk, remainder, in that order (so RNG draws follow that order).
    Raises ValueError if k < 1.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    log_w = [log_weights(min(chunk, k - start)) for start in range(0, k, chunk)]
    return log_mean_exp(torch.cat(log_w), dim=0)


def importance_sampled_log_likelihood(
    posterior: Posterior,
    log_px_given_z: Callable[[torch.Tensor], torch.Tensor],
    k: int,
    chunk: int = 64,
    log_prior: Callable[[torch.Tensor], torch.Tensor] = standard_normal_log_prob,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """log p(x) per example, shape (B,), in nats, with q(z|x) = `posterior` as the proposal.

    `log_px_given_z` maps z of shape (m, B, d) to log p(x|z) of shape (m, B); the proposal is the
    diagonal Gaussian `posterior` (B, d); `log_prior` maps (m, B, d) to (m, B). Draws come from
    `generator` (None: torch's global one). Raises ValueError if k < 1.
    """
    mean, logvar = posterior.mean, posterior.logvar

    def log_weights(m: int) -> torch.Tensor:
        z = reparameterise(mean, logvar, sample_shape=(m,), generator=generator)
        return log_px_given_z(z) + log_prior(z) - gaussian_log_prob(z, mean, logvar)

    return chunked_log_mean_exp(log_weights, k, chunk)
