"""Collection at scale on one machine: K recording processes writing into one store.

:func:`collect` starts ``workers`` processes (``multiprocessing`` with the *spawn* start method:
every worker gets a fresh interpreter, its own graphics engine and physics world). Each drives
its own towns with the noisy expert through a :class:`~imitation.record.Recorder` and writes
chunks into the shared store directory under its own writer id (chunk names never collide).
With ``balance`` set, each worker balances its stream on the fly and writes only balanced sets.

Episodes and towns
------------------
Episodes are numbered globally: worker ``w`` of ``K`` records episodes ``start + w``,
``start + w + K``, ... where ``start`` is one past the largest ``episode_id`` already in the
store (0 for a new one). Episode ``g`` drives town ``seed + g`` (a new town every episode, so the
workers' towns are disjoint), its env is reset with a seed derived from ``(seed, g)`` and its
noise draws from a generator seeded with ``(seed, g)``: an episode's data depends only on the
seed and its number, not on how many workers there are. A rerun on the same directory appends:
new writer ids and, with the same ``seed``, new towns.

Stopping
--------
Ctrl-C in the main process sets a stop flag; workers (which ignore SIGINT themselves) finish the
current step, flush their pending samples and exit, so nothing is lost. A second Ctrl-C
terminates them (losing at most each worker's chunk in flight). A worker killed outright
(``kill -9``) loses at most its chunk in flight; the others carry on and the result names it.
If the main process dies, workers notice within a few steps, flush and exit.
"""

from __future__ import annotations

import contextlib
import errno
import json
import multiprocessing as mp
import multiprocessing.connection as mpc
import os
import secrets
import signal
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gta_env.fields import check_ints
from imitation.balance import SCHEMES, BinFill, make_balancer
from imitation.dagger import TakeoverConfig
from imitation.noise import ActionNoise, NoiseConfig
from imitation.storage import (
    CorruptChunkWarning,
    SampleStore,
    SampleWriter,
    StorageConfig,
    StoreWriteError,
)
from imitation.storage.files import write_error

__all__ = ["CollectConfig", "CollectResult", "WorkerResult", "collect", "fill_line"]

RUN_LOG = "collect.jsonl"
"""One JSON line per collection run, appended to the store directory (settings, writer ids)."""

V2_OUTPUTS = ("accel", "brake", "steering")


