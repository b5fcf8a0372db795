"""Recording demonstrations: drive an env with the (noisy) expert and write one sample per step.

:class:`Recorder` steps a ``GTA5Drive-v0`` env (``action_mode="pedal"``) with the expert's action
from ``info["expert_action"]``, optionally perturbed by an :class:`~imitation.noise.ActionNoise`,
and turns every step into a :class:`~imitation.sample.Sample`:

- the observation (hood frame, optional cinematic frame, speed, purpose) is the one the expert's
  action was computed for;
- ``action`` (the label) is the expert's clean action for that observation, ``executed_action``
  what was applied (they differ while a perturbation is active, or while a
  :class:`~imitation.dagger.PolicyDriver` lets the learner drive: DAgger);
- ``time`` is game seconds since the episode started (``info["frame"] / 30``), ``step`` the step
  index, ``episode_id`` the caller's episode number and ``town_id`` the town seed.

Samples taken while the env fades out and in around an unstuck teleport
(``info["unstuck_phase"]`` not None) are skipped: the car is braking in the dark, not driving.
Samples go to a :class:`~imitation.storage.SampleWriter`, or first through a stream
:class:`~imitation.balance.Balancer`, in which case only the samples of completed balanced sets
are written (v2 sets go to one writer per output, as ``balance_store`` does).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from imitation.balance import Balancer
from imitation.dagger import Driver
from imitation.noise import ActionNoise
from imitation.sample import Sample, light_label, target_speed_label
from imitation.storage import SampleWriter

__all__ = ["EpisodeStats", "Recorder"]

FRAME_DT = 1.0 / 30.0
"""Seconds of game time per frame (the env's sampling period)."""


@dataclass(frozen=True)
class EpisodeStats:
    """What one recorded episode produced.

    Attributes:
        episode_id: The episode's id in the samples.
        town_id: The town seed.
        steps: Env steps taken.
        recorded: Samples made (steps outside unstuck fades).
        written: Samples written (all recorded ones, or those of completed balanced sets).
        skipped_fade: Steps skipped because of an unstuck fade.
        perturbed: Steps whose executed action differed from the label.
        collisions: Collisions counted by the env.
        unstucks: Unstuck teleports.
        distance_m: Metres driven.
        stopped: Whether ``stop()`` ended the episode early.
    """

    episode_id: int
    town_id: int
    steps: int
    recorded: int
    written: int
    skipped_fade: int
    perturbed: int
    collisions: int
    unstucks: int
    distance_m: float
    stopped: bool


class Recorder:
    """Drives an env with the expert and writes a sample per step.

    Args:
        env: A ``GTA5Drive-v0`` env (or a wrapper of one) in ``action_mode="pedal"`` with
            ``expert_in_info=True`` (the default).
        writer: Where samples (or balanced sets) are written.
        noise: Perturbs executed actions (labels stay clean); None for none.
        driver: Chooses the executed action instead of the expert (e.g. a
            :class:`~imitation.dagger.PolicyDriver`: the learner drives, the expert labels);
            ``noise`` perturbs what it chooses. None: the expert drives.
        balancer: A stream balancer; only samples of completed sets are written. None writes
            every sample.
        output_writers: For a v2 balancer: one writer per output (``accel``, ``brake``,
            ``steering``), because v2 sets train one output each.
        record_cinematic: Also store the chase-camera frame (the env must have
            ``cinematic=True``).

    Raises:
        ValueError: If the env is not in pedal mode, or a v2 balancer lacks output writers.
    """

    writes_sets = True
    """Whether balanced sets go to ``writer`` / ``output_writers`` (a subclass that sends them
    elsewhere, like the live collector's, needs no writers per output)."""

    def __init__(
        self,
        env: gym.Env,
        *,
        writer: SampleWriter,
        noise: ActionNoise | None = None,
        driver: Driver | None = None,
        balancer: Balancer | None = None,
        output_writers: Mapping[str, SampleWriter] | None = None,
        record_cinematic: bool = False,
    ) -> None:
        config = getattr(env.unwrapped, "config", None)
        if config is not None and getattr(config, "action_mode", "pedal") != "pedal":
            raise ValueError(
                "Recorder needs action_mode='pedal' ([throttle_brake, steering]), the action "
                f"layout samples store; the env has action_mode={config.action_mode!r}"
            )
        if config is not None and not getattr(config, "expert_in_info", True):
            raise ValueError(
                "Recorder needs the expert's action: make the env with expert_in_info=True"
            )
        if record_cinematic and "cinematic" not in getattr(env.observation_space, "spaces", {}):
            raise ValueError("record_cinematic=True needs an env made with cinematic=True")
        if balancer is not None and balancer.spec.own_output_sets and self.writes_sets:
            missing = {"accel", "brake", "steering"} - set(output_writers or {})
            if missing:
                raise ValueError(
                    f"a v2 balancer emits sets per output; pass output_writers for {sorted(missing)}"
                )
        self.env = env
        self.writer = writer
        self.noise = noise
        self.driver = driver
        self.balancer = balancer
        self.output_writers = dict(output_writers or {})
        self.record_cinematic = record_cinematic
        self.frame_skip = int(getattr(config, "frame_skip", 1))
        self.written = 0
        """Samples written over all episodes."""

    def record_episode(
        self,
        *,
        town_seed: int,
        episode_id: int,
        seed: int | None = None,
        max_steps: int | None = None,
        max_written: int | None = None,
        stop: Callable[[], bool] | None = None,
        on_step: Callable[[int, int], None] | None = None,
    ) -> EpisodeStats:
        """Record one episode in the town ``town_seed``.

        The episode ends when the env terminates or truncates (``gym.make`` adds a 2-minute time
        limit), after ``max_steps`` steps, once ``max_written`` samples were written in it, or
        when ``stop()`` returns True (checked every step). Balanced sets are written whole, so
        with a balancer the episode may write up to one set more than ``max_written``.

        Args:
            town_seed: The town, also the samples' ``town_id``.
            episode_id: The samples' ``episode_id``.
            seed: Seeds the env's reset (weather, start, purpose points).
            max_steps: Most steps to take.
            max_written: Most samples to write in this episode.
            stop: Asked every step whether to stop now.
            on_step: Called after every step with (recorded, written) so far in this episode.

        Returns:
            What the episode produced.
        """
        obs, info = self.env.reset(seed=seed, options={"town_seed": int(town_seed)})
        if self.noise is not None:
            self.noise.reset()
        if self.driver is not None:
            self.driver.reset()
        steps = recorded = written = skipped = perturbed = 0
        stopped = False
        while True:
            if max_steps is not None and steps >= max_steps:
                break
            if max_written is not None and written >= max_written:
                break
            if stop is not None and stop():
                stopped = True
                break
            label = self._expert_action(info)
            chosen = label if self.driver is None else self.driver(obs, info, label)
            executed = chosen if self.noise is None else self.noise(chosen)
            if info.get("unstuck_phase") is None:
                sample = self._sample(obs, info, label, executed, steps, episode_id, town_seed)
                recorded += 1
                written += self._emit(sample)
            else:
                skipped += 1
            if not np.array_equal(executed, label):
                perturbed += 1
            obs, _, terminated, truncated, info = self.env.step(executed)
            steps += 1
            if on_step is not None:
                on_step(recorded, written)
            if terminated or truncated:
                break
        self.written += written
        return EpisodeStats(
            episode_id=int(episode_id),
            town_id=int(town_seed),
            steps=steps,
            recorded=recorded,
            written=written,
            skipped_fade=skipped,
            perturbed=perturbed,
            collisions=int(info.get("collisions", 0)),
            unstucks=int(info.get("unstucks", 0)),
            distance_m=float(info.get("distance", 0.0)),
            stopped=stopped,
        )

    # -- internals -------------------------------------------------------------------------

    @staticmethod
    def _expert_action(info: Mapping[str, Any]) -> np.ndarray:
        if "expert_action" not in info:
            raise ValueError(
                "info has no 'expert_action': record on a backend with an expert "
                "(backend='sim', or the game with its NPC autopilot) and expert_in_info=True"
            )
        return np.asarray(info["expert_action"], np.float32)

    def _sample(
        self,
        obs: Mapping[str, np.ndarray],
        info: Mapping[str, Any],
        label: np.ndarray,
        executed: np.ndarray,
        step: int,
        episode_id: int,
        town_seed: int,
    ) -> Sample:
        frame = info.get("frame")
        time = float(frame) * FRAME_DT if frame is not None else step * self.frame_skip * FRAME_DT
        return Sample(
            hood=obs["hood"],
            cinematic=obs["cinematic"] if self.record_cinematic else None,
            action=label,
            executed_action=executed,
            speed=float(obs["speed"][0]),
            purpose=obs["purpose"],
            time=time,
            step=step,
            episode_id=int(episode_id),
            town_id=int(town_seed),
            light=light_label(info),
            target_speed=target_speed_label(info),
        )

    def _emit(self, sample: Sample) -> int:
        """Write a sample, or the balanced sets it completes (whole); returns samples written."""
        if self.balancer is None:
            self.writer.append(sample)
            return 1
        n = 0
        for bset in self.balancer.add(sample):
            writer = self.output_writers.get(bset.output or "", self.writer)
            for s in bset.items:
                writer.append(s)
            n += len(bset)
        return n
