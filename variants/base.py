"""The contract every variant keeps: the `Variant` base class (docs/design.md, "The variant
interface"). Each method's docstring states its part of the contract; images are batches in
[0, 1] shaped (B, C, H, W), and every loss term is a batch mean in nats per example.

The decoder likelihood p(x|z) is `self.likelihood` (`variants.likelihoods`, Bernoulli unless the
trial's `likelihood` says otherwise): variants size their decoder output with
`likelihood.param_shape(image_shape)` and call `likelihood.nll` / `likelihood.mean` on it.
What validation needs to know about a variant (its `Config`, `needs_labels`,
`continuous_latents`, `supports_free_bits`) is its `VariantSpec` (`variants.declaration`),
which the registry binds to these class attributes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import nn

from variants.declaration import VariantConfig
from variants.likelihoods import Bernoulli, Likelihood

__all__ = ["LossOutput", "Posterior", "Variant", "VariantConfig"]


@dataclass
class LossOutput:
    """Batch means, in nats per example. `total` is what the optimiser minimises."""

    total: torch.Tensor
    recon: torch.Tensor
    kl: torch.Tensor
    extras: dict[str, torch.Tensor] = field(default_factory=dict)


@dataclass
class Posterior:
    """A diagonal Gaussian q(z|x): `mean` and `logvar`, each (B, latent_dim); `mean` is the
    representation scored by MIG."""

    mean: torch.Tensor
    logvar: torch.Tensor


class Variant(nn.Module):
    """Base class of all variants: an `nn.Module` built from its validated `Config`.

    Subclasses implement `loss`, `encode`, `reconstruct` and `sample` (and where defined
    `decode`, `log_likelihood`, `after_training`, `notes`). Class attributes:

    - `name`, `Config`, `needs_labels`, `continuous_latents`, `supports_free_bits`: set by the
      registry from the variant's `VariantSpec` (a plugin sets them on its class);
    - `description`: one line for `benchmark.run --list-variants` (what it is, its paper);
    - `representation`: what MIG and active units score;
    - `default_kl_warmup_steps`: used when a sweep leaves `train.kl_warmup_steps` unset.
    """

    name: ClassVar[str] = ""
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
        """config: the validated `Config`; image_shape: (C, H, W); latent_dim: the size of z
        (for a hierarchy, of its top level); architecture: a name in
        `variants.architectures.ARCHITECTURES`; num_classes: the label count (label-conditioned
        variants); likelihood: p(x|z), Bernoulli when None; dataset_size: N, the number of
        training images, when an estimator needs it. Subclasses raise ValueError on a
        combination they cannot build."""
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
        """The training objective for images x (B, C, H, W) in [0, 1] and labels y (B,) or None.

        Returns batch means in nats per example: `total` (what the optimiser minimises),
        `recon` (-E_q log p(x|z)) and `kl`, plus variant-specific `extras`. kl_weight scales
        the KL term (warm-up × β); free_bits (nats per latent dim) is the floor below which a
        dimension's KL is not penalised (Kingma et al. 2016, arXiv:1606.04934). See
        `variants.losses` for the convention.
        """
        raise NotImplementedError

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> Posterior:
        """The posterior q(z|x) (mean and log-variance, each (B, latent_dim)) of images x
        (B, C, H, W); MIG and active units use its mean. NotImplementedError for discrete codes."""
        raise NotImplementedError

    def reconstruct(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Pixel means (B, C, H, W) of p(x|z) at the posterior mean of x: deterministic."""
        raise NotImplementedError

    def sample(
        self, n: int, y: torch.Tensor | None = None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Pixel means (n, C, H, W) decoded from n prior draws (labels y (n,) where the variant
        is conditional), drawn from `generator` when given."""
        raise NotImplementedError

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Pixel means (B, C, H, W) of p(x|z) for latents z (B, latent_dim); used for latent
        traversals. NotImplementedError where a latent code alone does not decode."""
        raise NotImplementedError(f"{self.name}: decode(z) is not defined")

    def log_likelihood(
        self, x: torch.Tensor, y: torch.Tensor | None = None, k: int = 100
    ) -> torch.Tensor:
        """The importance-sampled estimate of log p(x) per example, shape (B,), in nats, with k
        samples from q(z|x) (Burda et al. 2016, arXiv:1509.00519). NotImplementedError, saying
        so, where it is undefined."""
        raise NotImplementedError(f"{self.name}: importance-sampled log p(x) is not defined")

    def after_training(
        self, x_train: torch.Tensor, y_train: torch.Tensor | None, *, seed: int
    ) -> dict[str, float]:
        """Runs once after the training loop on the training split (x_train (N, C, H, W), labels
        or None), seeded by `seed` (e.g. VQ-VAE fits its prior here); returns metrics to
        record. The base does nothing."""
        return {}

    def notes(self) -> dict[str, str]:
        """How this variant's numbers are to be read, recorded with the run: key -> one line."""
        return {}

    def num_parameters(self) -> int:
        """The number of scalar parameters (trainable or not)."""
        return sum(p.numel() for p in self.parameters())
