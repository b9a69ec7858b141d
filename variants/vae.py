"""The standard VAE (Kingma & Welling 2014) and the β-VAE (Higgins et al. 2017).

Objective per example: -log p(x|z) + β·KL(q(z|x) || N(0, I)), with z ~ q(z|x) drawn once by
reparameterisation; recon is summed over pixels and KL over latent dims (`variants.losses`);
p(x|z) is the trial's likelihood (`variants.likelihoods`, Bernoulli by default).
"""

from __future__ import annotations

import torch

from variants.architectures import get_architecture
from variants.base import LossOutput, Posterior, Variant, VariantConfig
from variants.catalog import BetaVAEConfig, VAEConfig  # noqa: F401 - re-exported for plugins
from variants.likelihood import importance_sampled_log_likelihood
from variants.losses import gaussian_kl, kl_with_free_bits, reparameterise
from variants.registry import register


@register("vae")
class VAE(Variant):
    """The standard VAE (Kingma & Welling 2014, arXiv:1312.6114); β-VAE is the same with β ≠ 1.

    Encoder: images (B, C, H, W) to (mean, logvar), each (B, latent_dim); decoder: z (B,
    latent_dim) to the likelihood's parameters. Subclasses that keep this model and change only
    the objective override `regulariser` (β-TCVAE) or `loss` (IWAE).
    """

    description = "the standard VAE, β = 1 (Kingma & Welling 2014, arXiv:1312.6114)"

    def __init__(self, config: VariantConfig, **kwargs) -> None:
        super().__init__(config, **kwargs)
        arch = get_architecture(self.architecture)
        self.encoder = arch.encoder(self.image_shape, 2 * self.latent_dim)
        self.decoder = arch.decoder(self.latent_dim, self.likelihood.param_shape(self.image_shape))

    @property
    def beta(self) -> float:
        """β, the KL weight (1 for the standard VAE, the config's `beta` otherwise)."""
        return getattr(self.config, "beta", 1.0)

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> Posterior:
        """q(z|x): mean and logvar, each (B, latent_dim), from one encoder pass."""
        mean, logvar = self.encoder(x).chunk(2, dim=-1)
        return Posterior(mean, logvar)

    def loss(
        self,
        x: torch.Tensor,
        y: torch.Tensor | None = None,
        *,
        kl_weight: float = 1.0,
        free_bits: float = 0.0,
    ) -> LossOutput:
        """recon + β·kl_weight·KL with z ~ q(z|x) drawn once (`reparameterise`); nats per example.

        `extras` holds whatever `regulariser` returns (empty for the VAE).
        """
        post = self.encode(x)
        z = reparameterise(post.mean, post.logvar)
        recon = self.likelihood.nll(self.decoder(z), x)
        kl_per_dim = gaussian_kl(post.mean, post.logvar)
        weight, term, extras = self.regulariser(z, post, kl_per_dim, free_bits)
        total = recon + (weight * kl_weight) * term
        return LossOutput(total.mean(), recon.mean(), kl_per_dim.sum(-1).mean(), extras)

    def regulariser(
        self, z: torch.Tensor, post: Posterior, kl_per_dim: torch.Tensor, free_bits: float
    ) -> tuple[float, torch.Tensor, dict[str, torch.Tensor]]:
        """The term `loss` adds to the reconstruction NLL, as (weight, term, extras).

        `loss` minimises mean(recon + (weight · kl_weight) · term). Here weight = β and term is
        the KL summed over latent dims (B,), nats, under free bits (`kl_with_free_bits`); z (B, d)
        is the sample the reconstruction used, post its posterior, kl_per_dim (B, d) the
        closed-form KL. A subclass that regularises otherwise (e.g. β-TCVAE) overrides this.
        """
        return self.beta, kl_with_free_bits(kl_per_dim, free_bits), {}

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Pixel means (B, C, H, W) decoded from the posterior mean."""
        return self.likelihood.mean(self.decoder(self.encode(x).mean))

    @torch.no_grad()
    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Pixel means (B, C, H, W) decoded from z (B, latent_dim)."""
        return self.likelihood.mean(self.decoder(z))

    @torch.no_grad()
    def sample(
        self, n: int, y: torch.Tensor | None = None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Pixel means (n, C, H, W) decoded from z ~ N(0, I) drawn from `generator`."""
        device = next(self.parameters()).device
        z = torch.randn(n, self.latent_dim, generator=generator, device=device)
        return self.likelihood.mean(self.decoder(z))

    @torch.no_grad()
    def log_likelihood(
        self, x: torch.Tensor, y: torch.Tensor | None = None, k: int = 100
    ) -> torch.Tensor:
        """Importance-sampled log p(x) with q(z|x) as the proposal; shape (B,), nats."""

        def log_px_given_z(z: torch.Tensor) -> torch.Tensor:
            params = self.decoder(z.flatten(0, 1)).unflatten(0, z.shape[:2])
            return -self.likelihood.nll(params, x)

        return importance_sampled_log_likelihood(self.encode(x), log_px_given_z, k)


@register("beta_vae")
class BetaVAE(VAE):
    """β-VAE (Higgins et al. 2017, ICLR): the VAE with the KL term weighted by β (default 4)."""

    description = "β-VAE: the KL term weighted by β (Higgins et al. 2017, ICLR)"
