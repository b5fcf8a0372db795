"""Stuck detection: did the car move far enough over a time window?"""

from __future__ import annotations

from collections import deque

import numpy as np


class StuckDetector:
    """The original's unstuck check: stuck if the car moved less than ``min_distance`` metres
    between the oldest and newest of the last ``window`` positions.

    The window must be full before the car can be stuck, so a fresh start (or a teleport,
    after :meth:`reset`) always gets a full window to get going.
    """

    def __init__(self, *, window: int, min_distance: float) -> None:
        if window < 2:
            raise ValueError(f"window must be >= 2 frames, got {window}")
        self.window = window
        self.min_distance = min_distance
        self._positions: deque[tuple[float, float]] = deque(maxlen=window)

    def reset(self) -> None:
        """Forget the history (after a teleport or a reset)."""
        self._positions.clear()

    def update(self, position: tuple[float, float]) -> bool:
        """Record ``position``; True if the car is stuck now."""
        self._positions.append(position)
        if len(self._positions) < self.window:
            return False
        (x0, y0), (x1, y1) = self._positions[0], self._positions[-1]
        return bool(np.hypot(x1 - x0, y1 - y0) < self.min_distance)
