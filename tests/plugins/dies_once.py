"""A test plugin: a β-VAE whose worker process dies (os._exit, as in an OOM kill) after 120
training steps of its first attempt; a marker file next to the trial's checkpoint says the
death has happened, so the retry trains to the end."""

import os
from pathlib import Path

from variants.registry import register
from variants.vae import BetaVAE

DIE_AFTER = 120
MARKER = Path(os.environ.get("VAEBENCH_TEST_DIES_ONCE_MARKER", "/tmp/vaebench-dies-once"))


@register("dies_once_vae")
class DiesOnceVAE(BetaVAE):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls = 0

    def loss(self, x, y=None, **kwargs):
        if self.training:
            self.calls += 1
            if self.calls > DIE_AFTER and not MARKER.exists():
                MARKER.write_text("died")
                os._exit(1)
        return super().loss(x, y, **kwargs)
