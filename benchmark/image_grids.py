"""Labelled image grids for MLflow's image view: rows named, tiles large enough to see.

The plain grids (`reconstructions.png`, `samples.png`) stay as they are for the report; these
labelled copies are what a trial logs with `mlflow.log_image`, where runs are compared side by
side and 16- or 32-pixel tiles at 1x would be specks.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont
from torchvision.utils import make_grid

TILE_PX = 64  # tiles are upscaled (nearest neighbour, integer factor) to at least this side
_PAD = 2
_MARGIN = 118  # left margin for the row labels, px
_TITLE = 26  # top margin for the title, px


def labelled_grid(
    images: torch.Tensor, row_labels: list[str], title: str, per_row: int = 8
) -> Image.Image:
    """A grid of `images` (n, C, H, W), values in [0, 1], `per_row` per row, as an RGB image.

    Each tile is upscaled by an integer factor to at least `TILE_PX` pixels; row i is labelled
    `row_labels[i % len(row_labels)]` in the left margin and the grid carries `title` on top.
    Raises ValueError if `images` is not 4-d.
    """
    if images.dim() != 4:
        raise ValueError(f"images must be (n, C, H, W), got shape {tuple(images.shape)}")
    side = images.shape[-1]
    factor = max(1, -(-TILE_PX // side))  # ceil
    big = F.interpolate(images.float().clamp(0, 1), scale_factor=factor, mode="nearest")
    grid = make_grid(big, nrow=per_row, padding=_PAD, pad_value=0.5)
    array = (grid.permute(1, 2, 0).mul(255).round().to(torch.uint8)).cpu().numpy()
    body = Image.fromarray(array).convert("RGB")
    canvas = Image.new("RGB", (body.width + _MARGIN, body.height + _TITLE), "white")
    canvas.paste(body, (_MARGIN, _TITLE))
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=15)
    draw.text((6, 5), title, fill="black", font=font)
    tile = big.shape[-2]
    n_rows = -(-images.shape[0] // per_row)
    for row in range(n_rows):
        y = _TITLE + _PAD + row * (tile + _PAD) + tile // 2
        label = row_labels[row % len(row_labels)]
        draw.text((6, y), label, fill="black", font=font, anchor="lm")
    return canvas