@dataclass(frozen=True, kw_only=True)
class CollectConfig:
    """Settings of a collection run.

    Attributes:
        out: The store directory (created; appended to if it holds a store).
        samples: Samples to write in total (split evenly over the workers). With balancing,
            balanced sets are written whole, so a worker may write up to one set more.
        workers: Recording processes.
        balance: Balancing scheme (``"v1"`` ... ``"v4"``) applied on the fly, or None. v2 writes
            one store per output into ``out/<output>``.
        require: Balancer bins required: ``"seen"`` (suits the continuous expert) or ``"all"``.
        warmup: Samples each worker's balancer sees before its first set.
        max_per_bin: Most samples a worker's balancer queues per bin.
        noise: Perturbations of the executed actions (labels stay clean).
        driver: Makes the learner that drives instead of the expert, which still labels every
            sample (DAgger, :mod:`imitation.dagger`): a picklable callable, called once in each
            worker, returning an agent with ``reset()``, ``act(obs, info)`` and
            ``executed(action)``, e.g. ``functools.partial(BCAgent.from_checkpoint, "runs/bc")``.
            None: the expert drives.
        takeover: When the expert takes the wheel from ``driver`` (stuck, off the route, after
            a collision).
        seed: Base seed: episode ``g`` drives town ``seed + g``, and episodes are numbered over
            the whole store, so a rerun appending to it drives new towns (after a first run of
            episode 0, ``--seed 1`` drives town 2, not 1: use a new ``--out`` for a given town).
        traffic: Traffic cars per town.
        weather: Weather preset or ``"random"`` (drawn per episode).
        hood_size: Hood camera ``(height, width)``.
        cinematic: Also record the chase camera.
        episode_steps: Most steps per episode (one town each); the env's own limit is 3,600.
        backend: Env backend (``"sim"``; ``"gta5"`` needs the game).
        storage: How chunks are written.
        env_kwargs: Further ``gym.make`` arguments.
    """

    out: Path
    samples: int
    workers: int = 1
    balance: str | None = None
    require: str = "seen"
    warmup: int = 1000
    max_per_bin: int = 1000
    noise: NoiseConfig = field(default_factory=NoiseConfig.default)
    driver: Callable[[], Any] | None = None
    takeover: TakeoverConfig = field(default_factory=TakeoverConfig)
    seed: int = 0
    traffic: int = 8
    weather: str = "random"
    hood_size: tuple[int, int] = (90, 160)
    cinematic: bool = False
    episode_steps: int = 3600
    backend: str = "sim"
    storage: StorageConfig = field(default_factory=StorageConfig)
    env_kwargs: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "out", Path(self.out))
        check_ints(self, {"samples": 1, "workers": 1, "episode_steps": 1, "seed": 0})
        if self.balance is not None and self.balance not in SCHEMES:
            raise ValueError(
                f"CollectConfig.balance must be None or one of {sorted(SCHEMES)}, "
                f"got {self.balance!r}"
            )
        if not isinstance(self.noise, NoiseConfig):
            raise ValueError(f"CollectConfig.noise must be a NoiseConfig, got {self.noise!r}")
        if self.driver is not None and not callable(self.driver):
            raise ValueError(
                f"CollectConfig.driver must make the learner (a callable), got {self.driver!r}"
            )
        if self.backend not in ("sim", "gta5", "auto"):
            raise ValueError(
                f"CollectConfig.backend must be 'sim', 'gta5' or 'auto', got {self.backend!r}"
            )
        object.__setattr__(self, "hood_size", tuple(int(v) for v in self.hood_size))
        # Build a balancer once so that bad balancer settings fail here, not in every worker.
        if self.balance is not None:
            make_balancer(**self._balancer_kwargs(np.random.default_rng(0)))

    def _balancer_kwargs(self, rng: np.random.Generator) -> dict[str, Any]:
        assert self.balance is not None
        return {
            "scheme": self.balance,
            "rng": rng,
            "max_per_bin": self.max_per_bin,
            "require": self.require,
            "warmup": self.warmup if self.require == "seen" else 0,
        }

    def quota(self, worker: int) -> int:
        """Samples worker ``worker`` writes."""
        return self.samples // self.workers + (worker < self.samples % self.workers)

    def env_kwargs_dict(self) -> dict[str, Any]:
        """Arguments for ``gym.make("GTA5Drive-v0", ...)``."""
        return {
            "backend": self.backend,
            "hood_size": self.hood_size,
            "cinematic": self.cinematic,
            "traffic": self.traffic,
            "weather": self.weather,
            # The game's expert is its NPC driver: labels come from the autopilot's controls.
            **({"autopilot": True} if self.backend != "sim" else {}),
            **dict(self.env_kwargs),
        }


