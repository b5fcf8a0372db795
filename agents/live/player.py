"""The live player: the BC agent driving, new weights taken at the next unstuck only.

:class:`LivePlayer` is :class:`agents.player.Player` with another source of new models: instead
of watching a run folder for checkpoint files it asks the trainer for published
:class:`~agents.live.weights.WeightsBundle` versions (every ``check_every`` steps, without
blocking the driving), keeps the newest one pending, and swaps it in when an unstuck starts
(``info["unstuck_phase"]`` turns to ``"fade_out"``) — never before, as in the original.

It also keeps the driving metrics of each weight version (steps, distance, unstucks,
collisions while that version drove) so a run shows whether newer weights drive better.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from agents.bc import BCAgent
from agents.evaluate import route_progress
from agents.live.actor import BackgroundWorker, ray_errors
from agents.live.config import LiveConfig
from agents.live.messages import PlayerReport, PlayerStatus, Segment, jsonable
from agents.live.weights import WeightsBundle
from agents.player import Pacer, Player, PlayerConfig
from agents.stream import StreamWriter

FetchWeights = Callable[[int], WeightsBundle | None]
"""Given the version in use, a newer bundle if one is ready now, else None (never blocks)."""

COUNTERS = ("distance", "unstucks", "collisions")


class LivePlayer(Player):
    """A :class:`Player` that swaps in published weight versions at the next unstuck.

    Args:
        env: the env to drive (raw observations).
        bundle: the first weights to drive with.
        fetch: asks for newer weights (see :data:`FetchWeights`).
        config: rate, dead zone, ``check_every`` (steps between asks).
        stream: a :class:`agents.stream.StreamWriter`, or None.
        run_dir: the trainer's run folder (its TensorBoard feeds the stream's trainer console).
    """

    def __init__(
        self,
        *,
        env: gym.Env,
        bundle: WeightsBundle,
        fetch: FetchWeights,
        config: PlayerConfig | None = None,
        stream: Any = None,
        run_dir: str | Path | None = None,
    ) -> None:
        super().__init__(
            env=env,
            agent=BCAgent(bundle.policy()),
            config=config,
            stream=stream,
            run_dir=run_dir,
        )
        self.fetch = fetch
        self.version = bundle.version
        self.model_step = bundle.step
        self.pending_bundle: WeightsBundle | None = None
        self.segments: list[Segment] = []
        self._done_totals = dict.fromkeys(COUNTERS, 0.0)
        self.progress_m = 0.0
        """Metres gained along the planned route since the start (see ``route_progress``)."""
        self._segment_start = self._segment_marks()
        self._record("load", version=bundle.version, model_step=bundle.step)

    # ------------------------------------------------------------------ driving metrics

    def totals(self) -> dict[str, float]:
        """Distance (m), unstucks and collisions since the start (over episode resets)."""
        return {k: self._done_totals[k] + float(self.info.get(k, 0.0)) for k in COUNTERS}

    def episode_done(self) -> None:
        """Carry the finished episode's counters over (call before ``env.reset``)."""
        for k in COUNTERS:
            self._done_totals[k] += float(self.info.get(k, 0.0))

    def step(self, obs: Mapping[str, np.ndarray]) -> tuple[Mapping[str, np.ndarray], bool]:
        """One player step, also counting the metres gained along the planned route."""
        prev = self.info
        obs, done = super().step(obs)
        self.progress_m += route_progress(prev, self.info)
        return obs, done

    def _segment_marks(self) -> dict[str, float]:
        return {
            **self.totals(),
            "progress": self.progress_m,
            "steps": float(self.step_count),
            "predictions": float(self.predictions),
            "time": time.time(),
        }

    def segment(self, *, close: bool = False) -> Segment:
        """Driving of the version in use since it took over (closed segments are kept)."""
        now = self._segment_marks()
        start = self._segment_start
        steps = now["steps"] - start["steps"]
        distance = now["distance"] - start["distance"]
        progress = now["progress"] - start["progress"]
        unstucks = int(now["unstucks"] - start["unstucks"])
        per_1000 = 1000.0 / steps if steps else 0.0
        seg = Segment(
            version=self.version,
            model_step=self.model_step,
            steps=int(steps),
            seconds=now["time"] - start["time"],
            distance_m=distance,
            progress_m=progress,
            unstucks=unstucks,
            collisions=int(now["collisions"] - start["collisions"]),
            predictions=int(now["predictions"] - start["predictions"]),
            m_per_1000_steps=distance * per_1000,
            progress_per_1000_steps=progress * per_1000,
            unstucks_per_1000_steps=unstucks * per_1000,
        )
        if close:
            self.segments.append(seg)
            self._segment_start = now
        return seg

    # ------------------------------------------------------------------ swapping

    def _maybe_swap(self, phase_started: bool) -> None:
        if not self.config.swap:
            return
        if self.step_count % self.config.check_every == 0 or phase_started:
            newer = self.fetch(self.version)
            if newer is not None and newer.version > max(
                self.version, self.pending_bundle.version if self.pending_bundle else -1
            ):
                self.pending_bundle = newer
                self._record(
                    "new_weights_seen", version=newer.version, published_at=newer.published_at
                )
        if phase_started and self.pending_bundle is not None:
            bundle, self.pending_bundle = self.pending_bundle, None
            self.segment(close=True)
            previous = self.version
            self.agent = BCAgent(bundle.policy())
            self.agent.reset()
            self.version, self.model_step = bundle.version, bundle.step
            self.swaps += 1
            self._record(
                "swap",
                version=bundle.version,
                previous=previous,
                model_step=bundle.step,
                published_at=bundle.published_at,
                unstuck_phase=self.info.get("unstuck_phase"),
                unstucks=int(self.info.get("unstucks", 0)),
            )

    @property
    def model_name(self) -> str:
        """Backbone, weight version and trainer step (shown on the stream and console)."""
        return f"{self.agent.name} v{self.version} step {self.model_step}"

    def console_lines(self) -> list[str]:
        """The Player Console plus the weight version in use and the one waiting."""
        waiting = (
            f"  (v{self.pending_bundle.version} waiting for unstuck)"
            if self.pending_bundle is not None
            else ""
        )
        return [*super().console_lines(), f"weights    v{self.version}{waiting}"]


