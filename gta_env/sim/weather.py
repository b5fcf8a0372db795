"""Weather and light per episode: sky, light colour and intensity, fog, rain, lamps after dark.

Presets (:data:`WEATHERS`): ``clear``, ``overcast``, ``fog``, ``dusk``, ``night``, ``rain``;
``"random"`` draws one per episode from the env RNG and jitters it.

The town bakes its sun direction into vertex colours once; weather changes only what is cheap at
run time:

* a colour scale over the whole scene (light colour × intensity) and the sky (clear colour);
* fog, in screen space (the software rasteriser has neither fog nor a readable depth buffer):
  each image row is blended toward the fog colour by ``1 − exp(−density · d)``, where ``d`` is
  the distance to the ground seen along that row (capped at the horizon). Near the horizon
  everything fades, the road ahead stays clear — what fog mostly does to a driver's view;
* rain: a darker, bluer colour scale on the asphalt layer only (a wet road), and screen-space
  streaks: a few precomputed, seeded layers of short slanted light lines per camera size, cycled
  frame by frame so the rain falls (a fancy-indexed uint8 blend: ~0.01 ms per 90×160 frame);
* lights (``lights`` > 0 at dusk and night): street lamps and the car's lamps glow, their light
  falls on the road (see :mod:`gta_env.sim.lamps`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np

WEATHERS = ("clear", "overcast", "fog", "dusk", "night", "rain")
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
        road: colour scale of the asphalt on top of ``tint`` (a wet road); ``None`` = dry.
        rain: share of the picture's pixels covered by rain streaks (0 = no rain).
        lights: brightness of street lamps and car lamps, 0 (off, daytime) to 1 (night).
    """

    name: str
    tint: tuple[float, float, float] = (1.0, 1.0, 1.0)
    sky: tuple[float, float, float] | None = None
    fog_density: float = 0.0
    fog_color: tuple[float, float, float] = (0.7, 0.72, 0.75)
    road: tuple[float, float, float] | None = None
    rain: float = 0.0
    lights: float = 0.0


_PRESETS = {
    "clear": Weather("clear"),
    "overcast": Weather(
        "overcast", (0.82, 0.84, 0.88), (0.62, 0.64, 0.67), 0.004, (0.62, 0.64, 0.67)
    ),
    "fog": Weather("fog", (0.8, 0.8, 0.82), (0.72, 0.73, 0.75), 0.025, (0.72, 0.73, 0.75)),
    "dusk": Weather(
        "dusk", (0.85, 0.6, 0.5), (0.78, 0.46, 0.36), 0.003, (0.6, 0.45, 0.4), lights=0.6
    ),
    "night": Weather(
        "night", (0.28, 0.32, 0.46), (0.05, 0.06, 0.12), 0.006, (0.05, 0.06, 0.1), lights=1.0
    ),
    "rain": Weather(
        "rain",
        (0.62, 0.65, 0.7),
        (0.5, 0.52, 0.56),
        0.012,
        (0.5, 0.52, 0.56),
        road=(0.62, 0.68, 0.8),
        rain=0.03,
    ),
}


def make_weather(name: str, rng: np.random.Generator | None = None) -> Weather:
    """The preset ``name``, or with ``"random"`` a preset drawn and jittered from ``rng``."""
    if name == "random":
        if rng is None:
            raise ValueError("weather='random' needs an rng")
        base = _PRESETS[WEATHERS[int(rng.integers(len(WEATHERS)))]]
        gain = float(rng.uniform(0.85, 1.15))
        r, g, b = (float(np.clip(c * gain, 0.0, 1.5)) for c in base.tint)
        fog = base.fog_density * float(rng.uniform(0.5, 1.5))
        rain = base.rain * float(rng.uniform(0.6, 1.4))
        return replace(base, tint=(r, g, b), fog_density=fog, rain=rain)
    if name not in _PRESETS:
        raise ValueError(f"weather={name!r} is not one of {(*WEATHERS, 'random')}")
    return _PRESETS[name]