@dataclass(frozen=True)
class WorkerResult:
    """What one worker did (from its last report when it died).

    Attributes:
        worker: Worker index.
        writer_id: Its writer id (part of its chunk names).
        pid: Its process id.
        episodes: Episodes recorded (started).
        towns: Town seeds driven.
        steps: Env steps.
        recorded: Samples made.
        written: Samples written (committed or pending at the last report).
        committed: Samples in committed chunks at the last report.
        collisions: Collisions over its episodes.
        perturbed_steps: Steps with a perturbed executed action.
        learner_steps: Steps the ``driver`` drove (the rest: the expert).
        takeovers: Times the expert took over from the ``driver``.
        peak_rss: Highest resident memory seen, bytes (0 when not measured).
        exitcode: Process exit code (negative: killed by that signal).
        error: The worker's traceback if it failed.
    """

    worker: int
    writer_id: str
    pid: int
    episodes: int = 0
    towns: tuple[int, ...] = ()
    steps: int = 0
    recorded: int = 0
    written: int = 0
    committed: int = 0
    collisions: int = 0
    perturbed_steps: int = 0
    learner_steps: int = 0
    takeovers: int = 0
    peak_rss: int = 0
    exitcode: int | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Exited normally."""
        return self.exitcode == 0 and self.error is None


@dataclass(frozen=True)
class CollectResult:
    """What a collection run did.

    Attributes:
        out: The store directory.
        stores: Directories written (``out``, or ``out/<output>`` for v2).
        samples_before: Samples in the store(s) before the run.
        samples_after: Samples in the store(s) after the run.
        seconds: Wall time of the run.
        startup_seconds: Time until the first sample was recorded.
        interrupted: Stopped by Ctrl-C.
        workers: Per-worker results.
    """

    out: Path
    stores: tuple[Path, ...]
    samples_before: int
    samples_after: int
    seconds: float
    startup_seconds: float
    interrupted: bool
    workers: tuple[WorkerResult, ...]

    @property
    def added(self) -> int:
        """Samples this run added."""
        return self.samples_after - self.samples_before

    @property
    def samples_per_second(self) -> float:
        """Samples recorded per second once the workers were running (all workers)."""
        dt = max(self.seconds - self.startup_seconds, 1e-9)
        return sum(w.recorded for w in self.workers) / dt

    @property
    def ok(self) -> bool:
        """Every worker exited normally."""
        return all(w.ok for w in self.workers)

    @property
    def learner_share(self) -> float:
        """Share of the steps a ``driver`` drove (0 when the expert drove them all)."""
        steps = sum(w.steps for w in self.workers)
        return sum(w.learner_steps for w in self.workers) / steps if steps else 0.0

    @property
    def takeovers(self) -> int:
        """Times the expert took over from the ``driver``, all workers."""
        return sum(w.takeovers for w in self.workers)

    def line(self) -> str:
        """One-line summary."""
        failed = [w for w in self.workers if not w.ok]
        episodes = sum(w.episodes for w in self.workers)
        text = (
            f"added {self.added} samples ({self.samples_after} in total) from {episodes} "
            f"episodes by {len(self.workers)} workers in {self.seconds:.1f} s "
            f"({self.samples_per_second:.0f} samples/s recorded), "
            f"{sum(w.collisions for w in self.workers)} collisions"
        )
        if self.learner_share:
            text += (
                f"; the learner drove {self.learner_share:.0%} of the steps, the expert took "
                f"over {self.takeovers} times"
            )
        if self.interrupted:
            text += "; interrupted"
        if failed:
            text += "; " + ", ".join(
                f"worker {w.worker} "
                + (f"killed by signal {-w.exitcode}" if w.exitcode and w.exitcode < 0 else "failed")
                for w in failed
            )
        return text


# --------------------------------------------------------------------------------- worker


def _episode_seed(seed: int, episode: int) -> int:
    return int(np.random.SeedSequence([seed, episode]).generate_state(1)[0])


def _fill_payload(fills: dict[str, BinFill]) -> dict[str, Any]:
    return {
        name: (f.labels, f.counts.tolist(), f.required.tolist(), f.per_bin)
        for name, f in fills.items()
    }


def _worker_main(
    config: CollectConfig,
    worker: int,
    writer_id: str,
    first_episode: int,
    conn: mpc.Connection,
    stop_event: Any,
) -> None:
    """Entry point of a worker process (top-level so that *spawn* can find it)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process decides when to stop
    parent = mp.parent_process()
    stats: dict[str, Any] = {
        "episodes": 0,
        "towns": [],
        "steps": 0,
        "recorded": 0,
        "written": 0,
        "committed": 0,
        "collisions": 0,
        "perturbed_steps": 0,
        "learner_steps": 0,
        "takeovers": 0,
    }
    last_send = 0.0
    env = None
    writers: list[SampleWriter] = []

    def send(kind: str, payload: Any) -> None:
        with contextlib.suppress(BrokenPipeError, OSError):
            conn.send((kind, worker, payload))

    try:
        import gymnasium as gym

        import gta_env  # noqa: F401  (registers GTA5Drive-v0)
        from imitation.record import Recorder

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            env = gym.make("GTA5Drive-v0", **config.env_kwargs_dict())
        writer = SampleWriter(config.out, config=config.storage, writer_id=writer_id)
        writers.append(writer)
        output_writers: dict[str, SampleWriter] = {}
        balancer = None
        if config.balance is not None:
            balancer = make_balancer(
                **config._balancer_kwargs(np.random.default_rng([config.seed, worker, 3]))
            )
            if config.balance == "v2":
                for name in V2_OUTPUTS:
                    output_writers[name] = SampleWriter(
                        config.out / name, config=config.storage, writer_id=writer_id
                    )
                writers.extend(output_writers.values())
        driver = None
        if config.driver is not None:
            import torch

            from imitation.dagger import PolicyDriver

            torch.set_num_threads(1)  # one core per worker, as the env
            driver = PolicyDriver(config.driver(), config.takeover)
        recorder = Recorder(
            env,
            writer=writer,
            driver=driver,
            balancer=balancer,
            output_writers=output_writers or None,
            record_cinematic=config.cinematic,
        )
        quota = config.quota(worker)
        step_count = [0]

        def stop() -> bool:
            step_count[0] += 1
            if stop_event.is_set():
                return True
            return step_count[0] % 15 == 0 and parent is not None and not parent.is_alive()

        def on_step(recorded: int, written: int) -> None:
            nonlocal last_send
            now = time.monotonic()
            if now - last_send < 0.25:
                return
            last_send = now
            send("progress", _progress(stats, recorded, written))

        def _progress(base: dict[str, Any], recorded: int, written: int) -> dict[str, Any]:
            p = dict(base)
            p["recorded"] += recorded
            p["written"] += written
            p["committed"] = sum(w.committed_samples for w in writers)
            if driver is not None:
                p["learner_steps"], p["takeovers"] = driver.learner_steps, driver.takeovers
            p["fill"] = _fill_payload(balancer.fill()) if balancer is not None else None
            return p

        episode = first_episode + worker
        while stats["written"] < quota:
            town = config.seed + episode
            recorder.noise = (
                ActionNoise(config=config.noise, rng=np.random.default_rng([config.seed, episode]))
                if config.noise.active
                else None
            )
            stats["episodes"] += 1
            stats["towns"].append(town)
            ep = recorder.record_episode(
                town_seed=town,
                episode_id=episode,
                seed=_episode_seed(config.seed, episode),
                max_steps=config.episode_steps,
                max_written=quota - stats["written"],
                stop=stop,
                on_step=on_step,
            )
            for key, value in (
                ("steps", ep.steps),
                ("recorded", ep.recorded),
                ("written", ep.written),
                ("collisions", ep.collisions),
                ("perturbed_steps", ep.perturbed),
            ):
                stats[key] += value
            if driver is not None:
                stats["learner_steps"], stats["takeovers"] = driver.learner_steps, driver.takeovers
            if ep.stopped:
                break
            episode += config.workers
        for w in writers:
            w.close()
        stats["committed"] = sum(w.committed_samples for w in writers)
        send("done", dict(stats, fill=None))
    except BaseException as exc:
        for w in writers:  # keep what was recorded before the error
            with contextlib.suppress(Exception):
                w.close()
        # A store that cannot be written (disk full, read-only) is not a bug: one line, no trace.
        send("error", str(exc) if isinstance(exc, StoreWriteError) else traceback.format_exc())
        raise SystemExit(1) from None
    finally:
        if env is not None:
            with contextlib.suppress(Exception):
                env.close()
        conn.close()


