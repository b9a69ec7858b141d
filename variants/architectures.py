"""Encoder and decoder families, interchangeable across variants.

An encoder maps images (B, C, H, W) to a feature vector (B, out_dim); a decoder maps a vector
(B, in_dim) to the likelihood's parameters (B, P·C, H, W), Bernoulli logits when P = 1 (the
variant passes its likelihood's `param_shape`, see `variants.likelihoods`). Variants put their
own heads on top (for a Gaussian posterior, out_dim = 2 * latent_dim). Every encoder ends in a
linear layer (no nonlinearity), so a variant's head may start with one. A new family is one
`Architecture(...)` entry below.

The families (`ARCHITECTURES`):

- `mlp2`: 2 hidden layers of 400 ReLU units (Kingma & Welling 2014); any image shape.
- `mlp4`: 4 hidden layers of 400 ReLU units; any image shape. The width is mlp2's, so that an
  mlp2-vs-mlp4 comparison varies depth alone.
- `conv4`: Burgess et al. 2018 / disentanglement_lib conv net; square images, side a multiple of
  16.
- `resnet`: a small residual conv net in the style of VQ-VAE (van den Oord et al. 2017): 4x4
  stride-2 convolutions, two residual blocks, a dense layer; square images whose side halves
  exactly at every stride-2 stage (see `resnet_downsamplings`), e.g. 16, 28, 32, 64.

`mlp2` and `conv4` are frozen: committed results depend on their exact layers.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from variants.shapes import (  # noqa: F401 - resnet_downsamplings is part of this module's API
    CHECKS,
    RESNET_MAX_MAP,
    RESNET_MIN_DOWNSAMPLINGS,
    Shape,
    resnet_downsamplings,
)


@dataclass(frozen=True)
class Architecture:
    """An encoder/decoder family, selected by the sweep's `architecture` key.

    `encoder(image_shape, out_dim)` maps images (B, C, H, W) to (B, out_dim); `decoder(in_dim,
    param_shape)` maps (B, in_dim) to decoder outputs (B, *param_shape) (the likelihood's
    parameters). `check(image_shape)` says why a shape is unsupported, or returns None.
    """

    name: str
    description: str
    encoder: Callable[[Shape, int], nn.Module]
    decoder: Callable[[int, Shape], nn.Module]
    check: Callable[[Shape], str | None]  # why the image shape is unsupported, or None


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


# --- resnet ---------------------------------------------------------------------------------

# Channels of every stride-2 stage and of the residual stack, and the residual blocks'
# bottleneck (the VQ-VAE paper: 256 and 256; Sonnet's example: 128 and 32). 64 keeps training at
# a few hundred 32x32 images/s on one CPU core; 128 ran ~2.5x slower here.
RESNET_WIDTH = 64
RESNET_BOTTLENECK = 32


class ResidualBlock(nn.Module):
    """x + conv1x1(relu(conv3x3(relu(x)))) at constant width (van den Oord et al. 2017)."""

    def __init__(self, channels: int, bottleneck: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReLU(),
            nn.Conv2d(channels, bottleneck, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(bottleneck, channels, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x + body(x), shape (B, channels, H, W) unchanged."""
        return x + self.body(x)


def _resnet_stages(shape: Shape) -> int:
    """The number of stride-2 stages for a shape; ValueError (the check's reason) if unsupported."""
    why = CHECKS["resnet"](shape)
    if why:
        raise ValueError(why)
    return resnet_downsamplings(shape[1])


def _relus_between(layers: list[nn.Module]) -> list[nn.Module]:
    """The layers with a ReLU between consecutive ones (none after the last)."""
    out: list[nn.Module] = []
    for layer in layers:
        out += [nn.ReLU(), layer] if out else [layer]
    return out


def _residual_stack() -> list[nn.Module]:
    return [ResidualBlock(RESNET_WIDTH, RESNET_BOTTLENECK) for _ in range(2)]


def _resnet_encoder(shape: Shape, out_dim: int) -> nn.Module:
    c, h, _ = shape
    n = _resnet_stages(shape)
    widths = [c] + [RESNET_WIDTH] * n
    convs = [nn.Conv2d(a, b, 4, 2, 1) for a, b in itertools.pairwise(widths)]
    side = h >> n
    # The last conv's output enters the residual stack un-activated (pre-activation blocks).
    return nn.Sequential(
        *_relus_between(convs),
        *_residual_stack(),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(RESNET_WIDTH * side * side, out_dim),
    )


def _resnet_decoder(in_dim: int, shape: Shape) -> nn.Module:
    # The mirror image: dense -> feature map -> residual stack -> transposed convs -> logits.
    c, h, _ = shape
    n = _resnet_stages(shape)
    widths = [RESNET_WIDTH] * n + [c]
    deconvs = [nn.ConvTranspose2d(a, b, 4, 2, 1) for a, b in itertools.pairwise(widths)]
    side = h >> n
    return nn.Sequential(
        nn.Linear(in_dim, RESNET_WIDTH * side * side),
        nn.Unflatten(1, (RESNET_WIDTH, side, side)),
        *_residual_stack(),
        nn.ReLU(),
        *_relus_between(deconvs),
    )


_mlp2_enc, _mlp2_dec = _mlp(depth=2, hidden=400)
_mlp4_enc, _mlp4_dec = _mlp(depth=4, hidden=400)

ARCHITECTURES: dict[str, Architecture] = {
    a.name: a
    for a in [
        Architecture(
            "mlp2", "MLP, 2 hidden layers of 400 ReLU units", _mlp2_enc, _mlp2_dec, CHECKS["mlp2"]
        ),
        Architecture(
            "conv4",
            "Burgess et al. conv: 4 stride-2 4x4 convs (32-32-64-64) + 256 dense",
            _conv4_encoder,
            _conv4_decoder,
            CHECKS["conv4"],
        ),
        Architecture(
            "mlp4",
            "MLP, 4 hidden layers of 400 ReLU units (mlp2's width, twice its depth)",
            _mlp4_enc,
            _mlp4_dec,
            CHECKS["mlp4"],
        ),
        Architecture(
            "resnet",
            "VQ-VAE-style ResNet: 4x4 stride-2 convs (64 ch.) to a map of <= 8 px, 2 residual "
            "blocks (3x3 to 32 ch., 1x1 back), dense",
            _resnet_encoder,
            _resnet_decoder,
            CHECKS["resnet"],
        ),
    ]
}


# Validation reads the shape checks without torch (variants.shapes): every family needs one.
if list(ARCHITECTURES) != list(CHECKS):
    raise ImportError("variants.shapes.CHECKS must list every family of ARCHITECTURES, in order")


def get_architecture(name: str) -> Architecture:
    """The registered architecture called `name`.

    Raises KeyError naming the known architectures if there is none.
    """
    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise KeyError(
            f"unknown architecture {name!r}; known: {', '.join(sorted(ARCHITECTURES))}"
        ) from None
