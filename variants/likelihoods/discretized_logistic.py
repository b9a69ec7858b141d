"""The discretised logistic decoder for 8-bit images (Salimans et al. 2017, PixelCNN++,
arXiv 1701.05517; used for the VQ-VAE paper's bits/dim, arXiv 1711.00937).

Pixels are the 256 levels x = k/255. Each pixel has a logistic with location μ and scale
s = exp(log s) (the decoder gives both: 2 parameters per pixel, as channel blocks [μ | log s]);
level k gets the logistic's mass on [x − h, x + h] with h = 1/510, and the end levels take the
tails, (−∞, h] and [1 − h, ∞). So the 256 probabilities of a pixel sum to 1 and
−log p(x|z) summed over pixels, divided by D·log 2, is bits/dim comparable with published
discrete numbers (e.g. CIFAR-10).

The interior mass is computed as σ(a) − σ(b) = σ(a)·σ(−b)·(1 − e^(b−a)) in log space, which is
exact where the PixelCNN++ code switches to a midpoint approximation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from variants.likelihoods.base import EIGHT_BIT, Likelihood

LEVELS = 256
HALF_BIN = 0.5 / (LEVELS - 1)
# log s is kept above this: a scale far below one bin only makes the NLL of an off-by-one
# level overflow, and the PixelCNN++ code clamps at the same value.
MIN_LOG_SCALE = -7.0


class DiscretizedLogistic(Likelihood):
    """The discretised logistic on 256 levels (Salimans et al. 2017, PixelCNN++, arXiv:1701.05517).

    Two parameters per pixel (μ, log s), laid out as channel blocks (..., 2C, H, W); a normalised
    probability mass on 8-bit data, so bits/dim compare with the literature.
    """

    name = "discretized_logistic"
    params_per_pixel = 2
    support = EIGHT_BIT
    description = "discretised logistic on 256 levels (PixelCNN++), nats; bits/dim comparable"

    @staticmethod
    def split(params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(μ, log s), each (..., C, H, W), from the decoder output (..., 2C, H, W)."""
        mu, log_s = params.chunk(2, dim=-3)
        return mu, log_s.clamp(min=MIN_LOG_SCALE)

    def log_prob_pixels(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """log P(x) per pixel, shape (..., C, H, W); x must be on the 1/255 grid."""
        mu, log_s = self.split(params)
        inv_s = torch.exp(-log_s)
        a = (x + HALF_BIN - mu) * inv_s  # upper bin edge, standardised
        b = (x - HALF_BIN - mu) * inv_s  # lower bin edge
        log_cdf_a = -F.softplus(-a)  # log σ(a)
        log_sf_b = -F.softplus(b)  # log (1 − σ(b))
        interior = log_cdf_a + log_sf_b + torch.log(-torch.expm1(b - a))
        bottom = x < HALF_BIN  # level 0 takes (−∞, h]
        top = x > 1.0 - HALF_BIN  # level 255 takes [1 − h, ∞)
        return torch.where(bottom, log_cdf_a, torch.where(top, log_sf_b, interior))

    def nll(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """−log P(x) summed over (C, H, W), nats; x on the 1/255 grid. (..., C, H, W) → (...,)."""
        return -self.sum_pixels(self.log_prob_pixels(params, x))

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        """E[x] exactly: 1 − (1/255)·Σ_{k=1}^{255} σ((b_k − μ)/s) over the inner bin edges b_k
        (summation by parts), accumulated one edge at a time to keep memory at one image."""
        mu, log_s = self.split(params)
        inv_s = torch.exp(-log_s)
        total = torch.zeros_like(mu)
        for k in range(1, LEVELS):
            edge = (k - 0.5) / (LEVELS - 1)
            total += torch.sigmoid((edge - mu) * inv_s)
        return 1.0 - total / (LEVELS - 1)

    def sample(
        self, params: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """A logistic draw μ + s·logit(u), rounded to the nearest level and clipped to [0, 1]."""
        mu, log_s = self.split(params)
        u = torch.rand(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        u = u.clamp(1e-6, 1 - 1e-6)
        x = mu + log_s.exp() * (torch.log(u) - torch.log1p(-u))
        return (x * (LEVELS - 1)).round().clamp(0, LEVELS - 1) / (LEVELS - 1)

    @staticmethod
    def data_problem(x: torch.Tensor) -> str | None:
        """Why `x` is not 8-bit data on the 1/255 grid, or None."""
        scaled = x * (LEVELS - 1)
        off = (scaled - scaled.round()).abs().max().item() if x.numel() else 0.0
        if x.numel() and (x.min() < 0 or x.max() > 1 or off > 1e-3):
            return (
                "discretized_logistic needs 8-bit pixels k/255 in [0, 1]; this data is not on "
                f"that grid (max distance {off:.3g} levels)"
            )
        return None
