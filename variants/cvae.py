"""The conditional VAE (Sohn et al. 2015): encoder and decoder both see the class label.

Objective per example: -log p(x|z, y) + β·KL(q(z|x, y) || N(0, I)), with z ~ q(z|x, y) drawn
once by reparameterisation and the prior p(z|y) = N(0, I) for every class. Recon is -log p(x|z, y)
(the trial's likelihood, BCE-with-logits by default) summed over pixels and KL is closed-form,
summed over latent dims (`variants.losses`), so the evaluation's ELBO = -(recon + kl) bounds
the *conditional* log p(x|y), not log p(x).

The label enters as a one-hot vector: the encoder is the architecture's encoder followed by a small
head on [features ⊕ onehot(y)], and the decoder is the architecture's decoder fed [z ⊕ onehot(y)].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from variants.architectures import get_architecture
from variants.base import LossOutput, Posterior, Variant, VariantConfig
from variants.likelihood import importance_sampled_log_likelihood
from variants.losses import gaussian_kl, kl_with_free_bits, reparameterise
from variants.registry import register

# Width of the architecture encoder's output, which the label-conditioned head reads.
FEATURES = 256


@register("cvae")
class CVAE(Variant):
    """The conditional VAE (Sohn et al. 2015, NeurIPS): q(z|x, y) and p(x|z, y), prior N(0, I).

    Every method taking `y` needs integer class labels (B,) in [0, num_classes) and raises
    ValueError without them (`one_hot`); construction raises ValueError without `num_classes`.
    """

    description = (
        "conditional VAE: encoder and decoder see the class label (Sohn et al. 2015, NeurIPS)"
    )
    representation = "posterior mean of q(z|x, y) given the true label"

    def __init__(self, config: VariantConfig, **kwargs) -> None:
        super().__init__(config, **kwargs)
        if not self.num_classes or self.num_classes < 1:
            raise ValueError(f"cvae needs a labelled dataset (num_classes), got {self.num_classes}")
        arch = get_architecture(self.architecture)
        classes = self.num_classes
        self.encoder = arch.encoder(self.image_shape, FEATURES)
        # A hidden layer, so that the label can interact with the image features rather than
        # only shifting (mean, logvar) by a per-class bias.
        self.head = nn.Sequential(
            nn.Linear(FEATURES + classes, FEATURES), nn.ReLU(),
            nn.Linear(FEATURES, 2 * self.latent_dim),
        )  # fmt: skip
        self.decoder = arch.decoder(
            self.latent_dim + classes, self.likelihood.param_shape(self.image_shape)
        )

    @property
    def beta(self) -> float:
        """β, the KL weight."""
        return self.config.beta

    def notes(self) -> dict[str, str]:
        """Says that elbo and nll are of the conditional log p(x|y), not log p(x)."""
        return {
            "likelihood": "cvae: elbo and nll bound/estimate the conditional log p(x|y) given the "
            "true label, so they are not directly comparable with log p(x) of other variants",
        }

    def one_hot(self, y: torch.Tensor | None, batch: int) -> torch.Tensor:
        """onehot(y) as floats (batch, num_classes); ValueError on missing or invalid labels."""
        if y is None:
            raise ValueError("cvae needs the class labels y: it models p(x|y)")
        if y.dtype.is_floating_point or y.dtype.is_complex or y.dtype == torch.bool:
            raise ValueError(f"labels y must be integer class indices, got dtype {y.dtype}")
        if y.shape != (batch,):
            raise ValueError(f"labels y must have shape ({batch},), got {tuple(y.shape)}")
        if batch and (int(y.min()) < 0 or int(y.max()) >= self.num_classes):
            raise ValueError(
                f"labels y must lie in [0, {self.num_classes}), got range "
                f"[{int(y.min())}, {int(y.max())}]"
            )
        return F.one_hot(y.long(), self.num_classes).float()

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> Posterior:
        """q(z|x, y): mean and logvar, each (B, latent_dim). ValueError on bad labels."""
        return self._posterior(x, self.one_hot(y, x.shape[0]))

    def _posterior(self, x: torch.Tensor, onehot: torch.Tensor) -> Posterior:
        features = torch.relu(self.encoder(x))
        mean, logvar = self.head(torch.cat([features, onehot], dim=-1)).chunk(2, dim=-1)
        return Posterior(mean, logvar)

    def decode(self, z: torch.Tensor, onehot: torch.Tensor) -> torch.Tensor:
        """Likelihood parameters (Bernoulli logits by default) for z (..., B, d) and onehot
        (B, C); leading dims of z are samples."""
        cond = onehot.expand(*z.shape[:-1], onehot.shape[-1])
        flat = torch.cat([z, cond], dim=-1).flatten(0, -2)
        return self.decoder(flat).unflatten(0, z.shape[:-1])

    def loss(
        self,
        x: torch.Tensor,
        y: torch.Tensor | None = None,
        *,
        kl_weight: float = 1.0,
        free_bits: float = 0.0,
    ) -> LossOutput:
        """As VAE.loss, with the label fed to encoder and decoder. ValueError on bad labels."""
        onehot = self.one_hot(y, x.shape[0])
        post = self._posterior(x, onehot)
        z = reparameterise(post.mean, post.logvar)
        recon = self.likelihood.nll(self.decode(z, onehot), x)
        kl_per_dim = gaussian_kl(post.mean, post.logvar)
        total = recon + (self.beta * kl_weight) * kl_with_free_bits(kl_per_dim, free_bits)
        return LossOutput(total.mean(), recon.mean(), kl_per_dim.sum(-1).mean())

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Pixel means (B, C, H, W) decoded from the posterior mean, given labels y."""
        onehot = self.one_hot(y, x.shape[0])
        return self.likelihood.mean(self.decode(self._posterior(x, onehot).mean, onehot))

    @torch.no_grad()
    def sample(
        self, n: int, y: torch.Tensor | None = None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Pixel means decoded from z ~ N(0, I) with labels y (n,).

        With y None, the labels are drawn uniformly over the classes from `generator` first, then
        z from the same generator, so a seeded generator gives the same samples every time.
        """
        device = next(self.parameters()).device
        if y is None:
            y = torch.randint(self.num_classes, (n,), generator=generator, device=device)
        onehot = self.one_hot(y, n)
        z = torch.randn(n, self.latent_dim, generator=generator, device=device)
        return self.likelihood.mean(self.decode(z, onehot))

    @torch.no_grad()
    def log_likelihood(
        self, x: torch.Tensor, y: torch.Tensor | None = None, k: int = 100
    ) -> torch.Tensor:
        """Importance-sampled log p(x|y) with q(z|x, y) as the proposal; shape (B,), nats."""
        onehot = self.one_hot(y, x.shape[0])

        def log_px_given_z(z: torch.Tensor) -> torch.Tensor:
            return -self.likelihood.nll(self.decode(z, onehot), x)

        return importance_sampled_log_likelihood(self._posterior(x, onehot), log_px_given_z, k)
