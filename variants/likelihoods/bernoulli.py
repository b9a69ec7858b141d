"""The Bernoulli decoder: today's default, with logits from the decoder.

−log p(x|z) = BCE-with-logits summed over pixels (`variants.losses.bernoulli_nll`, unchanged, so
every default number stays bitwise the same). It is a normalised probability mass only on
binary pixels; on grey pixels in [0, 1] it is the cross-entropy, not a density (Loaiza-Ganem &
Cunningham 2019, arXiv 1907.06845, section 2).
"""

from __future__ import annotations

import torch

from variants.likelihoods.base import BINARY, Likelihood
from variants.losses import bernoulli_nll


class Bernoulli(Likelihood):
    """Bernoulli p(x|z) with logits from the decoder (one parameter per pixel); the default."""

    name = "bernoulli"
    support = BINARY
    description = "Bernoulli (BCE-with-logits summed over pixels), nats"

    def nll(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """BCE-with-logits summed over (C, H, W), nats: (..., C, H, W) → (...,)."""
        return bernoulli_nll(params, x)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        """sigmoid(logits), shape (..., C, H, W), in [0, 1]."""
        return torch.sigmoid(params)

    def sample(
        self, params: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Binary pixels x ~ Bernoulli(sigmoid(logits)) from `generator`."""
        return torch.bernoulli(torch.sigmoid(params), generator=generator)
