"""Weather and light per episode: sky colour, light colour and intensity, fog.

The town bakes its sun direction into vertex colours once; weather changes only what is cheap at
run time: a colour scale over the whole scene (light colour × intensity), the sky (clear colour)
and fog. The software rasteriser has neither fog nor a readable depth buffer, so fog is applied
in screen space: each image row is blended toward the fog colour by ``1 − exp(−density · d)``,
where ``d`` is the distance to the ground seen along that row (capped at the horizon). Near the
horizon everything fades, the road ahead stays clear — what fog mostly does to a driver's view.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

WEATHERS = ("clear", "overcast", "fog", "dusk", "night")
"""Named presets; ``"random"`` picks one (and jitters it) per episode."""


@dataclass(frozen=True)
class Weather:
    """What the sky and light look like.

    Attributes:
        name: preset name.
        tint: light colour × intensity multiplied into every surface, RGB in [0, 1.5].
        sky: sky (clear) colour, RGB in [0, 1]; ``None`` keeps the town's time-of-day sky.
        fog_density: exponential fog density per metre (0 = none).
        fog_color: RGB in [0, 1].
    """

    name: str
    tint: tuple[float, float, float] = (1.0, 1.0, 1.0)
    sky: tuple[float, float, float] | None = None
    fog_density: float = 0.0
    fog_color: tuple[float, float, float] = (0.7, 0.72, 0.75)


_PRESETS = {
    "clear": Weather("clear"),
    "overcast": Weather(
        "overcast", (0.82, 0.84, 0.88), (0.62, 0.64, 0.67), 0.004, (0.62, 0.64, 0.67)
    ),
    "fog": Weather("fog", (0.8, 0.8, 0.82), (0.72, 0.73, 0.75), 0.025, (0.72, 0.73, 0.75)),
    "dusk": Weather("dusk", (1.0, 0.72, 0.55), (0.82, 0.5, 0.36), 0.003, (0.6, 0.45, 0.4)),
    "night": Weather("night", (0.32, 0.36, 0.5), (0.05, 0.06, 0.12), 0.006, (0.05, 0.06, 0.1)),
}


def make_weather(name: str, rng: np.random.Generator | None = None) -> Weather:
    """The preset ``name``, or with ``"random"`` a preset drawn and jittered from ``rng``."""
    if name == "random":
        if rng is None:
            raise ValueError("weather='random' needs an rng")
        base = _PRESETS[WEATHERS[int(rng.integers(len(WEATHERS)))]]
        gain = float(rng.uniform(0.85, 1.15))
        tint = tuple(float(np.clip(c * gain, 0.0, 1.5)) for c in base.tint)
        fog = base.fog_density * float(rng.uniform(0.5, 1.5))
        return Weather(base.name, tint, base.sky, fog, base.fog_color)  # type: ignore[arg-type]
    if name not in _PRESETS:
        raise ValueError(f"weather={name!r} is not one of {(*WEATHERS, 'random')}")
    return _PRESETS[name]


def fog_weights(
    height: int,
    vfov_deg: float,
    pitch_deg: float,
    cam_height: float,
    density: float,
    horizon_distance: float = 250.0,
) -> np.ndarray:
    """Per-row fog blend weights, shape (height, 1, 1), for a camera over flat ground."""
    rows = (np.arange(height) + 0.5) / height  # 0 = top
    half = np.radians(vfov_deg) / 2
    # Angle below the horizon of each row's centre ray.
    below = -np.radians(pitch_deg) + np.arctan((2 * rows - 1) * np.tan(half))
    dist = np.where(below > 1e-3, cam_height / np.tan(np.maximum(below, 1e-3)), horizon_distance)
    dist = np.minimum(dist, horizon_distance)
    return (1.0 - np.exp(-density * dist)).astype(np.float32)[:, None, None]


def apply_fog(
    img: np.ndarray, weights: np.ndarray, color: tuple[float, float, float]
) -> np.ndarray:
    """Blend ``img`` (uint8 H×W×3) toward ``color`` by per-row ``weights``."""
    fog = np.asarray(color, np.float32) * 255.0
    out = img.astype(np.float32) * (1.0 - weights) + fog * weights
    return out.astype(np.uint8)