# ----------------------------------------------------------------------------------- main


def _store_dirs(config: CollectConfig) -> list[Path]:
    if config.balance == "v2":
        return [config.out / name for name in V2_OUTPUTS]
    return [config.out]


def _existing(config: CollectConfig) -> tuple[int, int]:
    """(samples, next episode number) over the store directories of ``config``.

    Raises:
        ValueError: If an existing store has another hood size than the one to record.
    """
    samples, next_episode = 0, 0
    want = (*config.hood_size, 3)
    for root in {config.out, *_store_dirs(config)}:
        if not root.is_dir() or not any(root.glob("*.g5c")):
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CorruptChunkWarning)
            store = SampleStore(root)
        if store.hood_shape is not None and tuple(store.hood_shape) != want:
            raise ValueError(
                f"{root} holds a store of {store.hood_shape[1]}x{store.hood_shape[0]} hood "
                f"frames; collect into another directory or record with hood_size="
                f"{tuple(store.hood_shape[:2])}"
            )
        if len(store):
            next_episode = max(next_episode, int(store.column("episode_id").max()) + 1)
            if root in _store_dirs(config):
                samples += len(store)
        store.close()
    return samples, next_episode


def _count(config: CollectConfig) -> int:
    total = 0
    for root in _store_dirs(config):
        if root.is_dir():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", CorruptChunkWarning)
                store = SampleStore(root)
            total += len(store)
            store.close()
    return total


