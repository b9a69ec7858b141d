"""The decoder likelihood p(x|z) every variant uses, behind one interface.

A likelihood turns the decoder's output — `params_per_pixel` numbers per pixel, laid out as
channel blocks of shape (..., params_per_pixel·C, H, W) — into

- `nll(params, x)`: −log p(x|z) per example in nats, **summed over pixels** (docs/design.md,
  "Conventions"), shape (...,);
- `mean(params)`: E[x|z], the image the variants return from `reconstruct` and `sample`;
- `sample(params, generator)`: a draw x ~ p(x|z).

Leading dims of `params` (importance samples, batch) broadcast against x (B, C, H, W). A
likelihood is an `nn.Module`, so that a learned parameter (the Gaussian's shared σ) is trained
with the model by the same optimiser; one without parameters adds nothing to the state dict.

`support` says on which data the density is normalised: "binary" ({0, 1}^D: Bernoulli),
"unit_interval" ([0, 1]^D: continuous Bernoulli), "real" (R^D: Gaussian) or "8bit"
({0, 1/255, ..., 1}^D: discretised logistic). `density_note` turns that into the honest reading
of nll, elbo and bits/dim for a given data set.
"""

from __future__ import annotations

from typing import ClassVar

import pydantic
import torch
from torch import nn

BINARY, UNIT_INTERVAL, REAL, EIGHT_BIT = "binary", "unit_interval", "real", "8bit"


class LikelihoodConfig(pydantic.BaseModel):
    """Base for each likelihood's own parameters; unknown keys are errors."""

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)


class Likelihood(nn.Module):
    """Base class of the decoder likelihoods. Subclasses set the class attributes and implement
    `nll`, `mean` and `sample`."""

    name: ClassVar[str] = ""
    Config: ClassVar[type[LikelihoodConfig]] = LikelihoodConfig
    params_per_pixel: ClassVar[int] = 1
    support: ClassVar[str] = BINARY
    description: ClassVar[str] = ""

    def __init__(self, config: LikelihoodConfig | None = None) -> None:
        super().__init__()
        self.config = config if config is not None else self.Config()

    def param_shape(self, image_shape: tuple[int, int, int]) -> tuple[int, int, int]:
        """The decoder's output shape for images of `image_shape` (C, H, W)."""
        c, h, w = image_shape
        return (self.params_per_pixel * c, h, w)

    def nll(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """−log p(x|z) in nats, summed over (C, H, W); params (..., P·C, H, W) → (...,)."""
        raise NotImplementedError

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        """E[x|z], shape (..., C, H, W), in [0, 1] for the bounded likelihoods."""
        raise NotImplementedError

    def sample(
        self, params: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """One draw x ~ p(x|z), shape (..., C, H, W)."""
        raise NotImplementedError

    def metrics(self) -> dict[str, float]:
        """Learned quantities of the likelihood to record after training (e.g. the σ)."""
        return {}

    def density_note(self, binary_data: bool) -> tuple[bool, str]:
        """(normalised, note): whether nll/elbo/bits-per-dim are those of a normalised density
        (or probability mass) for the data, and one sentence saying how to read them."""
        if self.support == BINARY:
            if binary_data:
                return True, "a normalised probability mass on binary pixels"
            return False, "not a normalised density for grey pixels (Bernoulli on [0, 1] data)"
        if self.support == EIGHT_BIT:
            return True, (
                "a normalised probability mass on 8-bit pixels: bits/dim comparable with "
                "published discrete (e.g. CIFAR-10) numbers"
            )
        where = "[0, 1]^D" if self.support == UNIT_INTERVAL else "R^D"
        return True, (
            f"a normalised continuous density on {where}: nats of a density (may be "
            "negative), not comparable with discrete bits/dim of 8-bit data"
        )

    def describe(self) -> str:
        """One line: which likelihood, with its parameters."""
        return self.description

    @staticmethod
    def sum_pixels(t: torch.Tensor) -> torch.Tensor:
        """Sum over the last three dims (C, H, W): per-pixel terms → one number per example."""
        return t.flatten(start_dim=-3).sum(-1)
