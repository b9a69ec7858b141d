"""A test plugin: a β-VAE whose loss turns NaN after 30 training steps (a diverging trial)."""

import torch

from variants.registry import register
from variants.vae import BetaVAE

NAN_AFTER = 30


@register("nan_vae")
class NaNVAE(BetaVAE):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls = 0

    def loss(self, x, y=None, **kwargs):
        out = super().loss(x, y, **kwargs)
        if self.training:
            self.calls += 1
            if self.calls > NAN_AFTER:
                out.total = out.total * torch.tensor(float("nan"))
        return out