def fill_line(name: str, fill: BinFill) -> str:
    """One text line showing a balancer output's queue per bin: ``·`` not required, ▁-█ fill."""
    blocks = "▁▂▃▄▅▆▇█"
    top = max(int(fill.counts[fill.required].max()) if fill.required.any() else 0, 1)
    chars = []
    for count, req in zip(fill.counts.tolist(), fill.required.tolist(), strict=True):
        if not req:
            chars.append("·")
        else:
            chars.append(
                blocks[min(int(count * (len(blocks) - 1) / top + 0.999), len(blocks) - 1)]
                if count
                else " "
            )
    return f"{name:>15} {''.join(chars)} ready {fill.ready}/{int(fill.required.sum())}"


def _merge_fills(payloads: list[dict[str, Any]]) -> dict[str, BinFill]:
    out: dict[str, BinFill] = {}
    for payload in payloads:
        for name, (labels, counts, required, per_bin) in payload.items():
            c = np.asarray(counts, np.int64)
            r = np.asarray(required, bool)
            if name in out:
                prev = out[name]
                out[name] = BinFill(prev.labels, prev.counts + c, prev.required | r, per_bin)
            else:
                out[name] = BinFill(tuple(labels), c, r, per_bin)
    return out


class _Workers:
    """The worker processes and what they last reported (their pipes are read here)."""

    def __init__(
        self,
        ctx: Any,
        config: CollectConfig,
        writer_ids: list[str],
        first_episode: int,
        stop_event: Any,
        t0: float,
    ) -> None:
        self.t0 = t0
        self.procs: list[Any] = []
        self.conns: dict[int, mpc.Connection] = {}
        for w in range(config.workers):
            reader, writer_end = ctx.Pipe(duplex=False)
            proc = ctx.Process(
                target=_worker_main,
                args=(config, w, writer_ids[w], first_episode, writer_end, stop_event),
                name=f"gta5drive-collect-{w}",
                daemon=False,
            )
            proc.start()
            writer_end.close()  # so that a dead worker's pipe reads as EOF here
            self.procs.append(proc)
            self.conns[w] = reader
        self.latest: dict[int, dict[str, Any]] = {}
        self.errors: dict[int, str] = {}
        self.peak = [0] * config.workers
        self.startup: float | None = None
        self.alive = set(range(config.workers))
        try:
            import psutil

            self._ps: list[Any] = [psutil.Process(p.pid) for p in self.procs]
        except Exception:  # psutil missing or a worker already gone: no memory figures
            self._ps = []
        self._last_mem = 0.0

    @property
    def pids(self) -> list[int]:
        """The worker process ids."""
        return [p.pid for p in self.procs]

    def poll(self, timeout: float) -> None:
        """Read what the workers sent within ``timeout`` seconds; reap those that exited."""
        alive_sentinels = [self.procs[w].sentinel for w in self.alive]
        ready = mpc.wait([*self.conns.values(), *alive_sentinels], timeout=timeout)
        for w, conn in list(self.conns.items()):
            if conn in ready:
                self._receive(w, conn)
        for w in list(self.alive):
            self._reap(w)
        self._sample_memory()

    def _receive(self, w: int, conn: mpc.Connection) -> None:
        try:
            kind, _, payload = conn.recv()
        except (EOFError, OSError):
            del self.conns[w]
            return
        if kind == "error":
            self.errors[w] = payload
            return
        self.latest[w] = payload
        if self.startup is None and payload["recorded"]:
            self.startup = time.monotonic() - self.t0

    def _reap(self, w: int) -> None:
        if self.procs[w].is_alive():
            return
        pipe = self.conns.get(w)
        if pipe is not None and pipe.poll():
            return  # exited: read what is left in its pipe on the next round
        if pipe is not None:
            self.conns.pop(w).close()
        self.procs[w].join()
        self.alive.discard(w)

    def _sample_memory(self) -> None:
        now = time.monotonic()
        if not self._ps or now - self._last_mem <= 0.5:
            return
        self._last_mem = now
        for w, p in enumerate(self._ps):
            with contextlib.suppress(Exception):
                self.peak[w] = max(self.peak[w], p.memory_info().rss)

    def total(self, key: str) -> int:
        """A counter summed over the workers' latest reports."""
        return sum(p[key] for p in self.latest.values())

    def terminate(self) -> None:
        """Stop the running workers now (they lose at most their chunk in flight)."""
        for w in self.alive:
            self.procs[w].terminate()

    def result(self, w: int, writer_id: str) -> WorkerResult:
        """What worker ``w`` did, from its last report."""
        last = self.latest.get(w, {})
        return WorkerResult(
            worker=w,
            writer_id=writer_id,
            pid=int(self.procs[w].pid or 0),
            episodes=int(last.get("episodes", 0)),
            towns=tuple(last.get("towns", ())),
            steps=int(last.get("steps", 0)),
            recorded=int(last.get("recorded", 0)),
            written=int(last.get("written", 0)),
            committed=int(last.get("committed", 0)),
            collisions=int(last.get("collisions", 0)),
            perturbed_steps=int(last.get("perturbed_steps", 0)),
            learner_steps=int(last.get("learner_steps", 0)),
            takeovers=int(last.get("takeovers", 0)),
            peak_rss=self.peak[w],
            exitcode=self.procs[w].exitcode,
            error=self.errors.get(w),
        )


