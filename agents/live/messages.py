"""Every message between the live actors and the console, as frozen dataclasses.

What crosses Ray (an actor's ``stats()``, a player's report and its per-version driving
segments) used to be a dict built in one module and read by key in two others; a renamed key
failed only at run time, as a blank in the console. Now each message is a type here, built
by its actor and read by attribute. ``to_dict()`` gives the JSON form written to
``live.jsonl`` and ``players/player<i>.json``; ``msg["key"]`` and ``msg.get("key")`` read a
field by name for code that handles the JSON form and a message alike (logs, benchmarks).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from imitation.balance import BinFill

__all__ = [
    "CollectorStatus",
    "Message",
    "PlayerReport",
    "PlayerStatus",
    "Segment",
    "TrainerStatus",
    "jsonable",
]


def jsonable(value: Any) -> Any:
    """``value`` with messages, mappings, sequences and numpy scalars made JSON-ready."""
    if isinstance(value, Message):
        return value.to_dict()
    if isinstance(value, BinFill):  # the log's short form: what a reader of live.jsonl plots
        return {"ready": value.ready, "counts": value.counts.tolist()}
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


class Message:
    """Base of the live messages: field access by name and the JSON form."""

    def __getitem__(self, key: str) -> Any:
        if key not in self._field_names():
            raise KeyError(f"{type(self).__name__} has no field {key!r}")
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        """A field by name, or ``default`` if the message has no such field."""
        return getattr(self, key) if key in self._field_names() else default

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form (nested messages and numpy values converted)."""
        return {
            f.name: jsonable(getattr(self, f.name))
            for f in dataclasses.fields(self)  # type: ignore[arg-type]
        }

    @classmethod
    def _field_names(cls) -> frozenset[str]:
        return frozenset(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]


@dataclass(frozen=True, kw_only=True)
class CollectorStatus(Message):
    """A collector's counters (``CollectorWorker.stats()``).

    Attributes:
        index: the collector's number.
        pid: its process id (a new one means Ray restarted it).
        incarnation: 0 in the first process, the pid after a restart.
        time: when the status was taken (Unix time).
        started_at: when the process started.
        first_sample_at: when the first sample was recorded, or None.
        recorded: samples recorded.
        sent_samples: samples sent to the trainer.
        sent_sets: sets sent.
        failed_sends: sends the trainer did not acknowledge (it was restarting).
        durable_samples: samples the trainer acknowledged, which it does only once they are
            committed to storage.
        resent_samples: samples sent again after an unacknowledged send.
        lost_samples: samples given up on after every retry failed.
        episodes: episodes started.
        fill: the balancer's queued samples per bin, per output.
        error: the traceback that stopped the recording thread, or None.
        role: always ``"collector"``.
    """

    index: int
    pid: int
    incarnation: int
    time: float
    started_at: float
    first_sample_at: float | None
    recorded: int
    sent_samples: int
    sent_sets: int
    failed_sends: int
    episodes: int
    durable_samples: int = 0
    resent_samples: int = 0
    lost_samples: int = 0
    fill: dict[str, BinFill] = field(default_factory=dict)
    error: str | None = None
    role: str = "collector"


