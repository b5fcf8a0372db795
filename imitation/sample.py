"""One demonstration sample and the batch format every consumer of demonstrations shares.

A :class:`Sample` is what the recorder takes every 1/30 s of game time: the hood frame (and
optionally the cinematic frame), the expert's *clean* intended action (the label), the action
that was actually executed (it differs when noise is injected so the data contains recoveries),
speed, the purpose vector, and where/when the sample came from.

Batches are plain dicts of numpy arrays so that storage, balancing, buffers and the trainer can
exchange them without importing each other's classes:

=====================  ===========  ==============  ==============================================
key                    dtype        shape           meaning
=====================  ===========  ==============  ==============================================
``hood``               uint8        (B, H, W, 3)    hood camera frame (what the model sees)
``cinematic``          uint8        (B, H2, W2, 3)  chase camera; the key is absent when not recorded
``action``             float32      (B, 2)          label ``[throttle_brake, steering]`` in [-1, 1]
``executed_action``    float32      (B, 2)          action actually applied
``speed``              float32      (B, 1)          m/s, >= 0
``purpose``            float32      (B, 3)          distance in [0, 1], sin and cos of the bearing
``time``               float64      (B,)            game seconds since the episode started
``step``               int64        (B,)            step index in the episode
``episode_id``         int64        (B,)            episode the sample belongs to
``town_id``            int64        (B,)            town (map seed) the sample was recorded in
``light``              int8         (B,)            the traffic light ahead (:data:`LIGHT_CLASSES`)
``target_speed``       float32      (B,)            m/s the expert aims at (NaN: not recorded)
=====================  ===========  ==============  ==============================================

``light`` is a training-only label (an auxiliary target that teaches a model's camera encoder to
read the signal; the model never gets it as an input): the state of the light governing the car's
lane when its stop line is less than :data:`LIGHT_RANGE` metres ahead, else ``LIGHT_NONE``, and
``LIGHT_UNKNOWN`` (-1) where it was not recorded (older stores, the game).

``target_speed`` is the other training label: the speed the expert's pedals aim at in that state
(``info["expert_target_speed"]``), which a model with ``ModelConfig.speed_target`` predicts in
place of the pedal; NaN where it was not recorded.

Both are optional keys (:data:`OPTIONAL_DEFAULTS`): batches without them are valid, and readers
fill them with "unknown".
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

Batch = dict[str, np.ndarray]
"""A batch of samples: see the module docstring for keys, dtypes and shapes."""

BATCH_DTYPES: dict[str, np.dtype[Any]] = {
    "hood": np.dtype(np.uint8),
    "cinematic": np.dtype(np.uint8),
    "action": np.dtype(np.float32),
    "executed_action": np.dtype(np.float32),
    "speed": np.dtype(np.float32),
    "purpose": np.dtype(np.float32),
    "time": np.dtype(np.float64),
    "step": np.dtype(np.int64),
    "episode_id": np.dtype(np.int64),
    "town_id": np.dtype(np.int64),
    "light": np.dtype(np.int8),
    "target_speed": np.dtype(np.float32),
}
"""The dtype of every batch key."""

LIGHT_CLASSES: tuple[str, ...] = ("green", "amber", "red", "none")
"""The ``light`` label's classes, by code (``none``: no signalised stop line within range)."""
LIGHT_NONE = 3
LIGHT_UNKNOWN = -1
LIGHT_RANGE = 40.0
"""Metres to the stop line within which a light counts as governing the car (``light`` label)."""

SCALAR_KEYS: tuple[str, ...] = (
    "action",
    "executed_action",
    "speed",
    "purpose",
    "time",
    "step",
    "episode_id",
    "town_id",
    "light",
    "target_speed",
)
"""Batch keys that are not frames (small, fixed-size per sample)."""

OPTIONAL_DEFAULTS: dict[str, float] = {"light": LIGHT_UNKNOWN, "target_speed": math.nan}
"""Scalar keys a batch (or a stored chunk) may lack, and the value that stands in for them."""

SCALAR_SHAPES: dict[str, tuple[int, ...]] = {
    "action": (2,),
    "executed_action": (2,),
    "speed": (1,),
    "purpose": (3,),
    "time": (),
    "step": (),
    "episode_id": (),
    "town_id": (),
    "light": (),
    "target_speed": (),
}
"""Per-sample shape of every non-frame batch key."""


