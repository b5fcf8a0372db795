"""Start, watch and stop the live system on Ray.

:class:`LiveSystem` starts a local Ray instance (or joins a cluster at ``address``), places one
trainer actor, K collector actors and M player actors with the resources their role asks for,
and restarts collectors, players and the trainer when their process dies (Ray
``max_restarts=-1``; the trainer warm-restarts from storage and its newest checkpoint). Stopping
(:meth:`LiveSystem.stop`, also on Ctrl-C) goes collectors → players → trainer, so that every
set sent is stored and the final checkpoint is written before Ray shuts down.

Security: a local instance binds Ray to 127.0.0.1 only (its node address is pinned to loopback,
so no Ray port is reachable from the network) and keeps Ray's token authentication on (Ray
2.60, the version checked here, turns it on for new local clusters and writes the token to
``~/.ray/auth_token``); the live system refuses to start when ``RAY_AUTH_MODE=disabled`` is
set, refuses a Ray without token authentication, and refuses to join a cluster that does not
authenticate, unless ``RayOptions.allow_unauthenticated`` asks for it. The dashboard is off
unless asked for, and then binds to 127.0.0.1 unless another host is given.

Accounting: the final summary's ``samples`` says how many samples collectors sent, how many
the trainer acknowledged as durable, re-sent after a trainer died, lost, skipped as already
stored, and how many the storage holds.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agents.live import require_ray
from agents.live.actor import ray_errors
from agents.live.collector import CollectorWorker
from agents.live.config import LiveConfig
from agents.live.console import RateMeter, Snapshot, add_rates, render
from agents.live.messages import Message, jsonable
from agents.live.player import PlayerWorker
from agents.live.trainer import TrainerWorker

LOG_FILE = "live.jsonl"
"""Console snapshots (one JSON line every few seconds) and the final summary, in the run folder."""


def auth_status() -> str:
    """How the installed Ray authenticates: ``"token"``, ``"disabled"`` or ``"unsupported"``."""
    try:  # a private module of recent Ray: look it up by name
        raylet = importlib.import_module("ray._raylet")
        mode = raylet.get_authentication_mode()
        return "token" if mode == raylet.AuthenticationMode.TOKEN else "disabled"
    except (ImportError, AttributeError):
        return "unsupported"
    except Exception:
        return "unsupported"


def check_auth_not_disabled() -> None:
    """Refuse to run a live system with Ray's token authentication switched off.

    Raises:
        RuntimeError: When ``RAY_AUTH_MODE=disabled`` is set.
    """
    if os.environ.get("RAY_AUTH_MODE", "").strip().lower() == "disabled":
        raise RuntimeError(
            "RAY_AUTH_MODE=disabled switches off Ray's token authentication, which lets anyone "
            "who reaches the cluster run code on it; unset RAY_AUTH_MODE (or set it to 'token') "
            "to run the live system"
        )


@dataclass(frozen=True, kw_only=True)
class RayOptions:
    """How to reach Ray.

    Attributes:
        address: a running cluster's address (``ray://`` or ``host:port``); None starts a
            local instance.
        dashboard: start Ray's dashboard (local instance only).
        dashboard_host: the dashboard's bind address (loopback unless asked otherwise).
        num_cpus: logical CPUs of a local instance; default: enough for every actor's
            request, at least the machine's CPU count.
        allow_unauthenticated: join a cluster without token authentication, or use a Ray
            without it (anyone who reaches such a cluster can run code on it).
    """

    address: str | None = None
    allow_unauthenticated: bool = False
    dashboard: bool = False
    dashboard_host: str = "127.0.0.1"
    num_cpus: float | None = None


class LiveSystem:
    """The running system: its actors, the console and the log.

    Args:
        config: what to run.
        ray_options: where to run it.
    """

    def __init__(self, *, config: LiveConfig, ray_options: RayOptions | None = None) -> None:
        self.config = config
        self.ray_options = ray_options or RayOptions()
        self.ray = require_ray()
        self.trainer: Any = None
        self.collectors: list[Any] = []
        self.players: list[Any] = []
        self.meter = RateMeter()
        self.started_ray = False
        self.t0 = time.monotonic()
        self.header: list[str] = []
        self.summary: dict[str, Any] = {}

    # ------------------------------------------------------------------ start

    def _needed_cpus(self) -> float:
        c = self.config
        return (
            c.collectors * c.collector_resources.num_cpus
            + c.trainer_resources.num_cpus
            + c.players * c.player_resources.num_cpus
        )

    def start(self) -> LiveSystem:
        """Start or join Ray and create every actor (returns self)."""
        ray, opts, cfg = self.ray, self.ray_options, self.config
        check_auth_not_disabled()
        if auth_status() == "unsupported" and not opts.allow_unauthenticated:
            raise RuntimeError(
                f"Ray {ray.__version__} has no token authentication (2.60 has it): "
                'pip install -U "gta5drive[live]", or pass '
                "RayOptions(allow_unauthenticated=True) / --allow-unauthenticated-ray"
            )
        cfg.out.mkdir(parents=True, exist_ok=True)
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"log_to_driver": False}
            if opts.address is None:
                cpus = opts.num_cpus or max(float(os.cpu_count() or 1), self._needed_cpus())
                pin_ray_to_loopback()
                kwargs.update(
                    num_cpus=int(math.ceil(cpus)),
                    include_dashboard=opts.dashboard,
                    dashboard_host=opts.dashboard_host,
                    _node_ip_address="127.0.0.1",
                )
            else:
                kwargs["address"] = opts.address
            ray.init(**kwargs)
            self.started_ray = True
            joined_open = opts.address is not None and auth_status() != "token"
            if joined_open and not opts.allow_unauthenticated:
                ray.shutdown()
                self.started_ray = False
                raise RuntimeError(
                    f"the Ray cluster at {opts.address} does not use token authentication: "
                    "anyone who reaches it can run code on it. Start it with "
                    "RAY_AUTH_MODE=token (and its token in ~/.ray/auth_token here), or pass "
                    "RayOptions(allow_unauthenticated=True) / --allow-unauthenticated-ray"
                )
        self.header = [
            f"gta5drive live: {cfg.collectors} collectors, 1 trainer, {cfg.players} players; "
            f"run folder {cfg.out}",
            f"Ray {ray.__version__} "
            + ("cluster " + opts.address if opts.address else "local instance")
            + f"; token auth: {auth_status()}; dashboard: "
            + (f"http://{opts.dashboard_host}" if opts.dashboard and not opts.address else "off"),
        ]
        restart = {"max_restarts": -1, "max_task_retries": 0}
        trainer_cls = ray.remote(_RayTrainer)
        self.trainer = trainer_cls.options(
            **cfg.trainer_resources.options(), **restart, max_concurrency=4
        ).remote(config=cfg)
        collector_cls = ray.remote(CollectorWorker)
        self.collectors = [
            collector_cls.options(**cfg.collector_resources.options(), **restart).remote(
                config=cfg, index=i, trainer=self.trainer
            )
            for i in range(cfg.collectors)
        ]
        player_cls = ray.remote(PlayerWorker)
        self.players = [
            player_cls.options(**cfg.player_resources.options(), **restart).remote(
                config=cfg, index=i, trainer=self.trainer
            )
            for i in range(cfg.players)
        ]
        self._log({"event": "start", "config": cfg.to_dict(), "header": self.header})
        return self

    # ------------------------------------------------------------------ watch

    def _get(self, actor: Any, method: str, timeout: float = 2.0) -> Any:
        try:
            return self.ray.get(getattr(actor, method).remote(), timeout=timeout)
        except ray_errors():  # restarting or busy: shown as such
            return None

    def snapshot(self) -> Snapshot:
        """Every actor's counters now, with rates and restarts."""
        ray = self.ray
        refs = {
            "trainer": self.trainer.stats.remote(),
            **{f"c{i}": a.stats.remote() for i, a in enumerate(self.collectors)},
            **{f"p{i}": a.stats.remote() for i, a in enumerate(self.players)},
        }
        got: dict[str, Any] = {}
        deadline = time.monotonic() + 3.0
        for key, ref in refs.items():
            try:
                got[key] = ray.get(ref, timeout=max(0.05, deadline - time.monotonic()))
            except ray_errors():  # restarting or busy: the console shows it as such
                got[key] = None
        snap = Snapshot(
            collectors=[got[f"c{i}"] for i in range(len(self.collectors))],
            trainer=got["trainer"],
            players=[got[f"p{i}"] for i in range(len(self.players))],
            header=self.header,
            elapsed=time.monotonic() - self.t0,
        )
        return add_rates(snap, self.meter)

    def pids(self) -> dict[str, int | None]:
        """Process id of every actor (``trainer``, ``collector0``, ``player0``, ...)."""
        out: dict[str, int | None] = {"trainer": self._get(self.trainer, "get_pid")}
        out.update(
            {f"collector{i}": self._get(a, "get_pid") for i, a in enumerate(self.collectors)}
        )
        out.update({f"player{i}": self._get(a, "get_pid") for i, a in enumerate(self.players)})
        return out

    def run(
        self,
        *,
        seconds: float,
        console: bool = True,
        every: float = 1.0,
        on_snapshot: Callable[[Snapshot], None] | None = None,
    ) -> dict[str, Any]:
        """Watch for ``seconds`` (Ctrl-C ends early), then stop everything; returns the summary."""
        live = None
        if console:
            from rich.live import Live

            live = Live(render(self.snapshot()), refresh_per_second=2)
            live.start()
        end = time.monotonic() + seconds
        last_log = 0.0
        try:
            while time.monotonic() < end:
                snap = self.snapshot()
                if live is not None:
                    live.update(render(snap))
                if on_snapshot is not None:
                    on_snapshot(snap)
                if time.monotonic() - last_log >= 5.0:
                    last_log = time.monotonic()
                    self._log({"event": "snapshot", **_snapshot_dict(snap)})
                time.sleep(max(0.0, min(every, end - time.monotonic())))
        except KeyboardInterrupt:
            self._log({"event": "interrupted"})
        finally:
            if live is not None:
                live.stop()
            summary = self.stop()
        return summary

    # ------------------------------------------------------------------ stop

    def stop(self, timeout: float = 60.0) -> dict[str, Any]:
        """Stop collectors, then players, then the trainer (final checkpoint, storage closed)."""
        if self.summary or self.trainer is None:
            return self.summary
        ray = self.ray
        collectors = _gather(ray, [a.stop.remote() for a in self.collectors], timeout)
        players = _gather(ray, [a.stop.remote() for a in self.players], timeout)
        trainer = _gather(ray, [self.trainer.stop.remote()], timeout)[0]
        stored = stored_samples(self.config)
        history = _gather(ray, [self.trainer.publish_history.remote()], 10)[0]
        for actor in [*self.collectors, *self.players, self.trainer]:
            with contextlib.suppress(Exception):
                ray.kill(actor, no_restart=True)
        self.summary = {
            "event": "stop",
            "seconds": time.monotonic() - self.t0,
            "trainer": trainer,
            "publishes": history,
            "collectors": collectors,
            "players": [
                None if p is None else {"index": p.index, "segments": p.segments, "error": p.error}
                for p in players
            ],
            "restarts": self.meter.restarts,
            "samples": sample_accounting(collectors, trainer, stored),
        }
        self._log(self.summary)
        if self.started_ray:
            ray.shutdown()
        return self.summary

    def _log(self, entry: dict[str, Any]) -> None:
        entry = {"time": time.time(), **entry}
        with open(self.config.out / LOG_FILE, "a") as f:
            f.write(json.dumps(jsonable(entry), default=_json_default) + "\n")