class _ProgressView:
    """The progress bar, and one line per balancer output showing its bins' fill.

    On a terminal the bar redraws up to 10 times a second. Into a pipe or a log file every
    redraw would be another line of output (a 300-sample run wrote ~130 of them), so there it
    redraws at most every ``PIPE_INTERVAL_S`` seconds and shows no per-bin lines.
    """

    PIPE_INTERVAL_S = 30.0

    def __init__(self, total: int, enabled: bool, *, tty: bool | None = None) -> None:
        from tqdm import tqdm

        self._tqdm = tqdm
        self.enabled = enabled
        self.tty = sys.stderr.isatty() if tty is None else tty
        self.interval = 0.1 if self.tty else self.PIPE_INTERVAL_S
        self.bar = tqdm(
            total=total,
            unit="sample",
            desc="collecting",
            disable=not enabled,
            smoothing=0.1,
            mininterval=self.interval,
        )
        self.fill_bars: dict[str, Any] = {}
        self._drawn = time.monotonic()

    def update(self, workers: _Workers, total: int) -> None:
        """Show the workers' latest counters (redrawn at most every ``interval`` seconds)."""
        self.bar.n = min(workers.total("written"), total)
        self.bar.set_postfix_str(  # drawn with the next redraw, or by close()
            f"recorded {workers.total('recorded')}, committed {workers.total('committed')}",
            refresh=False,
        )
        now = time.monotonic()
        if now - self._drawn < self.interval:
            return
        self._drawn = now
        fills = [p["fill"] for p in workers.latest.values() if p.get("fill")]
        if self.enabled and self.tty and fills:
            for i, (name, f) in enumerate(_merge_fills(fills).items()):
                if name not in self.fill_bars:
                    self.fill_bars[name] = self._tqdm(total=0, position=i + 1, bar_format="{desc}")
                self.fill_bars[name].set_description_str(fill_line(name, f))
        self.bar.refresh()

    def close(self) -> None:
        """Close every bar."""
        self.bar.close()
        for fb in self.fill_bars.values():
            fb.close()


