"""Learner-driven recording (DAgger): the cloned policy drives, the expert labels every state.

Behaviour cloning learns from the states the expert visits; the learner then drives into
states the expert never showed it -- most damagingly in the living town, standing still on a
free road after a wait, where a regression model that has seen hundreds of "stand and brake"
frames per red light keeps braking for ever (the *inertia* of behaviour cloning). DAgger (Ross
et al., 2011) fixes this at the source: let the learner drive, record the expert's action in
every state the learner reaches, and train on the union of both data sets. In the embedded
world the expert can be asked in any state (``info["expert_action"]``), so its labels are as
clean for the learner's states as for its own.

A learner that stands still for ever, or has left its route, teaches nothing more after a
while, so :class:`PolicyDriver` hands control to the expert for a moment (an automatic
"intervention", as in HG-DAgger; Kelly et al., 2019) when

- the car has stood still for ``patience`` steps while the expert says "go",
- the car is more than ``deviation_m`` off its route, or
- the car has just collided,

and gives it back afterwards. Every step is recorded with the expert's label either way;
``executed_action`` says what was applied.

Example::

    driver = PolicyDriver(BCAgent.from_checkpoint("runs/bc"), TakeoverConfig())
    recorder = Recorder(env, writer=writer, driver=driver)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from gta_env.fields import check_ints, check_number

__all__ = ["Driver", "PolicyDriver", "TakeoverConfig"]


class Driver(Protocol):
    """Chooses the executed action of a recording step (the label stays the expert's)."""

    def reset(self) -> None:
        """Start of an episode."""

    def __call__(
        self, obs: Mapping[str, np.ndarray], info: Mapping[str, Any], label: np.ndarray
    ) -> np.ndarray:
        """The action to execute in this state, given the expert's ``label``."""
        ...


@dataclass(frozen=True, kw_only=True)
class TakeoverConfig:
    """When the expert takes the wheel from the learner while recording.

    Attributes:
        patience: steps the car may stand still while the expert says "go" before the expert
            takes over (30 = 1 s: enough frames of "stand still on a free road, label go" to
            learn from, without hundreds of identical ones).
        deviation_m: distance from the route, metres, beyond which the expert takes over.
        steps: steps the expert keeps control once it has taken over.
        go: expert pedal above which the label means "go".
        still_ms: speed, m/s, below which the car counts as standing still.
    """

    patience: int = 30
    deviation_m: float = 4.0
    steps: int = 45
    go: float = 0.2
    still_ms: float = 0.5

    def __post_init__(self) -> None:
        check_ints(self, {"patience": 1, "steps": 1})
        check_number("TakeoverConfig.deviation_m", self.deviation_m, above=0.0)
        check_number("TakeoverConfig.still_ms", self.still_ms, minimum=0.0)
        check_number("TakeoverConfig.go", self.go, minimum=-1.0, maximum=1.0)


class PolicyDriver:
    """Executes a learner's actions, with the expert taking over when the learner is stuck.

    Args:
        agent: the learner: ``reset()``, ``act(obs, info) -> action`` and ``executed(action)``
            (a :class:`~agents.bc.BCAgent`).
        config: when the expert takes over.
    """

    def __init__(self, agent: Any, config: TakeoverConfig | None = None) -> None:
        self.agent = agent
        self.config = config or TakeoverConfig()
        self.learner_steps = 0
        """Steps the learner drove, since construction."""
        self.expert_steps = 0
        """Steps the expert drove, since construction."""
        self.takeovers = 0
        """Times the expert took over, since construction."""
        self._still = 0
        self._left = 0

    def reset(self) -> None:
        """Start of an episode: the learner drives, its frame stack and history are cleared."""
        self.agent.reset()
        self._still = 0
        self._left = 0

    def __call__(
        self, obs: Mapping[str, np.ndarray], info: Mapping[str, Any], label: np.ndarray
    ) -> np.ndarray:
        # The learner sees every frame, also while the expert drives, so its frame stack and
        # history are those of the states it is recorded in.
        action = np.asarray(self.agent.act(obs, info), np.float32)
        cfg = self.config
        speed = abs(float(info.get("speed", 0.0)))
        if self._left == 0 and speed < cfg.still_ms and float(label[0]) > cfg.go:
            self._still += 1  # while the learner drives
        else:
            self._still = 0
        collided = any(e.get("kind") == "collision" for e in info.get("events", ()))
        if self._left == 0 and (
            self._still >= cfg.patience
            or float(info.get("route_deviation", 0.0)) > cfg.deviation_m
            or collided
        ):
            self._left = cfg.steps
            self._still = 0
            self.takeovers += 1
        if self._left > 0:
            self._left -= 1
            action = np.asarray(label, np.float32)
            self.expert_steps += 1
        else:
            self.learner_steps += 1
        executed = getattr(self.agent, "executed", None)
        if executed is not None:
            executed(action)
        return action