class _RayTrainer(TrainerWorker):
    """The trainer actor: publishes with ``ray.put`` so players share one copy of the weights.

    A training loop that keeps failing exits the process, so that Ray restarts the actor.
    """

    def __init__(self, *, config: LiveConfig) -> None:
        import ray

        super().__init__(config=config, put=ray.put)
        self.exit_on_failure = True


def pin_ray_to_loopback() -> None:
    """Make a local Ray instance bind its node address to 127.0.0.1 (not the network's).

    ``ray.init(_node_ip_address="127.0.0.1")`` alone is turned into the machine's reachable IP
    on Linux; with ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` (Ray's single-machine mode, the
    default on Windows and macOS) it stays loopback, for the driver and every worker process.
    """
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    with contextlib.suppress(ImportError, AttributeError):  # already imported: update it
        constants = importlib.import_module("ray._private.ray_constants")
        constants.ENABLE_RAY_CLUSTER = False  # type: ignore[attr-defined]


def stored_samples(config: LiveConfig) -> int | None:
    """Samples in the run's storage now (None if it cannot be read)."""
    import warnings

    from imitation.storage import CorruptChunkWarning, SampleStore

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CorruptChunkWarning)
            with SampleStore(config.storage_dir, update_index=False) as store:
                return len(store)
    except (OSError, ValueError):
        return None


