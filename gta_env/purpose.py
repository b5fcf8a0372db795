"""The purpose vector: where the car should go, relative to the car."""

from __future__ import annotations

import numpy as np


def purpose_vector(
    position: tuple[float, float],
    heading: float,
    purpose: tuple[float, float],
    distance_scale: float,
    toward: tuple[float, float] | None = None,
) -> np.ndarray:
    """``[distance / distance_scale clipped to [0, 1], sin(bearing), cos(bearing)]`` (float32).

    The bearing is the angle from the car's forward direction to the purpose point, positive to
    the right: a point straight ahead gives ``(d, 0, 1)``, one to the right ``(d, 1, 0)``.
    With ``toward`` (a point on the planned route a little ahead), the bearing points there
    instead, while the distance stays the straight-line distance to the purpose point.
    """
    dx, dy = purpose[0] - position[0], purpose[1] - position[1]
    distance = float(np.hypot(dx, dy))
    if toward is not None:
        dx, dy = toward[0] - position[0], toward[1] - position[1]
    forward = dx * -np.sin(heading) + dy * np.cos(heading)
    right = dx * np.cos(heading) + dy * np.sin(heading)
    bearing = float(np.arctan2(right, forward)) if np.hypot(dx, dy) > 1e-6 else 0.0
    return np.array(
        [min(distance / distance_scale, 1.0), np.sin(bearing), np.cos(bearing)], dtype=np.float32
    )
