"""Convcam: a backbone's last convolutional activations tiled into one RGB image.

Every channel of the last feature map becomes one tile (normalised to its own range so weak and
strong channels are both visible), tiles are laid out in a near-square grid, and the grid is
tinted with one colour per backbone: a dual-backbone model shows its hood backbone and its second
camera's backbone side by side in two colours. Works on any frame of a trained model.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from imitation.models import DrivingModel, as_model_inputs

COLOURS = ((1.0, 0.75, 0.2), (0.25, 0.8, 1.0))
"""Tint of the hood backbone (amber) and of the second camera's backbone (cyan)."""


def tile_activations(
    maps: np.ndarray, *, colour: tuple[float, float, float] = COLOURS[0], gap: int = 1
) -> np.ndarray:
    """Tile ``(C, h, w)`` activations into one uint8 RGB image.

    Args:
        maps: activations of one sample.
        colour: RGB tint in [0, 1].
        gap: pixels between tiles.

    Returns:
        uint8 ``(rows*(h+gap)-gap, cols*(w+gap)-gap, 3)``.
    """
    maps = np.asarray(maps, np.float32)
    channels, h, w = maps.shape
    cols = math.ceil(math.sqrt(channels * h / max(w, 1)))  # near-square image
    cols = max(1, min(channels, cols))
    rows = math.ceil(channels / cols)
    lo = maps.reshape(channels, -1).min(axis=1)[:, None, None]
    hi = maps.reshape(channels, -1).max(axis=1)[:, None, None]
    norm = (maps - lo) / np.maximum(hi - lo, 1e-6)
    grid = np.zeros((rows * (h + gap) - gap, cols * (w + gap) - gap), np.float32)
    for c in range(channels):
        r, q = divmod(c, cols)
        grid[r * (h + gap) : r * (h + gap) + h, q * (w + gap) : q * (w + gap) + w] = norm[c]
    rgb = grid[..., None] * np.asarray(colour, np.float32)
    return np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)


@torch.no_grad()
def convcam(
    model: DrivingModel, obs: Mapping[str, Any], *, index: int = 0, gap: int = 1
) -> np.ndarray:
    """The Convcam image of one observation.

    Args:
        model: a driving model (any backbone).
        obs: one observation as the wrapped env gives it (or a batch; ``index`` picks the row).
            Only the camera keys are used.
        index: row of a batch to show.
        gap: pixels between tiles.

    Returns:
        uint8 RGB image; for dual-backbone models the two grids side by side in two colours.
    """
    device = next(model.parameters()).device
    cams = {k: v for k, v in obs.items() if k in ("hood", "cinematic")}
    maps = model.features(as_model_inputs(cams, device=device)[0])
    images = [
        tile_activations(m[index].float().cpu().numpy(), colour=COLOURS[i % 2], gap=gap)
        for i, m in enumerate(maps)
    ]
    if len(images) == 1:
        return images[0]
    height = max(im.shape[0] for im in images)
    padded = [np.pad(im, ((0, height - im.shape[0]), (0, 0), (0, 0))) for im in images]
    spacer = np.zeros((height, 4, 3), np.uint8)
    return np.concatenate([padded[0], spacer, *padded[1:]], axis=1)
