"""Noise injection for recording recoveries (DART-style perturbations of the expert's actions).

An expert that never errs produces data that never shows how to get back on track, so a cloned
policy that drifts off its lane has never seen the way back. DART (Laskey et al., 2017) injects
noise into the expert's *executed* actions while the recorded *label* stays the expert's clean
intended action: the car wanders off, the expert reacts, and every sample of the recovery is
labelled with what the expert wanted to do.

:class:`ActionNoise` is a small seeded process with one independent channel per action output.
At every step an idle channel starts a perturbation with probability ``probability``; a
perturbation is a constant offset ``sign * U(magnitude/2, magnitude)`` (a random sign, never
negligibly small) held for a duration drawn uniformly from ``duration`` steps -- a steering
offset held for a few frames pulls the car off its line the way a real driver's slip would.
Executed actions are clipped to the action bounds.

Example::

    noise = ActionNoise(config=NoiseConfig.default(), rng=np.random.default_rng(0))
    executed = noise(info["expert_action"])  # label: info["expert_action"] itself
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["OUTPUTS", "ActionNoise", "NoiseConfig", "OutputNoise"]

OUTPUTS: tuple[str, str] = ("throttle_brake", "steering")
"""Action outputs, in action-vector order (the env's ``action_mode="pedal"``)."""


@dataclass(frozen=True, kw_only=True)
class OutputNoise:
    """Perturbations of one action output.

    Attributes:
        probability: Chance per step that an idle output starts a perturbation, in [0, 1].
        magnitude: Largest absolute offset added to the action, in [0, 2]; each perturbation
            draws ``U(magnitude / 2, magnitude)`` with a random sign.
        duration: ``(min, max)`` steps a perturbation is held (both inclusive, >= 1).
    """

    probability: float = 0.0
    magnitude: float = 0.0
    duration: tuple[int, int] = (1, 1)

    def __post_init__(self) -> None:
        if not 0.0 <= float(self.probability) <= 1.0:
            raise ValueError(f"OutputNoise.probability must be in [0, 1], got {self.probability}")
        if not 0.0 <= float(self.magnitude) <= 2.0:
            raise ValueError(f"OutputNoise.magnitude must be in [0, 2], got {self.magnitude}")
        try:
            lo, hi = (int(v) for v in self.duration)
        except (TypeError, ValueError):
            raise ValueError(
                f"OutputNoise.duration must be (min, max) steps, got {self.duration!r}"
            ) from None
        if not 1 <= lo <= hi:
            raise ValueError(f"OutputNoise.duration needs 1 <= min <= max, got {self.duration!r}")
        object.__setattr__(self, "duration", (lo, hi))

    @property
    def active(self) -> bool:
        """Whether this output is ever perturbed."""
        return self.probability > 0.0 and self.magnitude > 0.0


@dataclass(frozen=True, kw_only=True)
class NoiseConfig:
    """Noise per action output (``[throttle_brake, steering]``).

    Attributes:
        throttle_brake: Perturbations of the pedal output.
        steering: Perturbations of the steering output.
    """

    throttle_brake: OutputNoise = field(default_factory=OutputNoise)
    steering: OutputNoise = field(default_factory=OutputNoise)

    @classmethod
    def off(cls) -> NoiseConfig:
        """No noise: executed actions equal the labels."""
        return cls()

    @classmethod
    def default(cls) -> NoiseConfig:
        """Occasional steering slips and pedal lapses.

        Steering: on average one slip every ~1.7 s (probability 0.02 per 1/30 s step) of up to
        0.35, held 4-15 steps (0.13-0.5 s). Pedals: one lapse every ~3.3 s of up to 0.5, held
        10-30 steps. Measured on the embedded world this keeps the car on the road while it
        drifts visibly off its line and back.
        """
        return cls(
            throttle_brake=OutputNoise(probability=0.01, magnitude=0.5, duration=(10, 30)),
            steering=OutputNoise(probability=0.02, magnitude=0.35, duration=(4, 15)),
        )

    @classmethod
    def recovery(cls) -> NoiseConfig:
        """Bigger steering slips and hard pedal lapses: data a cloned policy learns to recover from.

        Steering: one slip every ~1.5 s of up to 0.5, held 8-24 steps. Pedals: one lapse every
        ~3 s of full throttle or full braking (an offset of 1-2), held 15-45 steps (0.5-1.5 s):
        the car stops or overshoots its speed, and the clean labels show how to get going again
        and how to slow down. With only mild pedal noise a learner that slowed down too much
        stayed stopped until an unstuck (``gta5drive demo`` uses this preset).
        """
        return cls(
            throttle_brake=OutputNoise(probability=0.011, magnitude=2.0, duration=(15, 45)),
            steering=OutputNoise(probability=1 / 45, magnitude=0.5, duration=(8, 24)),
        )

    @property
    def active(self) -> bool:
        """Whether any output is ever perturbed."""
        return self.throttle_brake.active or self.steering.active

    def outputs(self) -> tuple[OutputNoise, OutputNoise]:
        """Per-output settings in action-vector order."""
        return (self.throttle_brake, self.steering)

    @classmethod
    def parse(cls, text: str) -> NoiseConfig:
        """A config from the command line's ``--noise`` text.

        Accepted forms: ``"off"``, ``"default"``, ``"recovery"``, or comma-separated
        ``OUTPUT=PROBABILITY/MAGNITUDE/MIN-MAX`` (``MIN-MAX`` may be one number), e.g.
        ``"steering=0.03/0.3/5-20,throttle_brake=0.01/0.5/10-30"``. Outputs not named get no
        noise.

        Raises:
            ValueError: Saying what was wrong and showing the expected form.
        """
        form = (
            "expected 'off', 'default', 'recovery' or OUTPUT=PROBABILITY/MAGNITUDE/MIN-MAX[,...] "
            "with "
            f"OUTPUT in {list(OUTPUTS)}, e.g. 'steering=0.03/0.3/5-20'"
        )
        text = text.strip()
        if text == "off":
            return cls.off()
        if text == "default":
            return cls.default()
        if text == "recovery":
            return cls.recovery()
        parts: dict[str, OutputNoise] = {}
        for item in filter(None, (p.strip() for p in text.split(","))):
            name, eq, spec = item.partition("=")
            name = name.strip()
            if not eq or name not in OUTPUTS:
                raise ValueError(f"noise {item!r}: {form}")
            if name in parts:
                raise ValueError(f"noise: output {name!r} given twice")
            fields = spec.split("/")
            if len(fields) != 3:
                raise ValueError(f"noise {item!r}: {form}")
            lo, _, hi = fields[2].partition("-")
            try:
                parts[name] = OutputNoise(
                    probability=float(fields[0]),
                    magnitude=float(fields[1]),
                    duration=(int(lo), int(hi or lo)),
                )
            except ValueError as exc:
                raise ValueError(f"noise {item!r}: {exc}; {form}") from None
        if not parts:
            raise ValueError(f"noise {text!r}: {form}")
        return cls(**parts)

    def describe(self) -> str:
        """One line, in the form :meth:`parse` reads."""
        if not self.active:
            return "off"
        return ",".join(
            f"{name}={o.probability:g}/{o.magnitude:g}/{o.duration[0]}-{o.duration[1]}"
            for name, o in zip(OUTPUTS, self.outputs(), strict=True)
            if o.active
        )


class ActionNoise:
    """A seeded perturbation process over ``[throttle_brake, steering]`` actions.

    Call it once per env step with the expert's clean action; it returns the action to execute.
    The clean action is not modified (record it as the label).

    Args:
        config: Noise per output.
        rng: The only source of randomness (same generator state, same perturbations).
        low: Lower action bound the executed action is clipped to.
        high: Upper action bound.
    """

    def __init__(
        self,
        *,
        config: NoiseConfig,
        rng: np.random.Generator,
        low: float = -1.0,
        high: float = 1.0,
    ) -> None:
        if not isinstance(config, NoiseConfig):
            raise ValueError(f"config must be a NoiseConfig, got {type(config).__name__}")
        if not isinstance(rng, np.random.Generator):
            raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
        if not low < high:
            raise ValueError(f"need low < high, got low={low}, high={high}")
        self.config = config
        self.rng = rng
        self.low = float(low)
        self.high = float(high)
        self._outputs = config.outputs()
        self._offset = np.zeros(len(OUTPUTS), np.float32)
        self._left = np.zeros(len(OUTPUTS), np.int64)
        self.perturbations = 0
        """Perturbations started since construction (all outputs)."""

    def reset(self) -> None:
        """End any perturbation in progress (call at the start of an episode)."""
        self._offset[:] = 0.0
        self._left[:] = 0

    @property
    def offset(self) -> np.ndarray:
        """The offset that the last call added to each output (a copy; 0 where idle)."""
        return self._offset.copy()

    def __call__(self, action: np.ndarray) -> np.ndarray:
        """The executed action for the expert's clean ``action``; advances the process one step.

        Raises:
            ValueError: If ``action`` is not a finite 2-vector.
        """
        a = np.asarray(action, dtype=np.float32)
        if a.shape != (len(OUTPUTS),) or not np.all(np.isfinite(a)):
            raise ValueError(
                f"ActionNoise expects a finite [throttle_brake, steering] action, got {a!r}"
            )
        for k, out in enumerate(self._outputs):
            if self._left[k] > 0:
                self._left[k] -= 1
            if self._left[k] == 0:
                self._offset[k] = 0.0
                # Only active outputs draw, so "off" consumes no randomness at all.
                if out.active and self.rng.random() < out.probability:
                    sign = 1.0 if self.rng.random() < 0.5 else -1.0
                    size = self.rng.uniform(out.magnitude / 2, out.magnitude)
                    self._offset[k] = np.float32(sign * size)
                    self._left[k] = int(self.rng.integers(out.duration[0], out.duration[1] + 1))
                    self.perturbations += 1
        return np.clip(a + self._offset, self.low, self.high).astype(np.float32)
