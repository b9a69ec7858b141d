"""The importance-weighted autoencoder (Burda et al. 2016): the VAE's model, a tighter bound.

Objective per example: the IWAE bound with k samples,

    L_k = log (1/k) Σ_i w_i,   log w_i = log p(x|z_i) + log p(z_i) − log q(z_i|x),

with z_1..z_k ~ q(z|x) reparameterised and drawn in one batch (no loop over samples); the optimiser
minimises −L_k. L_1 is the one-sample ELBO and L_k rises towards log p(x) as k grows.

Reported parts, so the evaluation's ELBO = −(recon + kl) is comparable with the other variants:
recon is −log p(x|z) (the trial's likelihood, summed over pixels) averaged over the k samples,
kl is the closed-form KL(q(z|x) || N(0, I)) summed over latent dims; `extras["iwae_bound"]` is
the batch mean of L_k itself.

KL warm-up: `kl_weight` multiplies each sample's log p(z_i) − log q(z_i|x) inside the weights, so
at k = 1 the objective is the VAE's recon + kl_weight·KL (estimated on the sample) and at
kl_weight = 1 it is exactly −L_k; `iwae_bound` always reports the unweighted L_k. Free bits clamp
a closed-form per-dimension KL, which the importance weights do not contain, so `free_bits > 0`
is rejected with a ValueError.
"""

from __future__ import annotations

import torch

from variants.base import LossOutput
from variants.losses import (
    gaussian_kl,
    gaussian_log_prob,
    log_mean_exp,
    reparameterise,
    standard_normal_log_prob,
)
from variants.registry import register
from variants.vae import VAE


@register("iwae")
class IWAE(VAE):
    """Same encoder, decoder, reconstruction, sampling and log p(x) as the VAE; only the loss
    differs (inherited methods use the posterior mean or the prior exactly as `vae` does)."""

    description = (
        "importance-weighted autoencoder, k-sample bound (Burda et al. 2016, arXiv:1509.00519)"
    )

    def notes(self) -> dict[str, str]:
        """Says the model is trained on the k-sample bound while elbo is the one-sample ELBO."""
        return {
            "objective": f"iwae: trained on the IWAE bound with k={self.config.k} (iwae_bound); "
            "elbo is the standard one-sample ELBO with closed-form KL of the same model",
        }

    def loss(
        self,
        x: torch.Tensor,
        y: torch.Tensor | None = None,
        *,
        kl_weight: float = 1.0,
        free_bits: float = 0.0,
    ) -> LossOutput:
        """−L_k, the k-sample IWAE bound (Burda et al. 2016, arXiv:1509.00519), nats per example.

        kl_weight scales log p(z) − log q(z|x) inside the weights; extras["iwae_bound"] is the
        unweighted L_k. Raises ValueError for free_bits > 0.
        """
        if free_bits > 0:
            raise ValueError(
                f"iwae does not support free bits (got free_bits={free_bits}): the importance "
                "weights hold no per-dimension KL to clamp; set train.free_bits to 0"
            )
        k = self.config.k
        post = self.encode(x)
        z = reparameterise(post.mean, post.logvar, sample_shape=(k,))
        params = self.decoder(z.flatten(0, 1)).unflatten(0, (k, x.shape[0]))
        log_px = -self.likelihood.nll(params, x)  # (k, B)
        log_ratio = standard_normal_log_prob(z) - gaussian_log_prob(z, post.mean, post.logvar)
        objective = log_mean_exp(log_px + kl_weight * log_ratio)
        bound = objective if kl_weight == 1.0 else log_mean_exp(log_px + log_ratio)
        return LossOutput(
            total=-objective.mean(),
            recon=-log_px.mean(),
            kl=gaussian_kl(post.mean, post.logvar).sum(-1).mean(),
            extras={"iwae_bound": bound.detach().mean()},
        )
