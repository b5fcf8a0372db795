"""Camera transforms on the Dict observation: resize and greyscale.

Gymnasium's :class:`~gymnasium.wrappers.ResizeObservation` and
:class:`~gymnasium.wrappers.GrayscaleObservation` work on a whole ``Box`` observation only; ours
apply the same transform to the camera keys of a ``Dict`` observation and leave the other keys
alone. Both are built on Gymnasium's :class:`~gymnasium.wrappers.TransformObservation`.

The array functions :func:`resize_frames` and :func:`greyscale_frames` are what the wrappers call,
and what the trainer calls on stored frames, so model inputs and env observations are made by the
same code.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.wrappers import TransformObservation

CAMERA_KEYS = ("hood", "cinematic")
"""Observation keys that hold camera frames (uint8, H×W×C)."""

# BT.601 luma weights, the same as OpenCV's and Gymnasium's greyscale conversion.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def resize_frames(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize uint8 frames to ``size`` = (height, width) with area interpolation.

    Args:
        frames: uint8 array ``(H, W, C)`` or a batch ``(B, H, W, C)``.
        size: target (height, width).

    Returns:
        uint8 array of the same rank with the new height and width (channels unchanged).
    """
    height, width = size
    if frames.shape[-3:-1] == (height, width):
        return frames
    if frames.ndim == 4:
        return (
            np.stack([resize_frames(f, size) for f in frames])
            if len(frames)
            else (np.zeros((0, height, width, frames.shape[-1]), dtype=frames.dtype))
        )
    out = cv2.resize(frames, (width, height), interpolation=cv2.INTER_AREA)
    if out.ndim == 2:  # cv2 drops a single channel axis
        out = out[..., None]
    return out


def greyscale_frames(frames: np.ndarray) -> np.ndarray:
    """Convert RGB uint8 frames to one luma channel, keeping the channel axis.

    Args:
        frames: uint8 array ``(..., 3)``.

    Returns:
        uint8 array ``(..., 1)``.
    """
    if frames.shape[-1] != 3:
        raise ValueError(f"greyscale needs RGB frames (last axis 3), got shape {frames.shape}")
    luma = frames.astype(np.float32) @ _LUMA
    return np.clip(np.rint(luma), 0, 255).astype(np.uint8)[..., None]


def _camera_keys(space: spaces.Dict, keys: Sequence[str] | None) -> tuple[str, ...]:
    if not isinstance(space, spaces.Dict):
        raise TypeError(f"camera wrappers need a Dict observation space, got {space}")
    wanted = tuple(keys) if keys is not None else CAMERA_KEYS
    found = tuple(k for k in wanted if k in space.spaces)
    if keys is not None and len(found) != len(wanted):
        missing = sorted(set(wanted) - set(found))
        raise ValueError(f"observation has no camera key(s) {missing}; it has {list(space.spaces)}")
    if not found:
        raise ValueError(f"observation has none of the camera keys {list(wanted)}")
    return found


class ResizeCameras(TransformObservation):
    """Resize the camera frames of a Dict observation.

    Args:
        env: environment with a Dict observation holding uint8 ``(H, W, C)`` camera keys.
        size: target (height, width) for every camera key, or a mapping key → (height, width).
        keys: camera keys to resize; default: those of ``("hood", "cinematic")`` present.
    """

    def __init__(
        self,
        env: gym.Env,
        size: tuple[int, int] | dict[str, tuple[int, int]],
        *,
        keys: Sequence[str] | None = None,
    ) -> None:
        cams = _camera_keys(env.observation_space, keys)  # type: ignore[arg-type]
        sizes = {k: tuple(size[k]) if isinstance(size, dict) else tuple(size) for k in cams}
        for key, s in sizes.items():
            if len(s) != 2 or min(s) < 1:
                raise ValueError(f"size for {key!r} must be (height, width) >= 1, got {s}")
        new = dict(env.observation_space.spaces)  # type: ignore[attr-defined]
        for key in cams:
            channels = new[key].shape[-1]
            new[key] = spaces.Box(0, 255, (*sizes[key], channels), np.uint8)
        self.sizes = sizes

        def transform(obs: dict) -> dict:
            out = dict(obs)
            for key in cams:
                out[key] = resize_frames(obs[key], sizes[key])  # type: ignore[arg-type]
            return out

        super().__init__(env, transform, spaces.Dict(new))


class GreyscaleCameras(TransformObservation):
    """Convert the camera frames of a Dict observation to one luma channel ``(H, W, 1)``.

    Args:
        env: environment with a Dict observation holding uint8 RGB camera keys.
        keys: camera keys to convert; default: those of ``("hood", "cinematic")`` present.
    """

    def __init__(self, env: gym.Env, *, keys: Sequence[str] | None = None) -> None:
        cams = _camera_keys(env.observation_space, keys)  # type: ignore[arg-type]
        new = dict(env.observation_space.spaces)  # type: ignore[attr-defined]
        for key in cams:
            new[key] = spaces.Box(0, 255, (*new[key].shape[:2], 1), np.uint8)

        def transform(obs: dict) -> dict:
            out = dict(obs)
            for key in cams:
                out[key] = greyscale_frames(obs[key])
            return out

        super().__init__(env, transform, spaces.Dict(new))