def sample_accounting(
    collectors: list[Any], trainer: Any, stored: int | None
) -> dict[str, int | None]:
    """Sent, durable, re-sent and lost samples over every collector, with the trainer's view."""
    alive = [c for c in collectors if c is not None]
    return {
        "sent": sum(c.sent_samples for c in alive),
        "durable": sum(c.durable_samples for c in alive),
        "resent": sum(c.resent_samples for c in alive),
        "lost": sum(c.lost_samples for c in alive),
        "duplicates_skipped": None if trainer is None else trainer.duplicate_samples,
        "stored": stored,
        "collectors_unreachable": len(collectors) - len(alive),
    }


def _gather(ray: Any, refs: list[Any], timeout: float) -> list[Any]:
    out = []
    for ref in refs:
        try:
            out.append(ray.get(ref, timeout=timeout))
        except ray_errors():  # that actor died or hung while stopping: reported as None
            out.append(None)
    return out


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def _snapshot_dict(snap: Snapshot) -> dict[str, Any]:
    def slim(m: Message | None) -> dict[str, Any] | None:
        if m is None:
            return None
        return {k: v for k, v in m.to_dict().items() if k not in ("fill", "error")}

    return {
        "elapsed": snap.elapsed,
        "rates": snap.rates,
        "restarts": snap.restarts,
        "trainer": slim(snap.trainer),
        "collectors": [slim(c) for c in snap.collectors],
        "players": [slim(p) for p in snap.players],
    }


def run_live(
    *,
    config: LiveConfig,
    seconds: float,
    ray_options: RayOptions | None = None,
    console: bool = True,
) -> dict[str, Any]:
    """Start the live system, watch it for ``seconds`` and stop it; returns the summary."""
    system = LiveSystem(config=config, ray_options=ray_options)
    try:
        system.start()
    except BaseException:
        system.stop()
        raise
    return system.run(seconds=seconds, console=console)


__all__ = [
    "LOG_FILE",
    "LiveSystem",
    "RayOptions",
    "auth_status",
    "check_auth_not_disabled",
    "pin_ray_to_loopback",
    "sample_accounting",
    "stored_samples",
    "run_live",
]
