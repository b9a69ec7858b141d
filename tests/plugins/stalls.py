"""A test plugin: a β-VAE that, while `$VAEBENCH_TEST_STALL_FROM_BETA` is set, slows to 0.2 s a
step after step 60 for β at or above that value. A test can then kill a sweep while those trials
are certainly mid-training (past their step-50 checkpoint), with no race against their end. The
numerics are the β-VAE's: the stall only sleeps."""

import os
import time

from variants.registry import register
from variants.vae import BetaVAE

STALL_AFTER = 60


@register("stalling_vae")
class StallingVAE(BetaVAE):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls = 0

    def loss(self, x, y=None, **kwargs):
        stall_from = os.environ.get("VAEBENCH_TEST_STALL_FROM_BETA")
        if self.training:
            self.calls += 1
            if stall_from and self.beta >= float(stall_from) and self.calls > STALL_AFTER:
                time.sleep(0.2)
        return super().loss(x, y, **kwargs)