def light_label(info: Mapping[str, Any]) -> int:
    """The ``light`` label of an env step's ``info``: its ``traffic_light`` state when
    ``stop_line_distance`` is within :data:`LIGHT_RANGE`, ``LIGHT_NONE`` when no light governs the
    lane there, ``LIGHT_UNKNOWN`` when the env reports no lights (the game, ``traffic_lights``
    off)."""
    if "traffic_light" not in info:
        return LIGHT_UNKNOWN
    state, distance = info["traffic_light"], info.get("stop_line_distance")
    if state is None or distance is None or not -2.0 < float(distance) < LIGHT_RANGE:
        return LIGHT_NONE
    return LIGHT_CLASSES.index(state)


def target_speed_label(info: Mapping[str, Any]) -> float:
    """The ``target_speed`` label of an env step's ``info`` (``expert_target_speed``), NaN when
    the env does not report it."""
    value = info.get("expert_target_speed")
    return math.nan if value is None else float(value)


def _check_frame(name: str, frame: Any) -> np.ndarray:
    if not isinstance(frame, np.ndarray):
        raise ValueError(f"Sample.{name} must be a numpy array, got {type(frame).__name__}")
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(
            f"Sample.{name} must be uint8 of shape (H, W, 3), got {frame.dtype} {frame.shape}"
        )
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise ValueError(f"Sample.{name} must not be empty, got shape {frame.shape}")
    return frame


def _check_vector(name: str, value: Any, size: int, low: float, high: float) -> np.ndarray:
    arr = np.asarray(value)
    if arr.shape != (size,):
        raise ValueError(f"Sample.{name} must have shape ({size},), got {arr.shape}")
    if not np.issubdtype(arr.dtype, np.floating) and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"Sample.{name} must be numeric, got dtype {arr.dtype}")
    arr = arr.astype(np.float32)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"Sample.{name} must be finite, got {arr.tolist()}")
    if np.any(arr < low) or np.any(arr > high):
        raise ValueError(f"Sample.{name} must lie in [{low}, {high}], got {arr.tolist()}")
    return arr


