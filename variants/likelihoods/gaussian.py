"""A Gaussian decoder with one shared σ, fixed or learned (Dai & Wipf 2019, arXiv 1903.05789).

p(x|z) = N(μ(z), σ² I) with μ = sigmoid(decoder output), so the mean image stays in [0, 1].
−log p(x|z) = Σ_pixels [(x − μ)² / (2σ²) + log σ + ½ log 2π]: the constant −D/2·log(2πσ²) is
part of the NLL, so nll and elbo are those of a true density on R^D.

- `sigma: <float>`: σ fixed. The "summed MSE" loss of the reference documents, Σ (x − μ)², is
  this NLL with σ² = ½ up to the constant D/2·log π.
- `sigma: learned`: σ = exp(log σ) is one scalar trained with the model (initialised at 1, as in
  Dai & Wipf's code). For a fixed decoder the optimum is σ² = Σ (x − μ)² / D, the per-pixel
  mean squared reconstruction error, so σ follows the reconstruction RMSE down; Dai & Wipf's γ
  is this σ² and tends to 0 as the model fits the data manifold.
"""

from __future__ import annotations

import math
from typing import Literal

import pydantic
import torch
from torch import nn

from variants.likelihoods.base import REAL, Likelihood, LikelihoodConfig

HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def gaussian_nll(mean: torch.Tensor, log_sigma: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """−log N(x; mean, σ² I) in nats, summed over (C, H, W): (..., C, H, W) → (...,).

    `log_sigma` is log σ, a scalar or broadcastable to `mean`; the constant ½ log 2π per pixel is
    included, so this is the negative log of a normalised density on R^D.
    """
    z = (x - mean) * torch.exp(-log_sigma)
    return (0.5 * z.pow(2) + log_sigma + HALF_LOG_2PI).flatten(start_dim=-3).sum(-1)


class GaussianConfig(LikelihoodConfig):
    """The Gaussian's σ: a fixed value, or 'learned' (one shared σ, Dai & Wipf 2019,
    arXiv:1903.05789)."""

    sigma: pydantic.PositiveFloat | Literal["learned"] = pydantic.Field(
        1.0, description="a standard deviation σ > 0, or 'learned' (Dai & Wipf's γ = σ²)"
    )


class Gaussian(Likelihood):
    """A Gaussian p(x|z) = N(sigmoid(decoder), σ² I), a normalised density on R^D.

    σ is fixed or learned (a shared scalar parameter trained with the model, Dai & Wipf 2019,
    arXiv:1903.05789).
    """

    name = "gaussian"
    Config = GaussianConfig
    support = REAL

    def __init__(self, config: GaussianConfig | None = None) -> None:
        super().__init__(config)
        sigma = self.config.sigma
        if sigma == "learned":
            self.log_sigma = nn.Parameter(torch.zeros(()))
        else:
            self.register_buffer("log_sigma", torch.tensor(math.log(sigma)), persistent=False)

    @property
    def learned(self) -> bool:
        """Whether σ is a learned parameter."""
        return self.config.sigma == "learned"

    def nll(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """−log N(x; sigmoid(params), σ² I) summed over (C, H, W), with its constant; nats."""
        return gaussian_nll(torch.sigmoid(params), self.log_sigma, x)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        """sigmoid(params), shape (..., C, H, W)."""
        return torch.sigmoid(params)

    def sample(
        self, params: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """x = mean + σ·ε, ε ~ N(0, I) from `generator` (not clipped to [0, 1])."""
        mean = torch.sigmoid(params)
        eps = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        return mean + self.log_sigma.exp() * eps

    def metrics(self) -> dict[str, float]:
        """{'likelihood_sigma': σ} (the learned or fixed value)."""
        return {"likelihood_sigma": self.log_sigma.detach().exp().item()}

    def describe(self) -> str:
        """One line for the tables: σ, the mean's link and the units."""
        sigma = "learned shared σ (Dai & Wipf 2019)" if self.learned else f"σ = {self.config.sigma}"
        return f"Gaussian, {sigma}, mean sigmoid(decoder), NLL with its constant, nats"