@dataclass(frozen=True, kw_only=True)
class TrainerStatus(Message):
    """The trainer's counters (``TrainerWorker.stats()``).

    Attributes:
        pid: its process id.
        time: when the status was taken.
        started_at: when the process started.
        step: optimiser steps done.
        batch_size: samples per step.
        restored_step: the step it resumed from (0 for a fresh start).
        resumed_from: the checkpoint it resumed from, or None.
        warm_samples: samples read back from storage into the buffers at the start.
        loss: the last logged training loss, or None.
        buffer_fill: the buffers' fill (0-1).
        buffer_samples: samples in the buffers.
        buffer_ready: whether the buffers are full enough to draw from.
        inbox: received samples waiting for buffer room.
        inbox_dropped: samples the inbox let go (they stay in storage).
        received_samples: samples received from collectors.
        received_sets: sets received.
        per_collector: samples received per collector index.
        committed_samples: samples committed to storage.
        version: the last published weight version (-1: none yet).
        publishes: publications of this process.
        duplicate_samples: received samples skipped because storage already held them (a set
            re-sent after the trainer committed it but died before acknowledging).
        loop_restarts: times the training loop was restarted after an error.
        last_loop_error: the last line of the error that restarted it, or None.
        error: the traceback that stopped training, or None.
        role: always ``"trainer"``.
    """

    pid: int
    time: float
    started_at: float
    step: int
    batch_size: int
    restored_step: int
    resumed_from: str | None
    warm_samples: int
    loss: float | None
    buffer_fill: float
    buffer_samples: int
    buffer_ready: bool
    inbox: int
    inbox_dropped: int
    received_samples: int
    received_sets: int
    per_collector: dict[int, int] = field(default_factory=dict)
    committed_samples: int = 0
    version: int = -1
    publishes: int = 0
    duplicate_samples: int = 0
    loop_restarts: int = 0
    last_loop_error: str | None = None
    error: str | None = None
    role: str = "trainer"


@dataclass(frozen=True, kw_only=True)
class PlayerStatus(Message):
    """A player's counters (``PlayerWorker.stats()``); the driving fields are None until it
    has weights and drives.

    Attributes:
        index: the player's number.
        pid: its process id.
        time: when the status was taken.
        started_at: when the process started.
        driving: whether it drives (it waits for the first weights).
        error: the traceback that stopped driving, or None.
        steps: env steps.
        predictions: model predictions.
        fps: env steps per second.
        pps: predictions per second.
        version: the weight version in use.
        pending: the newer version waiting for the next unstuck, or None.
        swaps: weight swaps so far.
        distance_m: metres driven.
        unstucks: unstucks so far.
        collisions: collisions so far.
        phase: the env's unstuck phase now, or None.
        role: always ``"player"``.
    """

    index: int
    pid: int
    time: float
    started_at: float
    driving: bool
    error: str | None = None
    steps: int | None = None
    predictions: int | None = None
    fps: float | None = None
    pps: float | None = None
    version: int | None = None
    pending: int | None = None
    swaps: int | None = None
    distance_m: float | None = None
    unstucks: int | None = None
    collisions: int | None = None
    phase: str | None = None
    role: str = "player"


@dataclass(frozen=True, kw_only=True)
class Segment(Message):
    """How one weight version drove while it was in use.

    Attributes:
        version: the weight version.
        model_step: the trainer step it was published at.
        steps: env steps it drove.
        seconds: wall time it drove.
        distance_m: metres driven.
        progress_m: metres gained along the planned route.
        unstucks: unstucks while it drove.
        collisions: collisions while it drove.
        predictions: predictions it made.
        m_per_1000_steps: metres per 1,000 steps.
        progress_per_1000_steps: route metres per 1,000 steps.
        unstucks_per_1000_steps: unstucks per 1,000 steps.
    """

    version: int
    model_step: int
    steps: int
    seconds: float
    distance_m: float
    progress_m: float
    unstucks: int
    collisions: int
    predictions: int
    m_per_1000_steps: float
    progress_per_1000_steps: float
    unstucks_per_1000_steps: float


@dataclass(frozen=True, kw_only=True)
class PlayerReport(Message):
    """A player's log and per-version driving (``PlayerWorker.report()``/``stop()``).

    Attributes:
        index: the player's number.
        pid: its process id, or None if it never drove.
        log: its events (loads, weights seen, swaps), JSON-ready.
        segments: per weight version, in order (the last one still open).
        error: the traceback that stopped driving, or None.
    """

    index: int
    pid: int | None = None
    log: tuple[dict[str, Any], ...] = ()
    segments: tuple[Segment, ...] = ()
    error: str | None = None