class PlayerWorker(BackgroundWorker):
    """The player role (a Ray actor in the live system).

    Waits for the trainer's first published weights, then drives the town
    ``config.player_town(index)`` until :meth:`stop`, asking for newer weights every
    ``check_every`` steps without blocking. Its log and per-version driving go to
    ``players/player<index>.json`` when it stops.

    Args:
        config: the live run's settings.
        index: this player's number.
        trainer: the trainer actor's handle (``latest`` is called through Ray).
        fetch: fetches weights instead of ``trainer`` (tests).
        start: start driving in a background thread now.
    """

    def __init__(
        self,
        *,
        config: LiveConfig,
        index: int,
        trainer: Any = None,
        fetch: FetchWeights | None = None,
        start: bool = True,
    ) -> None:
        super().__init__(config=config, index=index, role="player")
        self.trainer = trainer
        self._fetch_override = fetch
        self.player: LivePlayer | None = None
        self._poll: Any = None
        self._start(start)

    # ------------------------------------------------------------------ weights

    def fetch(self, known: int) -> WeightsBundle | None:
        """A newer bundle if the trainer's answer is in; otherwise ask (never blocks long)."""
        if self._fetch_override is not None:
            return self._fetch_override(known)
        if self.trainer is None:
            return None
        import ray

        if self._poll is None:
            self._poll = self.trainer.latest.remote(known)
            return None
        ready, _ = ray.wait([self._poll], timeout=0)
        if not ready:
            return None
        poll, self._poll = self._poll, None
        try:
            answer = ray.get(poll)
            if answer is None:
                return None
            _, (ref,) = answer
            bundle = ray.get(ref, timeout=30)
        except ray_errors():  # trainer restarting, or its object lost with it: ask again later
            return None
        return bundle if isinstance(bundle, WeightsBundle) and bundle.version > known else None

    # ------------------------------------------------------------------ driving

    def _loop(self) -> None:
        cfg = self.config
        bundle = None
        while bundle is None and not self._stop.is_set():
            bundle = self.fetch(-1)
            if bundle is None:
                time.sleep(0.2)
        if bundle is None:
            return
        video = cfg.video and self.index == 0
        env = self.make_env(
            stuck_window=cfg.player_stuck_window,
            town_seed=cfg.player_town(self.index),
            cinematic=video,
            expert_in_info=False,
            max_episode_steps=10**9,
        )
        stream = None
        try:
            if video:
                stream = StreamWriter(cfg.out / "stream" / f"player{self.index}.mp4")
            player = LivePlayer(
                env=env,
                bundle=bundle,
                fetch=self.fetch,
                config=PlayerConfig(
                    rate=cfg.player_rate,
                    fast=cfg.player_fast,
                    dead_zone=cfg.player_dead_zone,
                    check_every=cfg.check_every,
                    console=False,
                    convcam=cfg.convcam_every,
                ),
                stream=stream,
                run_dir=cfg.trainer_dir,
            )
            self.player = player
            self._drive(player)
        finally:
            if stream is not None:
                stream.close()
            env.close()

    def _drive(self, player: LivePlayer) -> None:
        cfg = self.config
        obs, player.info = player.env.reset(seed=cfg.seed + self.index)
        player.agent.reset()
        pacer = Pacer(None if cfg.player_fast else cfg.player_rate)
        while not self._stop.is_set():
            obs, done = player.step(obs)
            if done:
                player.episode_done()
                obs, player.info = player.env.reset()
                player.agent.reset()
            pacer.wait()

    # ------------------------------------------------------------------ queries

    def stats(self) -> PlayerStatus:
        """PPS, weight version in use and waiting, distance, unstucks, swaps."""
        p = self.player
        base = PlayerStatus(
            index=self.index,
            pid=self.pid,
            time=time.time(),
            started_at=self.started_at,
            driving=p is not None,
            error=self.error,
        )
        if p is None:
            return base
        fps, pps = p.rates()
        totals = p.totals()
        return dataclasses.replace(
            base,
            steps=p.step_count,
            predictions=p.predictions,
            fps=fps,
            pps=pps,
            version=p.version,
            pending=p.pending_bundle.version if p.pending_bundle is not None else None,
            swaps=p.swaps,
            distance_m=totals["distance"],
            unstucks=int(totals["unstucks"]),
            collisions=int(totals["collisions"]),
            phase=p.info.get("unstuck_phase"),
        )

    def report(self) -> PlayerReport:
        """The player's log (loads, weights seen, swaps) and per-version driving."""
        p = self.player
        if p is None:
            return PlayerReport(index=self.index, error=self.error)
        return PlayerReport(
            index=self.index,
            pid=self.pid,
            log=tuple(jsonable(p.log)),
            segments=(*p.segments, p.segment()),
            error=self.error,
        )

    def stop(self, timeout: float = 30.0) -> PlayerReport:
        """Stop driving, write ``players/player<index>.json`` and return the report."""
        self._join(timeout)
        report = self.report()
        folder = self.config.players_dir
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"player{self.index}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(report.to_dict(), indent=1))
        os.replace(tmp, path)
        return report


__all__ = ["FetchWeights", "LivePlayer", "PlayerWorker"]