def _log_run(config: CollectConfig, first_episode: int, writer_ids: list[str]) -> None:
    """Append this run's settings to ``out/collect.jsonl``."""
    with open(config.out / RUN_LOG, "a", encoding="utf-8") as log:
        entry = {
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "first_episode": first_episode,
            "writer_ids": writer_ids,
            "noise": config.noise.describe(),
            **{k: v for k, v in asdict(config).items() if k not in ("out", "noise", "storage")},
            "storage": asdict(config.storage),
        }
        log.write(json.dumps(entry, default=str) + "\n")


def collect(
    config: CollectConfig,
    *,
    progress: bool = True,
    on_start: Callable[[list[int]], None] | None = None,
) -> CollectResult:
    """Record ``config.samples`` samples with ``config.workers`` processes into ``config.out``.

    Args:
        config: What to record and where.
        progress: Show a progress bar (samples/s, and the balancers' fill per bin).
        on_start: Called with the worker process ids once they run.

    Returns:
        What happened; :meth:`CollectResult.line` is a one-line summary.

    Raises:
        ValueError: If ``out`` holds a store of another frame size.
        StoreWriteError: If ``out`` cannot be written (read-only, not permitted).
    """
    try:
        config.out.mkdir(parents=True, exist_ok=True)
        if not os.access(config.out, os.W_OK):
            raise OSError(errno.EACCES, "not writable")
    except OSError as exc:
        raise write_error(config.out, exc, "record") from None
    before, first_episode = _existing(config)
    ctx = mp.get_context("spawn")
    stop_event = ctx.Event()
    run = secrets.token_hex(3)
    writer_ids = [f"w{w}r{run}" for w in range(config.workers)]
    _log_run(config, first_episode, writer_ids)
    t0 = time.monotonic()
    interrupted = False
    try:
        workers = _Workers(ctx, config, writer_ids, first_episode, stop_event, t0)
        if on_start is not None:
            on_start(workers.pids)
        view = _ProgressView(config.samples, progress)
        while workers.alive:
            try:
                workers.poll(timeout=0.5)
                view.update(workers, config.samples)
            except KeyboardInterrupt:
                if interrupted:  # second Ctrl-C: stop now, losing at most the chunks in flight
                    workers.terminate()
                else:
                    interrupted = True
                    stop_event.set()
                    view.bar.write(
                        "stopping: workers flush their samples (Ctrl-C again to stop now)"
                    )
    except BaseException:
        # Whatever ends this loop early (an error, a Ctrl-C outside it): let the workers flush
        # and exit instead of recording on while the interpreter waits for them at exit.
        stop_event.set()
        raise
    view.close()
    seconds = time.monotonic() - t0
    return CollectResult(
        out=config.out,
        stores=tuple(_store_dirs(config)),
        samples_before=before,
        samples_after=_count(config),
        seconds=seconds,
        startup_seconds=workers.startup if workers.startup is not None else seconds,
        interrupted=interrupted,
        workers=tuple(workers.result(w, writer_ids[w]) for w in range(config.workers)),
    )
