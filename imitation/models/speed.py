"""The speed controller behind a target-speed model (``ModelConfig.speed_target``).

Such a model does not predict the pedal. Its ``throttle_brake`` head predicts the speed the
expert aims at in the state it sees (the ``target_speed`` label, scaled from
``[0, speed_target]`` m/s to ``[-1, 1]``), and this controller turns that and the car's measured
speed into the pedal, the way the embedded world's autopilot does (feed-forward for drag and
rolling resistance plus proportional terms; :mod:`gta_env.sim.autopilot`).

Why: a model that gets its speed and predicts the pedal learns "at rest → brake" from the speed
alone, since a car at rest in the living town is waiting most of the time (the *inertia* of
behaviour cloning). A target-speed model without the speed input cannot: it says how fast the
scene allows, and the controller, which does see the speed, starts the car when that is above
zero. This is how waypoint models hand their output to a PID controller (LBC, TransFuser).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class SpeedControl:
    """Pedal for a target speed, given the measured speed.

    Attributes:
        drag: air drag coefficient of the car (N per (m/s)²).
        rolling: rolling resistance (N).
        engine_force: force at full throttle (N).
        kp_throttle: throttle per m/s below the target.
        kp_brake: brake per m/s above the target.
        brake_offset: speed error (as brake) tolerated before braking.
        stop_below: a target below this (m/s) means "stop": full brake while moving, a held
            brake at rest.
    """

    drag: float = 2.2
    rolling: float = 120.0
    engine_force: float = 3400.0
    kp_throttle: float = 0.45
    kp_brake: float = 0.25
    brake_offset: float = 0.05
    stop_below: float = 1.5

    def pedal(self, target: torch.Tensor, speed: torch.Tensor) -> torch.Tensor:
        """``throttle - brake`` in [-1, 1] for target and measured speeds (m/s), any shape."""
        v = speed.float().clamp(min=0.0)
        target = target.float()
        hold = (self.drag * v * v + self.rolling) / self.engine_force
        err = target - v
        throttle = (hold + self.kp_throttle * err).clamp(0.0, 1.0)
        brake = (-self.kp_brake * err - self.brake_offset).clamp(0.0, 1.0)
        pedal = torch.where(brake > 0.0, -brake, throttle)
        held = torch.where(v > 0.05, torch.full_like(v, -1.0), torch.full_like(v, -0.6))
        return torch.where(target < self.stop_below, held, pedal)


def scale_target(target_speed: torch.Tensor, top_speed: float) -> torch.Tensor:
    """m/s in ``[0, top_speed]`` → the head's range ``[-1, 1]`` (clipped)."""
    return (2.0 * target_speed / top_speed - 1.0).clamp(-1.0, 1.0)


def unscale_target(value: torch.Tensor, top_speed: float) -> torch.Tensor:
    """The head's value in ``[-1, 1]`` → m/s."""
    return (value.float() + 1.0) * 0.5 * top_speed