def _check_real(name: str, value: Any, *, minimum: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ValueError(f"Sample.{name} must be a real number, got {type(value).__name__}")
    out = float(value)
    if not math.isfinite(out):
        raise ValueError(f"Sample.{name} must be finite, got {out}")
    if minimum is not None and out < minimum:
        raise ValueError(f"Sample.{name} must be >= {minimum}, got {out}")
    return out


def _check_int(name: str, value: Any, *, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"Sample.{name} must be an integer, got {type(value).__name__}")
    out = int(value)
    if minimum is not None and out < minimum:
        raise ValueError(f"Sample.{name} must be >= {minimum}, got {out}")
    return out


@dataclass(frozen=True, kw_only=True, eq=False)
class Sample:
    """One demonstration sample, validated on construction.

    Arrays are converted to their canonical dtypes (float32 vectors) and held as read-only views,
    so a sample can be shared between a buffer, a balancer and a writer without copies (do not
    modify the arrays a sample was built from). ``speed`` is rounded to float32, the precision
    it is stored and batched in.

    Attributes:
        hood: Hood camera frame, uint8 of shape (H, W, 3).
        cinematic: Chase camera frame, uint8 of shape (H2, W2, 3), or None when not recorded.
        action: The label: the expert's clean intended ``[throttle_brake, steering]``, float32 (2,)
            in [-1, 1] (throttle > 0, brake < 0).
        executed_action: The action actually applied, float32 (2,) in [-1, 1]; equals ``action``
            unless noise was injected.
        speed: Speed in m/s, >= 0.
        purpose: float32 (3,): distance to the purpose point scaled to [0, 1], sin and cos of the
            bearing in the car's frame (each in [-1, 1]).
        time: Game seconds since the episode started, >= 0.
        step: Step index within the episode, >= 0.
        episode_id: Episode identifier, >= 0.
        town_id: Town (map seed) identifier, >= 0.
        light: The traffic light ahead, a :data:`LIGHT_CLASSES` code, or ``LIGHT_UNKNOWN``
            (-1, the default) when not recorded. A training label, not a model input.
        target_speed: The speed in m/s the expert's pedals aim at, >= 0, or NaN (the default)
            when not recorded. A training label, not a model input.

    Raises:
        ValueError: Naming the field and what was expected, when a field is invalid.
    """

    hood: np.ndarray
    cinematic: np.ndarray | None = None
    action: np.ndarray
    executed_action: np.ndarray
    speed: float
    purpose: np.ndarray
    time: float
    step: int
    episode_id: int
    town_id: int
    light: int = LIGHT_UNKNOWN
    target_speed: float = math.nan

    def __post_init__(self) -> None:
        hood = _check_frame("hood", self.hood)
        cinematic = None if self.cinematic is None else _check_frame("cinematic", self.cinematic)
        action = _check_vector("action", self.action, 2, -1.0, 1.0)
        executed = _check_vector("executed_action", self.executed_action, 2, -1.0, 1.0)
        purpose = _check_vector("purpose", self.purpose, 3, -1.0, 1.0)
        if purpose[0] < 0.0:
            raise ValueError(
                f"Sample.purpose[0] (scaled distance) must lie in [0, 1], got {purpose[0]}"
            )
        # Rounded to float32 (the stored precision) so that a stored sample reads back equal.
        speed = float(np.float32(_check_real("speed", self.speed, minimum=0.0)))
        time = _check_real("time", self.time, minimum=0.0)
        step = _check_int("step", self.step, minimum=0)
        episode_id = _check_int("episode_id", self.episode_id, minimum=0)
        town_id = _check_int("town_id", self.town_id, minimum=0)
        light = _check_int("light", self.light, minimum=LIGHT_UNKNOWN)
        if light >= len(LIGHT_CLASSES):
            raise ValueError(
                f"Sample.light must be -1 (unknown) or a code of {LIGHT_CLASSES}, got {light}"
            )
        target_speed = float(np.float32(self.target_speed))
        if not (math.isnan(target_speed) or 0.0 <= target_speed < math.inf):
            raise ValueError(
                f"Sample.target_speed must be >= 0 m/s or NaN (unknown), got {self.target_speed}"
            )
        for name, value in (
            ("hood", _readonly(hood)),
            ("cinematic", None if cinematic is None else _readonly(cinematic)),
            ("action", _readonly(action)),
            ("executed_action", _readonly(executed)),
            ("purpose", _readonly(purpose)),
            ("speed", speed),
            ("time", time),
            ("step", step),
            ("episode_id", episode_id),
            ("town_id", town_id),
            ("light", light),
            ("target_speed", target_speed),
        ):
            object.__setattr__(self, name, value)

    def __eq__(self, other: object) -> bool:
        """Field-by-field equality, comparing arrays exactly (bit for bit)."""
        if not isinstance(other, Sample):
            return NotImplemented
        if (self.cinematic is None) != (other.cinematic is None):
            return False
        return (
            np.array_equal(self.hood, other.hood)
            and (
                self.cinematic is None
                or other.cinematic is None
                or np.array_equal(self.cinematic, other.cinematic)
            )
            and np.array_equal(self.action, other.action)
            and np.array_equal(self.executed_action, other.executed_action)
            and np.array_equal(self.purpose, other.purpose)
            and self.speed == other.speed
            and self.time == other.time
            and self.step == other.step
            and self.episode_id == other.episode_id
            and self.town_id == other.town_id
            and self.light == other.light
            and (
                self.target_speed == other.target_speed
                or (math.isnan(self.target_speed) and math.isnan(other.target_speed))
            )
        )

    __hash__ = None  # type: ignore[assignment]


def _readonly(arr: np.ndarray) -> np.ndarray:
    # A read-only view, not a copy: frames are large and the recorder makes fresh ones each step.
    view = arr.view()
    view.flags.writeable = False
    return view


def stack_samples(samples: Sequence[Sample]) -> Batch:
    """Stack samples into a batch dict (see the module docstring for the format).

    Args:
        samples: At least one sample; all must have the same hood shape and either all or none
            a cinematic frame of one shape.

    Returns:
        The batch. ``cinematic`` is present only if the samples have one.

    Raises:
        ValueError: If ``samples`` is empty or the frames disagree in shape or presence.
    """
    if len(samples) == 0:
        raise ValueError("stack_samples needs at least one sample, got an empty sequence")
    first = samples[0]
    has_cin = first.cinematic is not None
    for i, s in enumerate(samples):
        if s.hood.shape != first.hood.shape:
            raise ValueError(
                f"samples[{i}].hood has shape {s.hood.shape}, samples[0].hood {first.hood.shape}; "
                "a batch needs one frame size"
            )
        if (s.cinematic is not None) != has_cin:
            raise ValueError(
                f"samples[{i}] {'lacks' if has_cin else 'has'} a cinematic frame unlike samples[0]; "
                "a batch needs all or none"
            )
        if (
            s.cinematic is not None
            and first.cinematic is not None
            and s.cinematic.shape != first.cinematic.shape
        ):
            raise ValueError(
                f"samples[{i}].cinematic has shape {s.cinematic.shape}, samples[0] "
                f"{first.cinematic.shape}; a batch needs one frame size"
            )
    batch: Batch = {"hood": np.stack([s.hood for s in samples])}
    if has_cin:
        batch["cinematic"] = np.stack([s.cinematic for s in samples])  # type: ignore[misc]
    batch["action"] = np.stack([s.action for s in samples]).astype(np.float32)
    batch["executed_action"] = np.stack([s.executed_action for s in samples]).astype(np.float32)
    batch["speed"] = np.array([[s.speed] for s in samples], dtype=np.float32)
    batch["purpose"] = np.stack([s.purpose for s in samples]).astype(np.float32)
    batch["time"] = np.array([s.time for s in samples], dtype=np.float64)
    batch["step"] = np.array([s.step for s in samples], dtype=np.int64)
    batch["episode_id"] = np.array([s.episode_id for s in samples], dtype=np.int64)
    batch["town_id"] = np.array([s.town_id for s in samples], dtype=np.int64)
    batch["light"] = np.array([s.light for s in samples], dtype=np.int8)
    batch["target_speed"] = np.array([s.target_speed for s in samples], dtype=np.float32)
    return batch


def batch_size(batch: Mapping[str, np.ndarray]) -> int:
    """The number of samples in a batch (checked against every key).

    Raises:
        ValueError: If a required key is missing or the keys disagree in length.
    """
    check_batch(batch)
    return int(batch["action"].shape[0])


def check_batch(batch: Mapping[str, np.ndarray]) -> None:
    """Validate a batch's keys, dtypes and shapes.

    Raises:
        ValueError: Naming the key and what was expected.
    """
    required = ("hood", *(k for k in SCALAR_KEYS if k not in OPTIONAL_DEFAULTS))
    for key in required:
        if key not in batch:
            raise ValueError(f"batch is missing key {key!r}; expected keys {list(BATCH_DTYPES)}")
    unknown = set(batch) - set(BATCH_DTYPES)
    if unknown:
        raise ValueError(f"batch has unknown keys {sorted(unknown)}; expected {list(BATCH_DTYPES)}")
    n = batch["action"].shape[0]
    for key, arr in batch.items():
        want = BATCH_DTYPES[key]
        if arr.dtype != want:
            raise ValueError(f"batch[{key!r}] must be {want}, got {arr.dtype}")
        if arr.shape[:1] != (n,):
            raise ValueError(f"batch[{key!r}] has {arr.shape[:1]} samples, batch['action'] has {n}")
        if key in SCALAR_SHAPES and arr.shape[1:] != SCALAR_SHAPES[key]:
            raise ValueError(
                f"batch[{key!r}] must have shape (B, {', '.join(map(str, SCALAR_SHAPES[key]))}), "
                f"got {arr.shape}"
            )
        if key in ("hood", "cinematic") and (arr.ndim != 4 or arr.shape[3] != 3):
            raise ValueError(f"batch[{key!r}] must have shape (B, H, W, 3), got {arr.shape}")


def unstack_batch(batch: Mapping[str, np.ndarray]) -> list[Sample]:
    """Split a batch dict back into validated samples (the inverse of :func:`stack_samples`).

    Raises:
        ValueError: If the batch is malformed or a sample is invalid.
    """
    n = batch_size(batch)
    cin = batch.get("cinematic")
    light = batch.get("light")
    target_speed = batch.get("target_speed")
    return [
        Sample(
            hood=batch["hood"][i],
            cinematic=None if cin is None else cin[i],
            action=batch["action"][i],
            executed_action=batch["executed_action"][i],
            speed=float(batch["speed"][i, 0]),
            purpose=batch["purpose"][i],
            time=float(batch["time"][i]),
            step=int(batch["step"][i]),
            episode_id=int(batch["episode_id"][i]),
            town_id=int(batch["town_id"][i]),
            light=LIGHT_UNKNOWN if light is None else int(light[i]),
            target_speed=math.nan if target_speed is None else float(target_speed[i]),
        )
        for i in range(n)
    ]
