"""The contract every variant keeps (docs/design.md, "The variant interface").

A variant is an `nn.Module` with a pydantic `Config` (its own hyper-parameters, validated with
unknown keys rejected) and these methods, all on batches of images in [0, 1] shaped (B, C, H, W):

- `loss(x, y=None, *, kl_weight=1.0, free_bits=0.0) -> LossOutput`: the training objective and
  its parts, each a batch mean in nats per example (see `variants.losses` for the convention).
- `encode(x, y=None) -> Posterior`: the posterior; MIG and active units use its mean.
- `reconstruct(x, y=None)`: decodes the posterior mean deterministically; returns pixel means.
- `sample(n, y=None, generator=None)`: pixel means decoded from prior draws.
- `log_likelihood(x, y=None, k=...)`: the importance-sampled estimate of log p(x) per example;
  a variant where it is undefined raises `NotImplementedError` saying so.
- `after_training(x_train, y_train, *, seed) -> dict`: runs once after the training loop (e.g.
  VQ-VAE fits its learned prior there); returns metrics to record.
- `notes() -> dict[str, str]`: how this variant's numbers are to be read (recorded with the run).

The decoder likelihood p(x|z) is `self.likelihood` (`variants.likelihoods`, Bernoulli unless the
trial's `likelihood` says otherwise): variants size their decoder output with
`likelihood.param_shape(image_shape)` and call `likelihood.nll` / `likelihood.mean` on it.

Class attributes: `needs_labels` (the config validator rejects unlabelled datasets),
`continuous_latents` (False: MIG, active units and IS-NLL are reported as not applicable),
`representation` (what MIG and active units score) and `default_kl_warmup_steps` (used when a
sweep leaves `train.kl_warmup_steps` unset), `supports_free_bits` (False: a sweep setting
`train.free_bits` is rejected).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import pydantic
import torch
from torch import nn

from variants.likelihoods import Bernoulli, Likelihood


class VariantConfig(pydantic.BaseModel):
    """Base for each variant's hyper-parameters; unknown keys are errors, not silently ignored."""

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)


@dataclass
class LossOutput:
    """Batch means, in nats per example. `total` is what the optimiser minimises."""

    total: torch.Tensor
    recon: torch.Tensor
    kl: torch.Tensor
    extras: dict[str, torch.Tensor] = field(default_factory=dict)


@dataclass
class Posterior:
    """A diagonal Gaussian q(z|x); `mean` is the representation scored by MIG."""

    mean: torch.Tensor
    logvar: torch.Tensor


class Variant(nn.Module):
    """Base class of all variants. Subclasses set `Config` and implement the methods below."""

    name: ClassVar[str] = ""
    # One line for `benchmark.run --list-variants`: what it is, and its paper (arXiv id).
    description: ClassVar[str] = ""
    Config: ClassVar[type[VariantConfig]] = VariantConfig
    needs_labels: ClassVar[bool] = False
    continuous_latents: ClassVar[bool] = True
    representation: ClassVar[str] = "posterior mean"
    default_kl_warmup_steps: ClassVar[int] = 0
    supports_free_bits: ClassVar[bool] = True

    def __init__(
        self,
        config: VariantConfig,
        *,
        image_shape: tuple[int, int, int],
        latent_dim: int,
        architecture: str,
        num_classes: int | None = None,
        likelihood: Likelihood | None = None,
        dataset_size: int | None = None,
    ) -> None:
        super().__init__()
        # Registered before the encoder and decoder: a likelihood without parameters adds
        # nothing, so the parameter order (and the optimiser's state) of default models is
        # unchanged.
        self.likelihood = likelihood if likelihood is not None else Bernoulli()
        self.config = config
        self.image_shape = tuple(image_shape)
        self.latent_dim = latent_dim
        self.architecture = architecture
        self.num_classes = num_classes
        # N, the training split's size: estimators over the aggregate posterior need it
        # (e.g. β-TCVAE's minibatch-weighted sampling). None when unknown.
        self.dataset_size = dataset_size

    def loss(
        self,
        x: torch.Tensor,
        y: torch.Tensor | None = None,
        *,
        kl_weight: float = 1.0,
        free_bits: float = 0.0,
    ) -> LossOutput:
        raise NotImplementedError

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> Posterior:
        raise NotImplementedError

    def reconstruct(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError

    def sample(
        self, n: int, y: torch.Tensor | None = None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        raise NotImplementedError

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Pixel means (B, C, H, W) of p(x|z) for latents z (B, latent_dim); used for latent
        traversals. NotImplementedError where a latent code alone does not decode."""
        raise NotImplementedError(f"{self.name}: decode(z) is not defined")

    def log_likelihood(
        self, x: torch.Tensor, y: torch.Tensor | None = None, k: int = 100
    ) -> torch.Tensor:
        raise NotImplementedError(f"{self.name}: importance-sampled log p(x) is not defined")

    def after_training(
        self, x_train: torch.Tensor, y_train: torch.Tensor | None, *, seed: int
    ) -> dict[str, float]:
        return {}

    def notes(self) -> dict[str, str]:
        return {}

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
