"""β-TCVAE as a vaebench plugin (Chen et al. 2018, "Isolating Sources of Disentanglement in
VAEs", arXiv 1802.04942).

The ELBO's KL term, averaged over the data, splits into three parts (Chen et al., eq. 2):

    E_p(x)[KL(q(z|x) || p(z))] = I_q(x; z)                      index-code mutual information
                               + KL(q(z) || Π_j q(z_j))         total correlation (TC)
                               + Σ_j KL(q(z_j) || p(z_j))       dimension-wise KL

β-TCVAE weights them α, β, γ and trains on  E[-log p(x|z)] + α·MI + β·TC + γ·dim-KL  with
α = γ = 1, so β penalises only the total correlation. The aggregate posterior q(z) and its
marginals are estimated on each minibatch of size M by **minibatch-weighted sampling** (MWS,
Chen et al. eq. 5 and appendix C.1), which needs the dataset size N:

    log q(z_i) ≈ logsumexp_j log q(z_i | x_j) − log(N·M).

Installed (`pip install -e examples/plugin_variant`), it registers as `beta_tcvae` through the
`vaebench.variants` entry point: no `--plugin` flag needed. Parameters: `beta` (TC weight,
default 6 as in the paper's dSprites runs), `alpha`, `gamma` (1). Its `kl` metric is the plain
KL(q(z|x) || N(0, I)), so it compares with every other variant's; `tc`, `mi` and `dim_kl` (MWS
estimates on the last batch) are logged as extras.
"""

from __future__ import annotations

import math

import pydantic
import torch

from variants.base import Posterior
from variants.losses import gaussian_log_density, gaussian_log_prob, standard_normal_log_prob
from variants.registry import register
from variants.vae import VAE, VAEConfig

__all__ = ["BetaTCVAE", "BetaTCVAEConfig", "mws_decomposition"]


class BetaTCVAEConfig(VAEConfig):
    beta: float = pydantic.Field(6.0, gt=0, description="weight of the total correlation")
    alpha: float = pydantic.Field(1.0, ge=0, description="weight of the index-code MI")
    gamma: float = pydantic.Field(1.0, ge=0, description="weight of the dimension-wise KL")


def mws_decomposition(
    z: torch.Tensor, post: Posterior, dataset_size: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-example (MI, TC, dim-KL) by minibatch-weighted sampling; each shape (M,), nats.

    z: (M, d) samples, z_i ~ q(z|x_i); post: the batch's posteriors, mean/logvar (M, d);
    dataset_size: N, the number of training examples (MWS weights each batch member by 1/N).
    Raises ValueError if dataset_size < M.
    """
    m = z.shape[0]
    if dataset_size < m:
        raise ValueError(f"dataset_size {dataset_size} is smaller than the batch ({m})")
    # (M, M, d): log q(z_i[d] | x_j) for every pair i, j and dim d.
    pairwise = gaussian_log_density(
        z.unsqueeze(1), post.mean.unsqueeze(0), post.logvar.unsqueeze(0)
    )
    log_nm = math.log(dataset_size * m)
    log_qz = torch.logsumexp(pairwise.sum(-1), dim=1) - log_nm
    log_prod_qzj = (torch.logsumexp(pairwise, dim=1) - log_nm).sum(-1)
    log_qz_given_x = gaussian_log_prob(z, post.mean, post.logvar)
    log_pz = standard_normal_log_prob(z)
    return log_qz_given_x - log_qz, log_qz - log_prod_qzj, log_prod_qzj - log_pz


@register("beta_tcvae")
class BetaTCVAE(VAE):
    """β-TCVAE (arXiv 1802.04942): a VAE whose KL is split by MWS and whose TC is weighted β.

    Shapes: x (B, C, H, W) in [0, 1]; latents (B, latent_dim). Units: nats per example.
    """

    Config = BetaTCVAEConfig
    description = (
        "β-TCVAE: only the total correlation weighted by β (Chen et al. 2018, arXiv:1802.04942)"
    )
    supports_free_bits = False  # the MWS terms hold no per-dim KL to clamp

    def regulariser(
        self, z: torch.Tensor, post: Posterior, kl_per_dim: torch.Tensor, free_bits: float
    ) -> tuple[float, torch.Tensor, dict[str, torch.Tensor]]:
        """VAE.loss with α·MI + β·TC + γ·dim-KL (MWS estimates, (B,) nats) in place of β·KL.

        Raises ValueError for free_bits > 0: the MWS terms hold no per-dimension KL to clamp.
        """
        if free_bits > 0:
            raise ValueError(
                f"beta_tcvae does not support free bits (got free_bits={free_bits}); "
                "set train.free_bits to 0"
            )
        mi, tc, dim_kl = mws_decomposition(z, post, self.dataset_size or z.shape[0])
        c = self.config
        extras = {"mi": mi.mean().detach(), "tc": tc.mean().detach(),
                  "dim_kl": dim_kl.mean().detach()}  # fmt: skip
        return 1.0, c.alpha * mi + c.beta * tc + c.gamma * dim_kl, extras

    def notes(self) -> dict[str, str]:
        return {
            "objective": f"β-TCVAE (arXiv 1802.04942): recon + {self.config.alpha}·MI + "
            f"{self.config.beta}·TC + {self.config.gamma}·dim-KL, minibatch-weighted sampling "
            f"with N = {self.dataset_size}; `kl` is the plain KL(q(z|x) || N(0, I))"
        }
