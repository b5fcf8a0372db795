"""One description of how env observations become model inputs.

:class:`Preprocessing` is saved in every checkpoint. The player and the BC policy call
:meth:`Preprocessing.wrap` on an environment; the trainer calls :meth:`Preprocessing.frames` on
stored frames and builds frame stacks and histories with the same functions the wrappers use
(:func:`~wrappers.frame_stack.stack_channels`, :func:`~wrappers.history.history_row`). Model
inputs and env observations therefore come from one definition and cannot drift apart.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from wrappers.camera import GreyscaleCameras, ResizeCameras, greyscale_frames, resize_frames
from wrappers.frame_stack import FrameStackCameras
from wrappers.history import HistoryObservation, PreviousAction


@dataclass(frozen=True, kw_only=True)
class Preprocessing:
    """How observations are turned into model inputs.

    Attributes:
        hood_size: (height, width) the hood camera is resized to; ``None`` keeps the env's size.
        cinematic: whether the model sees the second (cinematic) camera.
        cinematic_size: (height, width) for the cinematic camera; ``None`` keeps the env's size.
        greyscale: convert cameras to one luma channel.
        frame_stack: camera frames stacked on the channel axis (1 = no stacking).
        history: rows of (action, speed, purpose) history (0 = no history).
        prev_action: add the previous executed action (needed by discrete-delta outputs).
    """

    hood_size: tuple[int, int] | None = None
    cinematic: bool = False
    cinematic_size: tuple[int, int] | None = None
    greyscale: bool = False
    frame_stack: int = 1
    history: int = 0
    prev_action: bool = False

    def __post_init__(self) -> None:
        for name in ("hood_size", "cinematic_size"):
            size = getattr(self, name)
            if size is not None:
                size = tuple(int(s) for s in size)
                if len(size) != 2 or min(size) < 1:
                    raise ValueError(f"{name} must be (height, width) >= 1 or None, got {size}")
                object.__setattr__(self, name, size)
        if self.frame_stack < 1:
            raise ValueError(f"frame_stack must be >= 1, got {self.frame_stack}")
        if self.history < 0:
            raise ValueError(f"history must be >= 0, got {self.history}")

    @property
    def channels(self) -> int:
        """Channels of each camera input after greyscale and stacking."""
        return (1 if self.greyscale else 3) * self.frame_stack

    @property
    def camera_keys(self) -> tuple[str, ...]:
        """Camera keys the model reads."""
        return ("hood", "cinematic") if self.cinematic else ("hood",)

    def size_of(self, key: str) -> tuple[int, int] | None:
        """Target (height, width) of a camera key, or ``None`` to keep it."""
        return self.hood_size if key == "hood" else self.cinematic_size

    def frames(self, frames: np.ndarray, key: str = "hood") -> np.ndarray:
        """Resize and greyscale raw uint8 frames ``(..., H, W, 3)`` as the wrappers do."""
        size = self.size_of(key)
        if size is not None:
            frames = resize_frames(frames, size)
        if self.greyscale:
            frames = greyscale_frames(frames)
        return frames

    def wrap(self, env: gym.Env) -> gym.Env:
        """Wrap an environment so that its observations are this model's inputs."""
        keys = self.camera_keys
        sizes = {k: s for k in keys if (s := self.size_of(k)) is not None}
        if sizes:
            env = ResizeCameras(env, sizes, keys=tuple(sizes))
        if self.greyscale:
            env = GreyscaleCameras(env, keys=keys)
        if self.frame_stack > 1:
            env = FrameStackCameras(env, self.frame_stack, keys=keys)
        if self.history:
            env = HistoryObservation(env, self.history)
        if self.prev_action:
            env = PreviousAction(env)
        return env

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (see :meth:`from_dict`)."""
        d = asdict(self)
        for k in ("hood_size", "cinematic_size"):
            if d[k] is not None:
                d[k] = list(d[k])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Preprocessing:
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError``."""
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown preprocessing keys {sorted(unknown)}")
        d = dict(d)
        for k in ("hood_size", "cinematic_size"):
            if d.get(k) is not None:
                d[k] = tuple(d[k])
        return cls(**d)
