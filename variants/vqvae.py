"""VQ-VAE (van den Oord et al. 2017) with a learned autoregressive prior over its code grid.

The latent is a grid of P = `latent_dim` positions. The encoder (any architecture family)
emits P vectors z_e of size `code_dim`; each is replaced by its nearest codebook vector e out of
K = `codebook_size` (squared Euclidean distance, ties to the lowest index), and the decoder
sees the P quantised vectors concatenated. Gradients cross the quantiser by the straight-through
estimator z_q = z_e + sg[e - z_e].

Objective per example, summed (not averaged) over the P positions and `code_dim` dims so that
its scale matches the pixel-summed reconstruction term:

    total = -log p(x|z_q) + Σ ||sg[z_e] - e||² + commitment_cost · Σ ||z_e - sg[e]||²

with p(x|z_q) the trial's likelihood (Bernoulli by default; the paper's MSE is a Gaussian).

With `ema=True` the codebook term is dropped and the codebook follows an exponential moving
average of the encoder outputs assigned to each code (van den Oord et al. 2017, appendix A.1),
with Laplace-smoothed counts. `kl` is the constant P·log K: KL(q(z|x) || uniform) for the
deterministic one-hot posterior, as in the paper; it is not optimised, and β has no meaning here.

Dead-code restart: every training step updates `usage`, an EMA (decay `ema_decay`) of K times
the share of the batch's B·P assignments that went to each code, so 1 is uniform use. Codes whose
usage is below `dead_code_threshold` are moved onto encoder outputs of the current batch drawn
uniformly at random (the global torch RNG, so deterministic given the seed), and their usage is
reset to 1 so that they get the same grace period as a fresh code.

After the main training loop `after_training` encodes the training set and fits the prior
(`variants.vq_prior`); `sample` draws code grids from it and decodes them.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from variants.architectures import get_architecture
from variants.base import LossOutput, Posterior, Variant, VariantConfig
from variants.catalog import VQVAEConfig
from variants.registry import register
from variants.vq_prior import MADE, CausalTransformer, fit_prior, sample_grids

LAPLACE_EPS = 1e-5  # the smoothing of the EMA counts, as in Sonnet's VectorQuantizerEMA


@register("vqvae")
class VQVAE(Variant):
    """VQ-VAE (van den Oord et al. 2017, arXiv:1711.00937) with a fitted autoregressive prior.

    The latent is a grid of P = latent_dim codes from a codebook of K vectors; see the module
    docstring for the objective, the EMA codebook and the dead-code restart. Discrete latents:
    `encode` and `log_likelihood` raise NotImplementedError, and `sample` raises RuntimeError
    before `after_training` has fitted the prior.
    """

    description = (
        "VQ-VAE: discrete codebook latents and a fitted prior (van den Oord et al. 2017, "
        "arXiv:1711.00937)"
    )
    representation = "not applicable: discrete code indices (no posterior mean)"

    def __init__(self, config: VariantConfig, **kwargs) -> None:
        super().__init__(config, **kwargs)
        cfg: VQVAEConfig = self.config
        p, k, d = self.latent_dim, cfg.codebook_size, cfg.code_dim
        arch = get_architecture(self.architecture)
        self.encoder = arch.encoder(self.image_shape, p * d)
        self.decoder = arch.decoder(p * d, self.likelihood.param_shape(self.image_shape))
        codebook = torch.empty(k, d).uniform_(-1.0 / k, 1.0 / k)
        if cfg.ema:
            # Moved by the EMA rule only: a buffer, so the optimiser never touches it.
            self.register_buffer("codebook", codebook)
            self.register_buffer("ema_count", torch.ones(k))  # N_i
            self.register_buffer("ema_sum", codebook.clone())  # m_i, so that m_i / N_i = e_i
        else:
            self.codebook = nn.Parameter(codebook)
        self.register_buffer("usage", torch.ones(k))
        self.prior_net = _build_prior(cfg, p)
        self.register_buffer("prior_fitted", torch.tensor(False))

    @property
    def num_codes(self) -> int:
        """K, the codebook size."""
        return self.codebook.shape[0]

    # --- the quantiser ------------------------------------------------------------------

    def encode_grid(self, x: torch.Tensor) -> torch.Tensor:
        """The encoder outputs z_e, shape (B, P, code_dim)."""
        return self.encoder(x).view(x.shape[0], self.latent_dim, -1)

    @torch.no_grad()
    def quantise(self, z_e: torch.Tensor) -> torch.Tensor:
        """Index of the nearest code for each vector of z_e (..., code_dim) → (...)."""
        flat = z_e.reshape(-1, z_e.shape[-1])
        dist = (
            flat.pow(2).sum(1, keepdim=True)
            - 2 * flat @ self.codebook.t()
            + self.codebook.pow(2).sum(1)[None, :]
        )
        return dist.argmin(1).view(z_e.shape[:-1])

    @torch.no_grad()
    def codes(self, x: torch.Tensor) -> torch.Tensor:
        """The code grid of each image, (B, P) indices in [0, K)."""
        return self.quantise(self.encode_grid(x))

    def decode_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """Likelihood parameters (Bernoulli logits by default) of the code grids `codes` (B, P)."""
        return self.decoder(self.codebook[codes].flatten(1))

    # --- the objective ------------------------------------------------------------------

    def loss(
        self,
        x: torch.Tensor,
        y: torch.Tensor | None = None,
        *,
        kl_weight: float = 1.0,
        free_bits: float = 0.0,
    ) -> LossOutput:
        """kl_weight and free_bits are accepted for the common interface and have no effect:
        the objective has no KL term (the constant P·log K is reported, not optimised)."""
        cfg: VQVAEConfig = self.config
        z_e = self.encode_grid(x)
        idx = self.quantise(z_e)
        e = self.codebook[idx]
        commitment = (z_e - e.detach()).pow(2).sum((1, 2))
        vq_loss = cfg.commitment_cost * commitment
        if not cfg.ema:
            vq_loss = vq_loss + (z_e.detach() - e).pow(2).sum((1, 2))
        z_q = z_e + (e - z_e).detach()  # straight-through: decoder gradients reach the encoder
        recon = self.likelihood.nll(self.decoder(z_q.flatten(1)), x)
        usage, perplexity = codebook_stats(idx, self.num_codes)
        if self.training:
            self._update_codebook(z_e.detach(), idx)
        kl = torch.full_like(recon, self.latent_dim * math.log(self.num_codes))
        return LossOutput(
            (recon + vq_loss).mean(),
            recon.mean(),
            kl.mean(),
            {"vq_loss": vq_loss.mean(), "codebook_usage": usage, "perplexity": perplexity},
        )

    @torch.no_grad()
    def _update_codebook(self, z_e: torch.Tensor, idx: torch.Tensor) -> None:
        """One training step's EMA codebook update (if `ema`) and dead-code restart."""
        cfg: VQVAEConfig = self.config
        flat, idx = z_e.reshape(-1, z_e.shape[-1]), idx.reshape(-1)
        counts = torch.bincount(idx, minlength=self.num_codes).to(flat.dtype)
        decay = cfg.ema_decay
        if cfg.ema:
            sums = torch.zeros_like(self.ema_sum).index_add_(0, idx, flat)
            self.ema_count.mul_(decay).add_(counts, alpha=1 - decay)
            self.ema_sum.mul_(decay).add_(sums, alpha=1 - decay)
            # Laplace smoothing keeps a code that has gone unused from dividing by ~0.
            total = self.ema_count.sum()
            smoothed = (self.ema_count + LAPLACE_EPS) / (total + self.num_codes * LAPLACE_EPS)
            self.codebook.copy_(self.ema_sum / (smoothed * total)[:, None])
        self.usage.mul_(decay).add_(counts * (self.num_codes / idx.numel()), alpha=1 - decay)
        if cfg.dead_code_threshold > 0:
            self._restart_dead_codes(flat)

    def _restart_dead_codes(self, flat: torch.Tensor) -> None:
        dead = (self.usage < self.config.dead_code_threshold).nonzero().squeeze(1)
        if dead.numel() == 0:
            return
        picks = torch.randint(flat.shape[0], (dead.numel(),), device=flat.device)
        self.codebook[dead] = flat[picks]
        self.usage[dead] = 1.0
        if self.config.ema:
            # Restart the moving averages too, or the next update would pull the code back.
            self.ema_count[dead] = 1.0
            self.ema_sum[dead] = flat[picks]

    # --- the interface ------------------------------------------------------------------

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> Posterior:
        """Raises NotImplementedError: the posterior is a one-hot code grid; use `codes`."""
        raise NotImplementedError(
            "vqvae: the posterior is a deterministic one-hot code grid, not a Gaussian; "
            "use `codes(x)` for the code indices (MIG and active units do not apply)"
        )

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Pixel means (B, C, H, W) decoded from each image's quantised code grid."""
        return self.likelihood.mean(self.decode_codes(self.codes(x)))

    @torch.no_grad()
    def sample(
        self, n: int, y: torch.Tensor | None = None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Pixel means of n code grids drawn from the learned prior (`y` is ignored)."""
        if not bool(self.prior_fitted):
            raise RuntimeError(
                "vqvae: the learned prior has not been fitted; call after_training(x_train, ...) "
                "before sample() (there is no uniform-code fallback)"
            )
        device = self.codebook.device
        codes = sample_grids(self.prior_net, n, device=device, generator=generator)
        return self.likelihood.mean(self.decode_codes(codes))

    def log_likelihood(
        self, x: torch.Tensor, y: torch.Tensor | None = None, k: int = 100
    ) -> torch.Tensor:
        """Raises NotImplementedError: no importance-sampled log p(x) for discrete latents."""
        raise NotImplementedError(
            "vqvae: importance-sampled log p(x) is not defined for discrete-latent VQ-VAE "
            "(its posterior is deterministic); see prior_nll for the learned prior's fit"
        )

    def after_training(
        self, x_train: torch.Tensor, y_train: torch.Tensor | None, *, seed: int
    ) -> dict[str, float]:
        """Fit the autoregressive prior on the training set's code grids.

        Returns `prior_nll` (-log p(c) of the training grids after fitting, nats per grid; the
        uniform prior scores P·log K) and `prior_seconds` (encoding plus fitting)."""
        cfg: VQVAEConfig = self.config
        was_training = self.training
        self.eval()  # e.g. batch norm must not use or update batch statistics here
        try:
            codes = torch.cat([self.codes(chunk) for chunk in x_train.split(1024)])
        finally:
            self.train(was_training)
        fit = fit_prior(
            self.prior_net, codes, steps=cfg.prior_steps, batch_size=cfg.prior_batch_size,
            lr=cfg.prior_lr, seed=seed,
        )  # fmt: skip
        self.prior_fitted.fill_(True)
        return {"prior_nll": fit.nll, "prior_seconds": fit.seconds}

    def notes(self) -> dict[str, str]:
        """How kl, elbo and the not-applicable metrics are to be read for VQ-VAE."""
        p, k = self.latent_dim, self.num_codes
        kl = f"{p}·log {k} = {p * math.log(k):.3f} nats"
        return {
            "kl": f"constant P·log K = {kl} (van den Oord et al. 2017), not a learned quantity",
            "elbo": "-(recon + P·log K) with the uniform prior; prior_nll is the learned "
            f"{self.config.prior} prior's -log p(codes) per grid",
            "mig": "not applicable: discrete latents",
            "active_units": "not applicable: discrete latents",
            "nll": "not applicable: discrete latents (no importance-sampled log p(x))",
        }


def codebook_stats(idx: torch.Tensor, num_codes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(usage, perplexity) of a batch of code indices.

    usage is the fraction of the K codes used at least once; perplexity is exp of the entropy
    of the batch's code histogram (1 if all use one code, K if all codes are used equally).
    """
    counts = torch.bincount(idx.reshape(-1), minlength=num_codes).float()
    probs = counts / counts.sum()
    entropy = -(probs * probs.clamp_min(1e-12).log()).sum()
    return (counts > 0).float().mean(), entropy.exp()


def _build_prior(cfg: VQVAEConfig, positions: int) -> nn.Module:
    if cfg.prior == "made":
        return MADE(positions, cfg.codebook_size, cfg.prior_width, cfg.prior_layers)
    return CausalTransformer(
        positions, cfg.codebook_size, cfg.prior_width, cfg.prior_layers, cfg.prior_heads
    )
