"""A hierarchical VAE with L ≥ 2 stochastic levels in the style of the Ladder VAE.

Sønderby et al. 2016, "Ladder Variational Autoencoders". Levels are numbered bottom first:
z_1 (next to the pixels, `lower_dims[0]` units) … z_L (the top, `latent_dim` units).

Generative model: p(z_L) = N(0, I), p(z_l | z_{l+1}) = N(μ_p, σ_p²) from an MLP of z_{l+1},
and p(x | z_1) the trial's likelihood (Bernoulli by default) on the architecture's decoder.

Inference: a deterministic bottom-up pass (the architecture's encoder, then one small MLP block
per level) gives each level "likelihood" parameters (μ̂_l, σ̂_l²). The top-down pass combines
them with the generative prior by precision weighting:

    σ_q² = 1 / (σ̂⁻² + σ_p⁻²),   μ_q = (μ̂ σ̂⁻² + μ_p σ_p⁻²) σ_q²,   q(z_L | x) = N(μ̂_L, σ̂_L²).

Objective per example: -log p(x|z_1) + β·kl_weight·Σ_l KL_l with one reparameterised draw of
z_L, …, z_1 (top down). recon is -log p(x|z_1) summed over pixels; KL_L = KL(q(z_L|x) ‖
N(0, I)) and, for l < L, KL_l = KL(q(z_l|·) ‖ p(z_l | z_{l+1})) between the two diagonal
Gaussians at the sampled z_{l+1}, each in closed form and summed over that level's dims. `kl`
is their sum, so recon + kl is the negative ELBO with β = 1 (a single-sample estimate: the
lower levels' KLs depend on the sampled parent). Free bits, if on, apply per level per dim.
The per-level KLs are reported as extras `kl_level_1` (bottom) … `kl_level_L` (top).

The paper found KL warm-up essential for the upper levels to stay active, hence
`default_kl_warmup_steps = 1000`, used when a sweep leaves `train.kl_warmup_steps` unset.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from variants.architectures import get_architecture
from variants.base import LossOutput, Posterior, Variant, VariantConfig
from variants.likelihood import chunked_log_mean_exp
from variants.losses import (
    diagonal_gaussian_kl,
    gaussian_kl,
    gaussian_log_prob,
    kl_with_free_bits,
    reparameterise,
    standard_normal_log_prob,
)
from variants.registry import register

# Log-variances are squashed softly into ±LOGVAR_BOUND: σ stays in [e^-5, e^5], so the
# precisions and the KL between two learned Gaussians cannot overflow, yet gradients never vanish
# as they would under a hard clamp.
LOGVAR_BOUND = 10.0
# Importance samples drawn per chunk in `log_likelihood` (memory: chunk × batch decoded images).
IS_CHUNK = 64


@dataclass
class Level:
    """One stochastic level of a top-down pass: its sample, q(z_l|·), and p(z_l|z_{l+1}).

    The prior parameters are None at the top, where p(z_L) = N(0, I).
    """

    z: torch.Tensor
    q_mean: torch.Tensor
    q_logvar: torch.Tensor
    p_mean: torch.Tensor | None = None
    p_logvar: torch.Tensor | None = None

    def kl_per_dim(self) -> torch.Tensor:
        """KL(q ‖ p) per latent dim in closed form, shape (B, d_l), nats."""
        if self.p_mean is None:
            return gaussian_kl(self.q_mean, self.q_logvar)
        return diagonal_gaussian_kl(self.q_mean, self.q_logvar, self.p_mean, self.p_logvar)

    def log_prior_minus_posterior(self) -> torch.Tensor:
        """log p(z_l | z_{l+1}) - log q(z_l | ·) at the level's sample, shape (B,)."""
        if self.p_mean is None:
            log_p = standard_normal_log_prob(self.z)
        else:
            log_p = gaussian_log_prob(self.z, self.p_mean, self.p_logvar)
        return log_p - gaussian_log_prob(self.z, self.q_mean, self.q_logvar)


