"""The built-in variants, declared: each one's hyper-parameters and its registry row.

Nothing here imports torch: a sweep file is validated against these declarations (parameter
names, types, ranges; which variants need labels, have continuous latents, take free bits)
without importing the model code, which `variants.registry` imports on first use.

A new built-in variant is its model file (`variants/<name>.py`, the class decorated with
``@register("<name>")``) plus, here, its `Config` and one `VariantSpec` row in `BUILTINS`.
"""

from __future__ import annotations

from typing import Literal

import pydantic

from variants.declaration import VariantConfig, VariantSpec

__all__ = [
    "BUILTINS",
    "BetaVAEConfig",
    "CVAEConfig",
    "HierarchicalConfig",
    "IWAEConfig",
    "VAEConfig",
    "VQVAEConfig",
]


class VAEConfig(VariantConfig):
    """The standard VAE has no hyper-parameters of its own: β is 1 by definition."""


class BetaVAEConfig(VariantConfig):
    """β-VAE (Higgins et al. 2017): the KL term weighted by `beta`."""

    beta: float = pydantic.Field(4.0, gt=0, description="weight of the KL term")


class CVAEConfig(VariantConfig):
    """Conditional VAE (Sohn et al. 2015): `beta` weights the KL term (1: the plain CVAE)."""

    beta: float = pydantic.Field(1.0, gt=0, description="weight of the KL term")


class IWAEConfig(VariantConfig):
    """IWAE (Burda et al. 2016, arXiv:1509.00519): `k` importance samples in the bound."""

    k: int = pydantic.Field(5, ge=1, description="importance samples per example in the bound")


class VQVAEConfig(VariantConfig):
    """VQ-VAE (van den Oord et al. 2017, arXiv:1711.00937): the codebook and the fitted prior.

    Raises (as a pydantic ValidationError) when the transformer prior's width is not a multiple
    of its number of heads.
    """

    codebook_size: int = pydantic.Field(64, ge=2, description="K, the number of codes")
    code_dim: pydantic.PositiveInt = pydantic.Field(16, description="size of each code vector")
    commitment_cost: pydantic.NonNegativeFloat = pydantic.Field(
        0.25, description="weight of ||z_e - sg[e]||² in the loss"
    )
    ema: bool = pydantic.Field(False, description="update the codebook by EMA, not by gradient")
    ema_decay: float = pydantic.Field(
        0.99, ge=0, lt=1, description="decay of the EMA codebook and of the code usage"
    )
    dead_code_threshold: pydantic.NonNegativeFloat = pydantic.Field(
        0.1,
        description="restart codes whose usage EMA (1 = uniform use) falls below this; 0: off",
    )
    prior: Literal["transformer", "made"] = pydantic.Field(
        "transformer", description="the autoregressive prior fitted after training"
    )
    prior_steps: pydantic.PositiveInt = 1000
    prior_lr: pydantic.PositiveFloat = 3e-3
    prior_batch_size: pydantic.PositiveInt = 64
    prior_width: pydantic.PositiveInt = pydantic.Field(
        64, description="transformer model width, or MADE hidden units per layer (>= P)"
    )
    prior_layers: pydantic.PositiveInt = 2
    prior_heads: pydantic.PositiveInt = pydantic.Field(4, description="transformer only")

    @pydantic.model_validator(mode="after")
    def _heads_divide_width(self) -> VQVAEConfig:
        if self.prior == "transformer" and self.prior_width % self.prior_heads:
            raise ValueError(
                f"prior_width ({self.prior_width}) must be a multiple of prior_heads "
                f"({self.prior_heads})"
            )
        return self


class HierarchicalConfig(VariantConfig):
    """Hierarchical VAE (Sønderby et al. 2016, arXiv:1602.02282): level sizes and widths."""

    beta: float = pydantic.Field(1.0, gt=0, description="weight of the summed KL term")
    lower_dims: list[pydantic.PositiveInt] = pydantic.Field(
        default_factory=lambda: [16],
        min_length=1,
        description="sizes of the levels below the top, bottom first (the top has latent_dim)",
    )
    hidden: pydantic.PositiveInt = pydantic.Field(
        256, description="width of the deterministic bottom-up path and of the prior MLPs"
    )


# One row per built-in variant: its name, where its class lives, and what validation needs.
BUILTINS: tuple[VariantSpec, ...] = (
    VariantSpec(
        "vae", "variants.vae:VAE", VAEConfig,
        param_hints={"beta": "β is 1 for 'vae' by definition, use 'beta_vae' to vary it"},
    ),
    VariantSpec("beta_vae", "variants.vae:BetaVAE", BetaVAEConfig),
    VariantSpec("cvae", "variants.cvae:CVAE", CVAEConfig, needs_labels=True),
    # IWAE: the importance weights hold no per-dim KL to clamp.
    VariantSpec("iwae", "variants.iwae:IWAE", IWAEConfig, supports_free_bits=False),
    VariantSpec("vqvae", "variants.vqvae:VQVAE", VQVAEConfig, continuous_latents=False),
    VariantSpec("hierarchical", "variants.hierarchical:HierarchicalVAE", HierarchicalConfig),
)  # fmt: skip
