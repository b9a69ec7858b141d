"""Which image shapes each architecture family takes, known without torch.

Sweep validation checks a trial's (C, H, W) against `CHECKS[architecture]` without importing the
model code; `variants.architectures` builds its families on the same checks, and refuses to
import when a family has no entry here.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["CHECKS", "RESNET_MAX_MAP", "RESNET_MIN_DOWNSAMPLINGS", "Shape", "resnet_downsamplings"]

Shape = tuple[int, int, int]  # (C, H, W)

# Downsample until the feature map side is at most this (but always at least twice), so the
# dense layer stays small: 16 -> 4, 32 -> 8, 64 -> 8 px.
RESNET_MAX_MAP = 8
RESNET_MIN_DOWNSAMPLINGS = 2


def any_shape(shape: Shape) -> str | None:
    """Every shape is allowed (the MLPs flatten it): always None."""
    return None


def conv4_check(shape: Shape) -> str | None:
    """Why `conv4` cannot take (C, H, W), or None: it needs square sides that are multiples
    of 16 (four stride-2 convolutions)."""
    _, h, w = shape
    if h != w or h < 16 or h % 16:
        return f"conv4 needs square images with a side that is a multiple of 16; got {h}x{w}"
    return None


def resnet_downsamplings(side: int) -> int | None:
    """How many stride-2 stages `resnet` uses for an image side, or None if it cannot.

    The side is halved at least `RESNET_MIN_DOWNSAMPLINGS` times and then until it is at most
    `RESNET_MAX_MAP`; every halving must be exact (the decoder's transposed convolutions double
    the side, so an odd side could not be restored).
    """
    n = 0
    while n < RESNET_MIN_DOWNSAMPLINGS or side > RESNET_MAX_MAP:
        if side % 2:
            return None
        side //= 2
        n += 1
    return n


def resnet_check(shape: Shape) -> str | None:
    """Why `resnet` cannot take (C, H, W), or None: square, side >= 16 halving exactly."""
    _, h, w = shape
    if h != w or h < 16 or resnet_downsamplings(h) is None:
        return (
            "resnet needs square images with a side >= 16 that halves exactly down to <= 8 px "
            f"(e.g. 16, 28, 32, 64); got {h}x{w}"
        )
    return None


# Family name -> why an image shape is unsupported (None: supported); the order of listings.
CHECKS: dict[str, Callable[[Shape], str | None]] = {
    "mlp2": any_shape,
    "conv4": conv4_check,
    "mlp4": any_shape,
    "resnet": resnet_check,
}
