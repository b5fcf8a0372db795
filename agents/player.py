"""The Player: drives a checkpoint at a target rate, hot-swaps new weights at the next unstuck.

As in the original, the player

* predicts at a target rate (default 30 predictions/s of real time; ``fast`` = as fast as
  possible) and stops predicting while an unstuck fades out and back in (the car brakes);
* translates predictions outside the game's dead zone
  (:func:`wrappers.dead_zone.dead_zone_translate`; a dead zone of 0 is the identity);
* watches the run folder for a newer checkpoint and swaps it in **when the next unstuck
  starts** (``info["unstuck_phase"]`` turns to ``"fade_out"``), never before, so a model is never
  replaced in the middle of a manoeuvre;
* shows a live Player Console (raw and translated predictions, FPS, PPS, speed, purpose
  distance, unstucks, model name and age) and feeds the stream layout (:mod:`agents.stream`).

Every load and swap is recorded in :attr:`Player.log` (and the ``logging`` logger
``agents.player``).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from agents.base import Agent
from agents.bc import BCAgent
from agents.stream import RunMetrics, StreamComposer, StreamInputs, StreamWriter
from imitation.checkpoint import CheckpointError, checkpoint_step, checkpoints_newest_first
from wrappers.dead_zone import dead_zone_translate

logger = logging.getLogger(__name__)


class Pacer:
    """Holds a loop to ``rate`` iterations per second of wall time; ``rate=None`` runs free.

    When an iteration is late the schedule restarts from now: a slow moment is never made up
    by a burst of fast predictions.
    """

    def __init__(self, rate: float | None) -> None:
        self.period = 1.0 / rate if rate else 0.0
        self.deadline = time.perf_counter()

    def wait(self) -> None:
        """Sleep until the next iteration is due."""
        if not self.period:
            return
        self.deadline += self.period
        delay = self.deadline - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        else:
            self.deadline = time.perf_counter()


@dataclass(frozen=True, kw_only=True)
class PlayerConfig:
    """How the player drives.

    Attributes:
        rate: target predictions per second of real time (ignored with ``fast``).
        fast: predict as fast as possible.
        dead_zone: game dead zone in [0, 1), one for all components or per component
            (``(throttle_brake, steering)``); 0 = identity.
        swap: swap in newer checkpoints of the run folder at the next unstuck.
        check_every: steps between looks for a newer checkpoint (a folder listing).
        console: show the live Player Console in the terminal.
        progress: show a progress bar instead (when ``console`` is off).
        convcam: compute the Convcam for the stream every this many steps (0 = never).
    """

    rate: float = 30.0
    fast: bool = False
    dead_zone: float | tuple[float, ...] = 0.0
    swap: bool = True
    check_every: int = 30
    console: bool = True
    progress: bool = False
    convcam: int = 1

    def __post_init__(self) -> None:
        if not self.rate > 0:
            raise ValueError(f"PlayerConfig.rate must be > 0, got {self.rate}")
        dz = np.asarray(self.dead_zone, np.float32)
        if np.any(dz < 0) or np.any(dz >= 1):
            raise ValueError(f"PlayerConfig.dead_zone must be in [0, 1), got {self.dead_zone}")
        if self.check_every < 1:
            raise ValueError(f"PlayerConfig.check_every must be >= 1, got {self.check_every}")


@dataclass(frozen=True)
class PlayerStats:
    """What a run did."""

    steps: int
    predictions: int
    wall_s: float
    pps: float
    fps: float
    swaps: int
    unstucks: int
    distance_m: float
    collisions: int


def model_age(created: str, now: float | None = None) -> str:
    """``"3 min"``-style age of a checkpoint creation stamp (``"?"`` when unknown)."""
    try:
        stamp = datetime.strptime(created, "%Y-%m-%dT%H:%M:%S%z").timestamp()
    except (TypeError, ValueError):
        return "?"
    age = max(0.0, (time.time() if now is None else now) - stamp)
    if age < 120:
        return f"{age:.0f} s"
    if age < 7200:
        return f"{age / 60:.0f} min"
    return f"{age / 3600:.1f} h"


class Player:
    """Drives ``env`` with a checkpoint (or any agent) and keeps the console state.

    Args:
        env: an unwrapped-observation `GTA5Drive-v0` env (``cinematic=True`` for a stream).
        checkpoint: checkpoint file or run folder (its newest checkpoint is loaded).
        agent: an agent to drive with instead of a checkpoint (no hot swap).
        run_dir: folder watched for newer checkpoints and read for trainer metrics; default:
            ``checkpoint`` when it is a folder, else the run folder the file is in.
        config: rate, dead zone, swapping, console.
        stream: a :class:`agents.stream.StreamWriter` to write the stream layout to, or None.
        on_step: called after every step with ``(player, info)`` (tests, dashboards).
    """

    def __init__(
        self,
        *,
        env: gym.Env,
        checkpoint: str | Path | None = None,
        agent: Agent | None = None,
        run_dir: str | Path | None = None,
        config: PlayerConfig | None = None,
        stream: Any = None,
        on_step: Callable[[Player, Mapping[str, Any]], None] | None = None,
    ) -> None:
        if (checkpoint is None) == (agent is None):
            raise ValueError("give the player either checkpoint= or agent=")
        self.env = env
        self.config = config or PlayerConfig()
        self.stream = stream
        self.on_step = on_step
        self.log: list[dict[str, Any]] = []
        self.step_count = 0
        self.predictions = 0
        self.swaps = 0
        self.raw = np.zeros(env.action_space.shape or (2,), np.float32)
        self.translated = self.raw.copy()
        self._tick: deque[float] = deque(maxlen=60)
        self._pred_tick: deque[float] = deque(maxlen=60)
        self._pending: Path | None = None
        self._rejected: set[tuple[Path, float]] = set()
        self.info: Mapping[str, Any] = {}
        self.checkpoint_path: Path | None = None
        self.watch_dir: Path | None = None
        if checkpoint is not None:
            path = Path(checkpoint)
            self.watch_dir = (
                Path(run_dir)
                if run_dir is not None
                else (path if path.is_dir() else _run_folder_of(path))
            )
            self.agent: Agent = self._load(path, reason="load")
        else:
            assert agent is not None
            self.agent = agent
            self.watch_dir = Path(run_dir) if run_dir is not None else None
        self.run_dir = Path(run_dir) if run_dir is not None else self.watch_dir
        self.metrics = RunMetrics(self.run_dir)

    # ------------------------------------------------------------------ checkpoints

    def _load(self, path: Path, *, reason: str) -> BCAgent:
        agent = BCAgent.from_checkpoint(path)
        self.checkpoint_path = Path(agent.meta["path"])
        self._record(reason, checkpoint=str(self.checkpoint_path), model_step=agent.meta["step"])
        return agent

    def _record(self, event: str, **fields: Any) -> None:
        entry = {"event": event, "step": self.step_count, "time": time.time(), **fields}
        self.log.append(entry)
        logger.info("player %s at step %d: %s", event, self.step_count, fields)

    def _newer_checkpoint(self) -> Path | None:
        if self.watch_dir is None or self.checkpoint_path is None:
            return None
        latest = next(
            (
                c
                for c in checkpoints_newest_first(self.watch_dir)
                if (c, _mtime(c)) not in self._rejected
            ),
            None,
        )
        if latest is None or latest.resolve() == self.checkpoint_path.resolve():
            return None
        cur = (checkpoint_step(self.checkpoint_path), _mtime(self.checkpoint_path))
        new = (checkpoint_step(latest), _mtime(latest))
        return latest if new > cur else None

    def _maybe_swap(self, phase_started: bool) -> None:
        cfg = self.config
        if not cfg.swap or self.checkpoint_path is None:
            return
        if self.step_count % cfg.check_every == 0 or phase_started:
            newer = self._newer_checkpoint()
            if newer is not None and newer != self._pending:
                self._pending = newer
                self._record("new_checkpoint_seen", checkpoint=str(newer))
        if phase_started and self._pending is not None:
            old = self.checkpoint_path
            try:
                agent = self._load(self._pending, reason="swap")
            except CheckpointError as exc:
                # A junk or half-copied newer file must not stop the driving: keep the current
                # weights, say why, and do not try that file again (unless it changes).
                self._rejected.add((self._pending, _mtime(self._pending)))
                self._record("skip_checkpoint", checkpoint=str(self._pending), reason=str(exc))
                logger.warning("player keeps %s: %s", old, exc)
                self._pending = None
                return
            self.agent = agent
            self.agent.reset()
            self.log[-1]["previous"] = str(old)
            self._pending = None
            self.swaps += 1

    # ------------------------------------------------------------------ console

    @property
    def model_name(self) -> str:
        """Name of the model driving (with its checkpoint file)."""
        if isinstance(self.agent, BCAgent):
            meta = self.agent.meta
            return f"{meta.get('model_name', '?')} step {meta.get('step', '?')}"
        return self.agent.name

    @property
    def model_created(self) -> str:
        """Creation stamp of the checkpoint driving ('' for other agents)."""
        return str(self.agent.meta.get("created", "")) if isinstance(self.agent, BCAgent) else ""

    def rates(self) -> tuple[float, float]:
        """Frames (env steps) per second and predictions per second over the last ~2 s."""

        def rate(ticks: Sequence[float]) -> float:
            if len(ticks) < 2 or ticks[-1] <= ticks[0]:
                return 0.0
            return (len(ticks) - 1) / (ticks[-1] - ticks[0])

        return rate(self._tick), rate(self._pred_tick)

    def console_lines(self) -> list[str]:
        """The Player Console as text lines (terminal and stream)."""
        return [f"{key:<11s}{value}" for key, value in self.console_rows()]

    def console_rows(self) -> list[tuple[str, str]]:
        """The Player Console as (label, value) rows."""
        info = self.info
        fps, pps = self.rates()
        dz = np.broadcast_to(np.asarray(self.config.dead_zone, np.float32), self.raw.shape)
        purpose = info.get("purpose_point")
        pos = info.get("position")
        dist = (
            float(np.hypot(*(np.asarray(purpose)[:2] - np.asarray(pos)[:2])))
            if purpose is not None and pos is not None
            else float("nan")
        )
        phase = info.get("unstuck_phase") or "driving"
        return [
            ("model", self.model_name),
            (
                "age",
                f"{model_age(self.model_created)}  swaps {self.swaps}"
                + ("  (new model waiting for unstuck)" if self._pending else ""),
            ),
            ("raw", f"throttle/brake {self.raw[0]:+.3f}  steering {self.raw[-1]:+.3f}"),
            (
                "translated",
                f"throttle/brake {self.translated[0]:+.3f}  steering {self.translated[-1]:+.3f}",
            ),
            ("dead zone", ", ".join(f"{v:.2f}" for v in dz)),
            ("FPS / PPS", f"{fps:6.1f} / {pps:6.1f}   step {self.step_count}"),
            ("speed", f"{float(info.get('speed', 0.0)) * 3.6:5.1f} km/h  ({phase})"),
            ("purpose", f"{dist:6.1f} m  reached {int(info.get('purposes_reached', 0))}"),
            (
                "unstucks",
                f"{int(info.get('unstucks', 0))}   collisions {int(info.get('collisions', 0))}"
                f"   distance {float(info.get('distance', 0.0)):.0f} m",
            ),
        ]

    def _console_table(self) -> Any:
        from rich.table import Table

        table = Table(title="Player Console", show_header=False, expand=False)
        table.add_column("what", style="bold cyan")
        table.add_column("value")
        for key, value in self.console_rows():
            table.add_row(key, value)
        return table

    # ------------------------------------------------------------------ driving

    def _stream_frame(self, obs: Mapping[str, np.ndarray]) -> None:
        if not hasattr(self, "_composer"):
            self._composer = StreamComposer()
            self._convcam: np.ndarray | None = None
        cfg = self.config
        agent = self.agent
        if (
            cfg.convcam
            and isinstance(agent, BCAgent)
            and agent.last_inputs is not None
            and self.step_count % cfg.convcam == 0
        ):
            from imitation.convcam import convcam

            self._convcam = convcam(agent.policy.model, agent.last_inputs)
        self.metrics.refresh()
        frame = self._composer.compose(
            StreamInputs(
                third_person=obs.get("cinematic", obs["hood"]),
                hood=obs["hood"],
                convcam=self._convcam,
                player_lines=self.console_lines(),
                trainer_lines=self.metrics.console_lines(),
                loss=self.metrics.loss(),
                model_name=self.model_name,
                created=self.model_created,
            )
        )
        self.stream.write(frame)

    def step(self, obs: Mapping[str, np.ndarray]) -> tuple[Mapping[str, np.ndarray], bool]:
        """Predict (unless an unstuck is fading), translate, step the env; returns (obs, done)."""
        prev_phase = self.info.get("unstuck_phase")
        if prev_phase is None:
            self.raw = np.asarray(self.agent.act(obs, self.info), np.float32)
            self.translated = dead_zone_translate(self.raw, self.config.dead_zone)
            executed = getattr(self.agent, "executed", None)
            if executed is not None:
                executed(self.translated)
            self.predictions += 1
            self._pred_tick.append(time.perf_counter())
            action = self.translated
        else:
            action = np.zeros_like(self.raw)  # ignored by the env while fading
        obs, _, terminated, truncated, info = self.env.step(action)
        self.step_count += 1
        self._tick.append(time.perf_counter())
        self.info = info
        phase_started = info.get("unstuck_phase") == "fade_out" and prev_phase is None
        self._maybe_swap(phase_started)
        if self.stream is not None:
            self._stream_frame(obs)
        if self.on_step is not None:
            self.on_step(self, info)
        return obs, bool(terminated or truncated)

    def run(
        self, *, steps: int | None = None, seconds: float | None = None, seed: int | None = None
    ) -> PlayerStats:
        """Drive for ``steps`` env steps or ``seconds`` of real time (Ctrl-C stops too)."""
        if steps is None and seconds is None:
            raise ValueError("give steps= or seconds= (or both)")
        cfg = self.config
        obs, self.info = self.env.reset(seed=seed)
        self.agent.reset()
        pacer = Pacer(None if cfg.fast else cfg.rate)
        t0 = time.perf_counter()
        live = bar = None
        if cfg.console:
            from rich.live import Live

            live = Live(self._console_table(), refresh_per_second=4)
            live.start()
        elif cfg.progress:
            from tqdm import tqdm

            bar = tqdm(total=steps, unit="step", desc="play")
        unstucks = collisions = 0
        distance = 0.0
        try:
            while (steps is None or self.step_count < steps) and (
                seconds is None or time.perf_counter() - t0 < seconds
            ):
                obs, done = self.step(obs)
                if live is not None and self.step_count % 8 == 0:
                    live.update(self._console_table())
                if bar is not None:
                    bar.update(1)
                if done:
                    unstucks += int(self.info["unstucks"])
                    collisions += int(self.info["collisions"])
                    distance += float(self.info["distance"])
                    obs, self.info = self.env.reset()
                    self.agent.reset()
                pacer.wait()
        except KeyboardInterrupt:
            pass
        finally:
            if live is not None:
                live.update(self._console_table())
                live.stop()
            if bar is not None:
                bar.close()
        wall = time.perf_counter() - t0
        return PlayerStats(
            steps=self.step_count,
            predictions=self.predictions,
            wall_s=wall,
            pps=self.predictions / wall if wall > 0 else 0.0,
            fps=self.step_count / wall if wall > 0 else 0.0,
            swaps=self.swaps,
            unstucks=unstucks + int(self.info.get("unstucks", 0)),
            distance_m=distance + float(self.info.get("distance", 0.0)),
            collisions=collisions + int(self.info.get("collisions", 0)),
        )


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return -1.0


def _run_folder_of(path: Path) -> Path:
    """The run folder of a checkpoint file (``run/checkpoints/step-….safetensors`` → ``run``)."""
    parent = path.parent
    return parent.parent if parent.name == "checkpoints" else parent


def film(
    *,
    checkpoint: str | Path,
    out: str | Path,
    steps: int,
    run_dir: str | Path | None = None,
    town_seed: int = 1000,
    progress: bool = True,
    env_kwargs: Mapping[str, Any] | None = None,
) -> Path:
    """Drive a checkpoint for ``steps`` steps (as fast as possible) and write the stream MP4."""
    import gymnasium as gym

    import gta_env  # noqa: F401

    kwargs = {"backend": "sim", "cinematic": True, "town_seed": town_seed, **dict(env_kwargs or {})}
    env = gym.make("GTA5Drive-v0", max_episode_steps=steps + 1, **kwargs)
    writer = StreamWriter(out)
    try:
        player = Player(
            env=env,
            checkpoint=checkpoint,
            run_dir=run_dir,
            config=PlayerConfig(fast=True, console=False, swap=False, progress=progress),
            stream=writer,
        )
        player.run(steps=steps, seed=town_seed)
    finally:
        writer.close()
        env.close()
    return writer.path
