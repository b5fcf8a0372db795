"""Label-preserving augmentation: one set of draws, applied on the loader thread or the device."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import torch

from imitation.train.config import AugmentConfig

__all__ = [
    "LUMA",
    "AugmentParams",
    "augment_batch",
    "augment_frames",
    "draw_augment_params",
    "flip_labels",
]

AugmentParams = dict[str, np.ndarray]
"""Per-sample augmentation draws of one batch: ``brightness``, ``contrast``, ``saturation``
(float32 factors) and ``flip`` (bool), each ``(B,)``; a key is absent when that part is off."""

LUMA = (0.299, 0.587, 0.114)


def draw_augment_params(
    n: int, config: AugmentConfig, rng: np.random.Generator, *, steering: int | None
) -> AugmentParams:
    """Draw one batch's augmentation factors (the same draws, in the same order, wherever the
    augmentation is then applied: loader thread or device)."""
    params: AugmentParams = {}
    if config.brightness or config.contrast or config.saturation:
        for name in ("brightness", "contrast", "saturation"):
            amount = getattr(config, name)
            params[name] = rng.uniform(1 - amount, 1 + amount, n).astype(np.float32)
    if config.flip and steering is not None:
        params["flip"] = rng.random(n) < config.flip
    return params


def flip_labels(batch: dict[str, np.ndarray], flip: np.ndarray, steering: int) -> None:
    """Negate what a horizontal flip mirrors, in place: steering (label, executed and previous
    action, history) and the purpose bearing's sine (left ↔ right)."""
    if not flip.any():
        return
    for key in ("action", "executed_action", "prev_action"):
        if key in batch:
            batch[key][flip, steering] *= -1
    batch["purpose"][flip, 1] *= -1
    if "history" in batch:
        a = batch["history"].shape[-1] - 4
        batch["history"][flip, :, steering] *= -1
        batch["history"][flip, :, a + 2] *= -1


def augment_frames(frames: torch.Tensor, params: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """Colour jitter and horizontal flips of a uint8 frame batch ``(B, H, W, C)`` with torch ops.

    The same arithmetic as :func:`augment_batch` (float32, rounded back to uint8), so it runs
    wherever the frames are: on the GPU after the host→device copy, the loader thread then only
    draws the factors and flips the labels. Labels are not touched here (see :func:`flip_labels`).

    Args:
        frames: uint8 ``(B, H, W, C)``; C = 3 (or 1) × stacked frames.
        params: :data:`AugmentParams` as tensors on the frames' device.

    Returns:
        a new uint8 tensor of the same shape (``frames`` itself when ``params`` is empty).
    """
    out = frames
    b, h, w, c = frames.shape
    if "brightness" in params:
        per = 3 if c % 3 == 0 else 1
        img = frames.float().view(b, h, w, c // per, per)
        bright = params["brightness"].view(b, 1, 1, 1, 1)
        contrast = params["contrast"].view(b, 1, 1, 1, 1)
        img = img * bright
        mean = img.mean(dim=(1, 2, 4), keepdim=True)
        img = (img - mean) * contrast + mean
        if per == 3:
            luma = torch.tensor(LUMA, dtype=img.dtype, device=img.device)
            grey = (img * luma).sum(dim=-1, keepdim=True)
            img = (img - grey) * params["saturation"].view(b, 1, 1, 1, 1) + grey
        out = (img + 0.5).clamp_(0, 255).to(torch.uint8).view(b, h, w, c)
    if "flip" in params:
        out = torch.where(params["flip"].view(b, 1, 1, 1), out.flip(2), out)
    return out


def augment_batch(
    batch: dict[str, np.ndarray],
    config: AugmentConfig,
    rng: np.random.Generator,
    *,
    steering: int | None,
    camera_keys: Iterable[str] = ("hood", "cinematic"),
) -> dict[str, np.ndarray]:
    """Colour jitter and label-consistent horizontal flips, in place on a prepared batch (numpy).

    Args:
        batch: prepared batch (uint8 cameras ``(B, H, W, C)``; ``action``, ``purpose``, and
            optionally ``prev_action`` and ``history``).
        config: what to apply.
        rng: generator (one per step, for determinism).
        steering: column of steering in the action vector (``None``: no flips).
        camera_keys: camera keys to augment.

    Returns:
        the same batch.
    """
    cams = [k for k in camera_keys if k in batch]
    params = draw_augment_params(len(batch["action"]), config, rng, steering=steering)
    if "brightness" in params:
        b, c, s = (params[k] for k in ("brightness", "contrast", "saturation"))
        for key in cams:
            img = batch[key].astype(np.float32)
            per = 3 if img.shape[-1] % 3 == 0 else 1
            img = img.reshape(*img.shape[:-1], -1, per)  # (B, H, W, frames, per)
            img *= b[:, None, None, None, None]
            mean = img.mean(axis=(1, 2, 4), keepdims=True)
            img = (img - mean) * c[:, None, None, None, None] + mean
            if per == 3:
                grey = img @ np.array(LUMA, np.float32)
                img = (img - grey[..., None]) * s[:, None, None, None, None] + grey[..., None]
            batch[key] = np.clip(img + 0.5, 0, 255).astype(np.uint8).reshape(batch[key].shape)
    if "flip" in params and steering is not None:
        flip = params["flip"]
        if flip.any():
            for key in cams:
                batch[key][flip] = batch[key][flip][:, :, ::-1]
            flip_labels(batch, flip, steering)
    return batch
