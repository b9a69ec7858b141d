"""The importance-sampled estimate of log p(x) shared by the continuous-latent variants.

    log p(x) ≈ log (1/k) Σ_i p(x|z_i) p(z_i) / q(z_i|x),   z_i ~ q(z|x)

It is a stochastic lower bound whose expectation rises to log p(x) as k grows (Burda et al.
2016); k = 1 is the one-sample ELBO. Samples are drawn in chunks so memory stays at
chunk × batch decoded images whatever k is.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from variants.base import Posterior
from variants.losses import gaussian_log_prob, standard_normal_log_prob


def importance_sampled_log_likelihood(
    posterior: Posterior,
    log_px_given_z: Callable[[torch.Tensor], torch.Tensor],
    k: int,
    chunk: int = 64,
    log_prior: Callable[[torch.Tensor], torch.Tensor] = standard_normal_log_prob,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """log p(x) per example, shape (B,), in nats.

    `log_px_given_z` maps z of shape (m, B, d) to log p(x|z) of shape (m, B); the proposal is the
    diagonal Gaussian `posterior` (B, d); `log_prior` maps (m, B, d) to (m, B).
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    mean, logvar = posterior.mean, posterior.logvar
    std = (0.5 * logvar).exp()
    log_w = []
    for start in range(0, k, chunk):
        m = min(chunk, k - start)
        eps = torch.randn((m, *mean.shape), generator=generator, device=mean.device)
        z = mean + std * eps
        log_w.append(log_px_given_z(z) + log_prior(z) - gaussian_log_prob(z, mean, logvar))
    return torch.logsumexp(torch.cat(log_w), dim=0) - math.log(k)
