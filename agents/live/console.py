"""The live system's console: one rich view of every collector, the trainer and every player.

:class:`RateMeter` turns the actors' counters into rates (per process, so a restarted actor
starts a new series); :func:`render` draws a :class:`Snapshot` and knows nothing of Ray.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from agents.live.messages import CollectorStatus, PlayerStatus, TrainerStatus
from imitation.collect import fill_line


@dataclass
class Snapshot:
    """What the console shows at one moment.

    Attributes:
        collectors: per collector, its ``stats()`` (None while unreachable, e.g. restarting).
        trainer: the trainer's ``stats()`` or None.
        players: per player, its ``stats()`` or None.
        rates: derived rates, keyed like ``"collector0/samples_per_s"``.
        restarts: restarts seen per actor name (``"collector0"``, ``"trainer"``, ...).
        header: lines above the tables (Ray address, auth, dashboard, run folder).
        elapsed: seconds since the start.
    """

    collectors: list[CollectorStatus | None]
    trainer: TrainerStatus | None
    players: list[PlayerStatus | None]
    rates: dict[str, float] = field(default_factory=dict)
    restarts: dict[str, int] = field(default_factory=dict)
    header: list[str] = field(default_factory=list)
    elapsed: float = 0.0


class RateMeter:
    """Rates of growing counters, per actor process (a new pid restarts the series)."""

    def __init__(self) -> None:
        self._last: dict[str, tuple[int, float, float]] = {}
        self._restarts: dict[str, int] = {}
        self._pids: dict[str, int] = {}

    def rate(self, name: str, pid: int, value: float, now: float | None = None) -> float:
        """Per-second rate of ``value`` since the previous call for ``name`` (0 at first)."""
        now = time.monotonic() if now is None else now
        last = self._last.get(name)
        self._last[name] = (pid, value, now)
        if last is None or last[0] != pid or now <= last[2]:
            return 0.0
        return max(0.0, (value - last[1]) / (now - last[2]))

    def seen(self, actor: str, pid: int) -> int:
        """Record ``actor``'s pid; returns how many times it changed (restarts)."""
        old = self._pids.get(actor)
        if old is not None and old != pid:
            self._restarts[actor] = self._restarts.get(actor, 0) + 1
        self._pids[actor] = pid
        return self._restarts.get(actor, 0)

    @property
    def restarts(self) -> dict[str, int]:
        """Restarts seen per actor."""
        return dict(self._restarts)


def add_rates(snap: Snapshot, meter: RateMeter, now: float | None = None) -> Snapshot:
    """Fill ``snap.rates`` and ``snap.restarts`` from the counters in it."""
    for i, c in enumerate(snap.collectors):
        if c is not None:
            name = f"collector{i}"
            meter.seen(name, c.pid)
            snap.rates[f"{name}/recorded_per_s"] = meter.rate(f"{name}/rec", c.pid, c.recorded, now)
            snap.rates[f"{name}/samples_per_s"] = meter.rate(
                f"{name}/sent", c.pid, c.sent_samples, now
            )
    t = snap.trainer
    if t is not None:
        meter.seen("trainer", t.pid)
        snap.rates["trainer/batches_per_s"] = meter.rate("trainer/step", t.pid, t.step, now)
        snap.rates["trainer/samples_per_s"] = snap.rates["trainer/batches_per_s"] * t.batch_size
        snap.rates["trainer/received_per_s"] = meter.rate(
            "trainer/received", t.pid, t.received_samples, now
        )
    for i, p in enumerate(snap.players):
        if p is not None:
            meter.seen(f"player{i}", p.pid)
    snap.restarts = meter.restarts
    return snap


def _fmt(value: Any, spec: str = ".3f") -> str:
    return "-" if value is None else format(value, spec)


def render(snap: Snapshot) -> Any:
    """The console as a rich renderable."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    parts: list[Any] = [Text(line, style="bold") for line in snap.header]
    parts.append(Text(f"running {snap.elapsed:6.0f} s", style="dim"))

    ct = Table(title="Collectors", expand=False)
    for col in (
        "#",
        "pid",
        "restarts",
        "recorded/s",
        "sent samples/s",
        "sent",
        "episodes",
        "bin fill",
    ):
        ct.add_column(col)
    for i, c in enumerate(snap.collectors):
        name = f"collector{i}"
        if c is None:
            ct.add_row(str(i), "-", str(snap.restarts.get(name, 0)), "(restarting)", "", "", "", "")
            continue
        fills = "\n".join(fill_line(k, f) for k, f in c.fill.items()) or "warming up"
        status = f"{snap.rates.get(f'{name}/recorded_per_s', 0.0):.0f}"
        if c.error:
            status = "[red]error[/red]"
        ct.add_row(
            str(i),
            str(c.pid),
            str(snap.restarts.get(name, 0)),
            status,
            f"{snap.rates.get(f'{name}/samples_per_s', 0.0):.0f}",
            str(c.sent_samples),
            str(c.episodes),
            fills,
        )
    parts.append(ct)

    tt = Table(title="Trainer", expand=False)
    for col in (
        "pid",
        "restarts",
        "step",
        "batches/s",
        "samples/s",
        "loss",
        "buffer",
        "inbox",
        "stored",
        "weights",
    ):
        tt.add_column(col)
    t = snap.trainer
    if t is None:
        tt.add_row("-", str(snap.restarts.get("trainer", 0)), "(restarting)", *[""] * 7)
    else:
        buffer = f"{t.buffer_fill:.0%} ({t.buffer_samples})"
        if not t.buffer_ready:
            buffer += " filling"
        step = str(t.step)
        if t.restored_step:
            step += f" (resumed {t.restored_step}, warm {t.warm_samples})"
        if t.loop_restarts:
            step += (
                f"\n[yellow]training loop restarted {t.loop_restarts}x[/yellow] after: "
                f"{t.last_loop_error}"
            )
        if t.error:
            step = "[red]error[/red] " + step
        tt.add_row(
            str(t.pid),
            str(snap.restarts.get("trainer", 0)),
            step,
            f"{snap.rates.get('trainer/batches_per_s', 0.0):.2f}",
            f"{snap.rates.get('trainer/samples_per_s', 0.0):.0f}",
            _fmt(t.loss, ".4f"),
            buffer,
            str(t.inbox),
            str(t.committed_samples),
            f"v{t.version}" if t.version >= 0 else "none yet",
        )
    parts.append(tt)

    pt = Table(title="Players", expand=False)
    for col in (
        "#",
        "pid",
        "restarts",
        "PPS",
        "weights",
        "swaps",
        "distance",
        "unstucks",
        "collisions",
    ):
        pt.add_column(col)
    for i, p in enumerate(snap.players):
        name = f"player{i}"
        if p is None:
            pt.add_row(str(i), "-", str(snap.restarts.get(name, 0)), "(restarting)", *[""] * 5)
            continue
        if not p.driving:
            state = "[red]error[/red]" if p.error else "waiting for weights"
            pt.add_row(str(i), str(p.pid), str(snap.restarts.get(name, 0)), state, *[""] * 5)
            continue
        weights = f"v{p.version}"
        if p.pending is not None:
            weights += f" (v{p.pending} at next unstuck)"
        pt.add_row(
            str(i),
            str(p.pid),
            str(snap.restarts.get(name, 0)),
            f"{p.pps:.1f}",
            weights,
            str(p.swaps),
            f"{p.distance_m:.0f} m",
            str(p.unstucks),
            str(p.collisions),
        )
    parts.append(pt)
    return Group(*parts)


__all__ = ["RateMeter", "Snapshot", "add_rates", "render"]
