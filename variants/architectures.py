"""Encoder and decoder families, interchangeable across variants.

An encoder maps images (B, C, H, W) to a feature vector (B, out_dim); a decoder maps a vector
(B, in_dim) to Bernoulli logits (B, C, H, W). Variants put their own heads on top (for a Gaussian
posterior, out_dim = 2 * latent_dim). A new family is one `Architecture(...)` entry below.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

Shape = tuple[int, int, int]


@dataclass(frozen=True)
class Architecture:
    name: str
    description: str
    encoder: Callable[[Shape, int], nn.Module]
    decoder: Callable[[int, Shape], nn.Module]
    check: Callable[[Shape], str | None]  # why the image shape is unsupported, or None


def _any_shape(shape: Shape) -> str | None:
    return None


def _mlp(depth: int, hidden: int) -> tuple[Callable, Callable]:
    def encoder(shape: Shape, out_dim: int) -> nn.Module:
        layers: list[nn.Module] = [nn.Flatten()]
        width = math.prod(shape)
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        layers.append(nn.Linear(width, out_dim))
        return nn.Sequential(*layers)

    def decoder(in_dim: int, shape: Shape) -> nn.Module:
        layers: list[nn.Module] = []
        width = in_dim
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        layers += [nn.Linear(width, math.prod(shape)), nn.Unflatten(1, shape)]
        return nn.Sequential(*layers)

    return encoder, decoder


def _conv4_check(shape: Shape) -> str | None:
    _, h, w = shape
    if h != w or h < 16 or h % 16:
        return f"conv4 needs square images with a side that is a multiple of 16; got {h}x{w}"
    return None


def _conv4_encoder(shape: Shape, out_dim: int) -> nn.Module:
    # Burgess et al. 2018 / disentanglement_lib `conv_encoder`: four 4x4 stride-2 convolutions
    # (32, 32, 64, 64 channels), then a 256-unit dense layer.
    c, h, _ = shape
    side = h // 16
    return nn.Sequential(
        nn.Conv2d(c, 32, 4, 2, 1), nn.ReLU(),
        nn.Conv2d(32, 32, 4, 2, 1), nn.ReLU(),
        nn.Conv2d(32, 64, 4, 2, 1), nn.ReLU(),
        nn.Conv2d(64, 64, 4, 2, 1), nn.ReLU(),
        nn.Flatten(),
        nn.Linear(64 * side * side, 256), nn.ReLU(),
        nn.Linear(256, out_dim),
    )  # fmt: skip


def _conv4_decoder(in_dim: int, shape: Shape) -> nn.Module:
    # The mirror image (disentanglement_lib `deconv_decoder`).
    c, h, _ = shape
    side = h // 16
    return nn.Sequential(
        nn.Linear(in_dim, 256), nn.ReLU(),
        nn.Linear(256, 64 * side * side), nn.ReLU(),
        nn.Unflatten(1, (64, side, side)),
        nn.ConvTranspose2d(64, 64, 4, 2, 1), nn.ReLU(),
        nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.ReLU(),
        nn.ConvTranspose2d(32, 32, 4, 2, 1), nn.ReLU(),
        nn.ConvTranspose2d(32, c, 4, 2, 1),
    )  # fmt: skip


_mlp2_enc, _mlp2_dec = _mlp(depth=2, hidden=400)

ARCHITECTURES: dict[str, Architecture] = {
    a.name: a
    for a in [
        Architecture(
            "mlp2", "MLP, 2 hidden layers of 400 ReLU units", _mlp2_enc, _mlp2_dec, _any_shape
        ),
        Architecture(
            "conv4",
            "Burgess et al. conv: 4 stride-2 4x4 convs (32-32-64-64) + 256 dense",
            _conv4_encoder,
            _conv4_decoder,
            _conv4_check,
        ),
    ]
}


def get_architecture(name: str) -> Architecture:
    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise KeyError(
            f"unknown architecture {name!r}; known: {', '.join(sorted(ARCHITECTURES))}"
        ) from None