def precision_weighted(
    mean_a: torch.Tensor, logvar_a: torch.Tensor, mean_b: torch.Tensor, logvar_b: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The product of two diagonal Gaussians, normalised: (mean, logvar) with 1/σ² = Σ 1/σ_i².

    Computed in log-space: logvar = -logaddexp(-logvar_a, -logvar_b), and each mean's weight
    σ_i⁻² / Σ σ⁻² is a sigmoid of the log-variance difference, so no precision is formed
    explicitly and very confident or very vague inputs cannot overflow.
    """
    logvar = -torch.logaddexp(-logvar_a, -logvar_b)
    weight_a = torch.sigmoid(logvar_b - logvar_a)
    return weight_a * mean_a + (1.0 - weight_a) * mean_b, logvar


def _gaussian_params(h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mean, raw = h.chunk(2, dim=-1)
    return mean, LOGVAR_BOUND * torch.tanh(raw / LOGVAR_BOUND)


def _draw(
    mean: torch.Tensor, logvar: torch.Tensor, stochastic: bool, generator: torch.Generator | None
) -> torch.Tensor:
    return reparameterise(mean, logvar, generator=generator) if stochastic else mean


def _act() -> nn.Module:
    # The Ladder VAE paper uses leaky rectifiers throughout the deterministic layers.
    return nn.LeakyReLU(0.1)


@register("hierarchical")
class HierarchicalVAE(Variant):
    """The Ladder-VAE-style hierarchical VAE (Sønderby et al. 2016, arXiv:1602.02282).

    L = len(lower_dims) + 1 Gaussian levels; the top has `latent_dim` units and is the
    representation `encode` returns. See the module docstring for the model and objective.
    """

    description = (
        "hierarchical VAE, stochastic levels, Ladder-VAE style (Sønderby et al. 2016, "
        "arXiv:1602.02282)"
    )
    representation = "posterior mean of the top level"
    default_kl_warmup_steps = 1000

    def __init__(self, config: VariantConfig, **kwargs) -> None:
        super().__init__(config, **kwargs)
        hidden = config.hidden
        # Level sizes, bottom first; the sweep's latent budget is the top level.
        self.dims: list[int] = [*config.lower_dims, self.latent_dim]
        arch = get_architecture(self.architecture)
        self.encoder = arch.encoder(self.image_shape, hidden)
        # d_l = block_l(d_{l-1}); the architecture's encoder ends in a linear layer, so each
        # block and head starts with the nonlinearity.
        self.up_blocks = nn.ModuleList(
            nn.Sequential(_act(), nn.Linear(hidden, hidden)) for _ in self.dims
        )
        self.up_heads = nn.ModuleList(
            nn.Sequential(_act(), nn.Linear(hidden, 2 * d)) for d in self.dims
        )
        # priors[l] gives p(z_l | z_{l+1}) for l = 0 … L-2 (0-based, bottom first).
        self.priors = nn.ModuleList(
            nn.Sequential(nn.Linear(d_above, hidden), _act(), nn.Linear(hidden, 2 * d))
            for d, d_above in zip(self.dims[:-1], self.dims[1:], strict=True)
        )
        self.decoder = arch.decoder(self.dims[0], self.likelihood.param_shape(self.image_shape))

    @property
    def beta(self) -> float:
        """β, the weight of the summed per-level KL."""
        return self.config.beta

    def bottom_up(self, x: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The deterministic pass: each level's likelihood (μ̂_l, log σ̂_l²), bottom first."""
        h = self.encoder(x)
        params = []
        for block, head in zip(self.up_blocks, self.up_heads, strict=True):
            h = block(h)
            params.append(_gaussian_params(head(h)))
        return params

    def top_down(
        self,
        up: list[tuple[torch.Tensor, torch.Tensor]],
        *,
        stochastic: bool = True,
        generator: torch.Generator | None = None,
    ) -> list[Level]:
        """The inference pass from the top: levels bottom first, each with q, p and its z.

        `stochastic=False` takes each level's posterior mean instead of a draw.
        """
        mean, logvar = up[-1]
        z = _draw(mean, logvar, stochastic, generator)
        levels = [Level(z, mean, logvar)]
        pairs = zip(reversed(self.priors), reversed(up[:-1]), strict=True)
        for prior, (up_mean, up_logvar) in pairs:
            p_mean, p_logvar = _gaussian_params(prior(z))
            q_mean, q_logvar = precision_weighted(up_mean, up_logvar, p_mean, p_logvar)
            z = _draw(q_mean, q_logvar, stochastic, generator)
            levels.append(Level(z, q_mean, q_logvar, p_mean, p_logvar))
        return levels[::-1]

    def infer(
        self,
        x: torch.Tensor,
        *,
        stochastic: bool = True,
        generator: torch.Generator | None = None,
    ) -> list[Level]:
        """q(z_1 … z_L | x): bottom-up then top-down; levels bottom first."""
        return self.top_down(self.bottom_up(x), stochastic=stochastic, generator=generator)

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> Posterior:
        """The top level's posterior q(z_L | x) = N(μ̂_L, σ̂_L²)."""
        mean, logvar = self.bottom_up(x)[-1]
        return Posterior(mean, logvar)

    def loss(
        self,
        x: torch.Tensor,
        y: torch.Tensor | None = None,
        *,
        kl_weight: float = 1.0,
        free_bits: float = 0.0,
    ) -> LossOutput:
        """recon + β·kl_weight·Σ_l KL_l from one top-down draw; nats per example.

        Free bits apply per level per dim; extras `kl_level_1` (bottom) … `kl_level_L` (top).
        """
        levels = self.infer(x)
        recon = self.likelihood.nll(self.decoder(levels[0].z), x)
        kl_per_dim = [level.kl_per_dim() for level in levels]
        kl_levels = [kl.sum(-1) for kl in kl_per_dim]
        kl_term = sum(kl_with_free_bits(kl, free_bits) for kl in kl_per_dim)
        total = recon + (self.beta * kl_weight) * kl_term
        extras = {f"kl_level_{i}": kl.mean() for i, kl in enumerate(kl_levels, start=1)}
        return LossOutput(total.mean(), recon.mean(), sum(kl_levels).mean(), extras)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Pixel means decoded from the posterior means, taken top-down (deterministic)."""
        return self.likelihood.mean(self.decoder(self.infer(x, stochastic=False)[0].z))

    @torch.no_grad()
    def sample(
        self, n: int, y: torch.Tensor | None = None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Ancestral sampling: z_L ~ N(0, I), then z_l ~ p(z_l | z_{l+1}) down to z_1."""
        device = next(self.parameters()).device
        z = torch.randn(n, self.dims[-1], generator=generator, device=device)
        for prior in reversed(self.priors):
            z = _draw(*_gaussian_params(prior(z)), True, generator)
        return self.likelihood.mean(self.decoder(z))

    @torch.no_grad()
    def log_likelihood(
        self, x: torch.Tensor, y: torch.Tensor | None = None, k: int = 100
    ) -> torch.Tensor:
        """Importance-sampled log p(x) per example, shape (B,), nats (Burda et al. 2016).

        The proposal is the full hierarchical posterior q(z_1 … z_L | x), drawn top-down:
        log w = log p(x|z_1) + Σ_l [log p(z_l | z_{l+1}) - log q(z_l | ·)] with p(z_L) = N(0, I),
        and log p(x) ≈ logsumexp_i log w_i - log k. k draws are made IS_CHUNK at a time, each
        chunk as one batch of chunk × B examples; the bottom-up pass runs once.
        """
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        batch = x.shape[0]
        up = self.bottom_up(x)

        def log_weights(m: int) -> torch.Tensor:
            levels = self.top_down([(mean.repeat(m, 1), lv.repeat(m, 1)) for mean, lv in up])
            params = self.decoder(levels[0].z).unflatten(0, (m, batch))
            log_ratio = sum(level.log_prior_minus_posterior() for level in levels)
            return -self.likelihood.nll(params, x) + log_ratio.view(m, batch)

        return chunked_log_mean_exp(log_weights, k, IS_CHUNK)

    def notes(self) -> dict[str, str]:
        """The level sizes and how kl and nll are computed over the hierarchy."""
        sizes = ", ".join(str(d) for d in self.dims)
        return {
            "hierarchy": (
                f"{len(self.dims)} Gaussian levels z_1..z_L of sizes {sizes} (bottom first); "
                "kl sums the per-level KLs kl_level_1 (bottom) .. kl_level_L (top), lower levels "
                "against p(z_l|z_{l+1}) at one sampled parent; nll uses the full hierarchical "
                "proposal"
            )
        }