def fog_weights(
    height: int,
    vfov_deg: float,
    pitch_deg: float,
    cam_height: float,
    density: float,
    horizon_distance: float = 70.0,
) -> np.ndarray:
    """Per-row fog blend weights, shape (height, 1, 1), for a camera over flat ground.

    Rows at and above the horizon (and ground further away) count as ``horizon_distance``
    metres away: what stands there in a town (buildings, signal heads, lamps) is mostly within
    a block or two, so a red light at 25 m stays red at night."""
    rows = (np.arange(height) + 0.5) / height  # 0 = top
    half = np.radians(vfov_deg) / 2
    # Angle below the horizon of each row's centre ray.
    below = -np.radians(pitch_deg) + np.arctan((2 * rows - 1) * np.tan(half))
    dist = np.where(below > 1e-3, cam_height / np.tan(np.maximum(below, 1e-3)), horizon_distance)
    dist = np.minimum(dist, horizon_distance)
    return (1.0 - np.exp(-density * dist)).astype(np.float32)[:, None, None]


class FogBlend:
    """Fog for one camera: every frame blended toward the fog colour by per-row weights.

    The weights (from :func:`fog_weights`) are spread to whole-frame arrays once per weather, so
    a frame costs one OpenCV ``blendLinear`` pass (~0.06 ms for 90×160, against ~0.14 ms for the
    same blend in numpy float32).
    """

    def __init__(self, weights: np.ndarray, width: int, color: tuple[float, float, float]) -> None:
        height = weights.shape[0]
        self.fog_weight = np.ascontiguousarray(
            np.broadcast_to(weights.reshape(height, 1), (height, width)), np.float32
        )
        self.keep_weight = (1.0 - self.fog_weight).astype(np.float32)
        rgb = np.round(np.asarray(color, np.float64) * 255.0).clip(0, 255).astype(np.uint8)
        self.fog = np.ascontiguousarray(np.broadcast_to(rgb, (height, width, 3)))

    def __call__(self, img: np.ndarray) -> np.ndarray:
        """``img`` (uint8 H×W×3) with fog: ``img · (1 − w) + fog · w`` per row, rounded."""
        return cv2.blendLinear(img, self.fog, self.keep_weight, self.fog_weight)


RAIN_LAYERS = 4
"""Precomputed streak layers per camera size; frame ``n`` shows layer ``n % RAIN_LAYERS``."""


def rain_streaks(
    height: int, width: int, share: float, seed: int = 0, layers: int = RAIN_LAYERS
) -> list[np.ndarray]:
    """Flat pixel indices (into ``img.reshape(-1, 3)``) of rain streaks, one array per layer.

    Streaks are thin lines ``height/15`` pixels long slanting one pixel sideways per three down,
    scattered so that about ``share`` of the pixels are covered. Layer ``k`` is layer 0 moved
    down by ``k/layers`` of a streak's fall per frame (wrapping), so cycling them makes rain fall.
    """
    rng = np.random.default_rng([seed, height, width])
    length = max(3, round(height / 15))
    count = max(1, round(share * height * width / length))
    y0 = rng.integers(0, height, count)
    x0 = rng.integers(0, width, count)
    t = np.arange(length)
    fall = max(1, round(height / layers / 2))  # rows a drop falls per frame
    out = []
    for k in range(layers):
        ys = (y0[:, None] + t + k * fall) % height
        xs = (x0[:, None] - (t + k * fall) // 3) % width
        out.append(np.unique((ys * width + xs).ravel()).astype(np.intp))
    return out


def apply_rain(img: np.ndarray, streaks: np.ndarray, level: int) -> np.ndarray:
    """Blend ``img`` (uint8 H×W×3, C-contiguous; changed in place) halfway toward grey ``level``
    (0–255) on the ``streaks`` pixels; returns ``img``."""
    flat = img.reshape(-1, 3)
    flat[streaks] = (flat[streaks] >> 1) + np.uint8(level >> 1)
    return img
