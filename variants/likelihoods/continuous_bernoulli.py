"""The continuous Bernoulli decoder (Loaiza-Ganem & Cunningham 2019, arXiv 1907.06845).

p(x|λ) = C(λ) λ^x (1 − λ)^(1−x) on x ∈ [0, 1], with λ = sigmoid(l) from the decoder's logits l.
The normaliser makes it a density on [0, 1]; in logits it is simply

    C = 2 artanh(1 − 2λ) / (1 − 2λ) = l / tanh(l / 2),   log C(0) = log 2,

so −log p(x|z) = BCE-with-logits(l, x) − log C, summed over pixels. E[x] = 1/(1 − e^(−l)) − 1/l,
which is not λ: `mean` returns the true mean, as the paper recommends for reconstructions.
Near l = 0 both use their Taylor series (the closed forms cancel catastrophically there).
"""

from __future__ import annotations

import math

import torch

from variants.likelihoods.base import UNIT_INTERVAL, Likelihood
from variants.losses import bernoulli_nll

LOG_2 = math.log(2.0)
# Below these |l| the Taylor series replace the closed forms; their truncation errors there are
# < l^4 · 7/1440 ≈ 5e-15 (log C) and < l^5 / 30240 ≈ 3e-10 (mean).
LOG_NORM_TAYLOR = 1e-3
MEAN_TAYLOR = 0.1


def log_normaliser(logits: torch.Tensor) -> torch.Tensor:
    """log C(λ) per pixel for λ = sigmoid(logits): log(l / tanh(l/2)), stable at l = 0."""
    small = logits.abs() < LOG_NORM_TAYLOR
    # The unused branch must not see l = 0, or its NaN gradient would leak through torch.where.
    safe = torch.where(small, torch.ones_like(logits), logits).abs()
    exact = safe.log() - torch.tanh(safe / 2).log()
    l2 = logits.pow(2)
    return torch.where(small, LOG_2 + l2 / 12 - 7 * l2.pow(2) / 1440, exact)


def cb_mean(logits: torch.Tensor) -> torch.Tensor:
    """E[x] of the continuous Bernoulli per pixel: 1/(1 − e^(−l)) − 1/l, stable at l = 0."""
    small = logits.abs() < MEAN_TAYLOR
    safe = torch.where(small, torch.ones_like(logits), logits)
    exact = -1.0 / torch.expm1(-safe) - 1.0 / safe
    taylor = 0.5 + logits / 12 - logits.pow(3) / 720
    return torch.where(small, taylor, exact)


class ContinuousBernoulli(Likelihood):
    """The continuous Bernoulli (Loaiza-Ganem & Cunningham 2019, arXiv:1907.06845).

    A normalised density on [0, 1] per pixel: the Bernoulli cross-entropy minus the log normaliser
    log C(λ); logits from the decoder (one parameter per pixel).
    """

    name = "continuous_bernoulli"
    support = UNIT_INTERVAL
    description = "continuous Bernoulli (Loaiza-Ganem & Cunningham 2019), normalised on [0, 1]"

    def nll(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """−log p(x|z) summed over (C, H, W), nats: (..., C, H, W) → (...,)."""
        return bernoulli_nll(params, x) - self.sum_pixels(log_normaliser(params))

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        """E[x|z] per pixel (`cb_mean`), shape (..., C, H, W), in [0, 1]."""
        return cb_mean(params)

    def sample(
        self, params: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Inverse-CDF draws: F⁻¹(u) = log1p(u·expm1(l)) / l, taken at −|l| (no overflow) and
        mirrored for l > 0, since CB(l) of x is CB(−l) of 1 − x."""
        u = torch.rand(params.shape, generator=generator, device=params.device, dtype=params.dtype)
        neg = -params.abs()
        small = neg > -1e-6
        safe = torch.where(small, -torch.ones_like(neg), neg)
        x = torch.where(small, u, torch.log1p(u * torch.expm1(safe)) / safe)
        return torch.where(params > 0, 1.0 - x, x).clamp(0.0, 1.0)
