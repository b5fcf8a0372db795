"""Queueing engines: they hold items per bin and emit balanced sets (schemes configure them).

An engine sees each item as a tuple of bin indices computed by its scheme and knows nothing of
actions. Three kinds:

- :class:`CellEngine`: one queue per cell (a bin, or v1's bin combination); a set is one item
  from every required cell (v1, and each v2 output).
- :class:`MultiEngine`: independent cell engines fed the same items (v2).
- :class:`PerOutputEngine`: two outputs whose sets share one pool, so an item is used once
  over all sets; picks within a bin are steered by sub-bins (v3, v4).

How any engine queues is one :class:`QueueRules`; what a per-output engine balances is one
:class:`OutputPair`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from imitation.balance.bins import Bins
from imitation.balance.sets import BinFill

__all__ = [
    "MODES",
    "CellEngine",
    "Engine",
    "MultiEngine",
    "OutputPair",
    "PerOutputEngine",
    "QueueRules",
    "RawSet",
]

MODES = ("all", "seen", "observed")
"""``"all"``: every defined bin required; ``"seen"``: a bin becomes required when an item falls
in it; ``"observed"``: only bins passed to :meth:`Engine.observe` are required."""

RawSet = tuple[str | None, list[Any], list[int]]
"""A completed set as an engine returns it: (output, items, bin of each item)."""


@dataclass(frozen=True)
class QueueRules:
    """How an engine queues items.

    Attributes:
        mode: Which bins a set requires, one of :data:`MODES`.
        warmup: Items to queue before the first set (stream mode with ``"seen"``).
        max_per_bin: The most items queued per bin (the oldest is dropped), or None.
        min_share: ``"seen"``/``"observed"``: a bin is required only while at least this share
            of the items seen so far fell in it (0: from its first item). A bin rarer than that
            would hold every set back to its own rate (one set per ``per_bin / share`` items):
            its items wait unused until it gets common enough.
    """

    mode: str = "all"
    warmup: int = 0
    max_per_bin: int | None = None
    min_share: float = 0.0


class _Seen:
    """How many items fell in each bin, and which bins that makes required.

    In stream mode (``"seen"``) the counts fade: every :data:`HALF_LIFE` items they are
    halved, so a bin that was common in the last towns but no longer shows up stops being
    required after a while instead of holding every set back.
    """

    def __init__(self, n: int, rules: QueueRules) -> None:
        self.all = rules.mode == "all"
        self.counts = np.zeros(n, np.float64)
        self.total = 0.0
        self.min_share = rules.min_share
        self.fade = rules.mode == "seen" and rules.min_share > 0
        self._since = 0

    def add(self, i: int) -> None:
        self.counts[i] += 1.0
        self.total += 1.0
        self._since += 1
        if self.fade and self._since >= HALF_LIFE:
            self.counts *= 0.5
            self.total *= 0.5
            self._since = 0

    def required(self) -> np.ndarray:
        if self.all:
            return np.ones(len(self.counts), bool)
        if not self.min_share:
            return self.counts > 0
        return self.counts >= max(1.0, self.min_share * self.total)


HALF_LIFE = 5000
"""Stream mode with ``min_share``: items after which the counts that decide required bins halve."""


@dataclass(frozen=True)
class OutputPair:
    """What a :class:`PerOutputEngine` balances and how it picks within a bin.

    An item's bins are ``(bin in output 0, bin in output 1, sub-bin used when output 0 is
    balanced, sub-bin used when output 1 is balanced)``; the sub-bin is the item's bin of the
    *other* output in ``sub_bins``.

    Attributes:
        names: The two outputs.
        bins: The bins of each output.
        sub_bins: The bins sub-bins are counted in (v3: the other output's own, v4: coarser).
        per_bin: Items per bin of the balanced output in a set.
        waterfill: Pick the sub-bin taken least so far in this set (v4); otherwise the one whose
            bin in the other output is most plentiful, to spare rare items (v3).
    """

    names: tuple[str, str]
    bins: tuple[Bins, Bins]
    sub_bins: Bins
    per_bin: int = 1
    waterfill: bool = False


class Engine(ABC):
    """Queues items per bin and emits balanced sets (see :data:`MODES`)."""

    dropped: int = 0

    @abstractmethod
    def add(self, item: Any, bins: tuple[int, ...]) -> list[RawSet]:
        """Queue an item; return completed sets as (output, items, bins)."""

    @abstractmethod
    def pending(self) -> int:
        """Items queued."""

    @abstractmethod
    def observe(self, bins: tuple[int, ...]) -> None:
        """Make the bins of an item required."""

    @abstractmethod
    def fill(self) -> dict[str, BinFill]:
        """Queued items per bin of each output."""


class CellEngine(Engine):
    """Queues per cell; a set is one item per required slot (v1, and each v2 output).

    A *slot* is a place in a set; each slot is served by one cell, and a cell may serve several
    slots (v1 on 2-column actions: a combination with both pedals pressed cannot occur, so its
    slot is served by the accel or the brake cell beside it). A set holds one item per required
    slot, so a cell must hold as many items as it serves required slots.

    Args:
        output: The output the sets balance (None for v1's combinations).
        required: Every cell a set can require, in cell order (labels, fill).
        key: An item's cell from its bins.
        labels: One label per cell of ``required``.
        rules: How items are queued.
        slots: ``(slot id, cell)`` of every slot in set order (default: one slot per cell, the
            slot id being the cell). A slot is required when its cell is.
    """

    def __init__(
        self,
        *,
        output: str | None,
        required: Sequence[int],
        key: Callable[[tuple[int, ...]], int],
        labels: Sequence[str],
        rules: QueueRules,
        slots: Sequence[tuple[int, int]] | None = None,
    ) -> None:
        self.output = output
        self.possible = list(required)
        self.labels = tuple(labels)
        self.key = key
        self.mode = rules.mode
        self.slots = list(slots) if slots is not None else [(c, c) for c in self.possible]
        self.serves: dict[int, int] = dict.fromkeys(self.possible, 0)  # slots per cell
        for _, cell in self.slots:
            self.serves[cell] += 1
        self.pos = {c: i for i, c in enumerate(self.possible)}
        self.counts = np.zeros(len(self.possible), np.int64)  # items queued per cell
        self.need = np.array([self.serves[c] for c in self.possible], np.int64)
        self.seen_bins = _Seen(len(self.possible), rules)
        self.queues: dict[int, deque[Any]] = {c: deque() for c in self.possible}
        self.max_per_bin = rules.max_per_bin
        self.warmup = rules.warmup
        self.seen = 0

    @property
    def required(self) -> list[int]:
        """The required cells, in cell order."""
        req = self.seen_bins.required()
        return [c for c, r in zip(self.possible, req.tolist(), strict=True) if r]

    def observe(self, bins: tuple[int, ...]) -> None:
        i = self.pos.get(self.key(bins))
        if i is not None:
            self.seen_bins.add(i)

    def add(self, item: Any, bins: tuple[int, ...]) -> list[RawSet]:
        c = self.key(bins)
        q = self.queues.get(c)
        if q is None:  # unreachable cell: cannot happen for valid actions
            return []
        i = self.pos[c]
        self.seen += 1
        if self.mode == "seen":
            self.observe(bins)
        if not self.seen_bins.all and self.seen_bins.counts[i] == 0:  # "observed": never seen
            return []
        q.append(item)
        self.counts[i] += 1
        if self.max_per_bin is not None and len(q) > max(self.max_per_bin, self.serves[c]):
            q.popleft()  # the cell holds items of this cell only: the oldest is as good as any
            self.counts[i] -= 1
            self.dropped += 1
        out: list[RawSet] = []
        if self.seen < self.warmup:
            return out
        req = self.seen_bins.required()
        while req.any() and np.all(self.counts[req] >= self.need[req]):
            items, ids = [], []
            for slot, cell in self.slots:
                j = self.pos[cell]
                if req[j]:
                    items.append(self.queues[cell].popleft())
                    self.counts[j] -= 1
                    ids.append(slot)
            out.append((self.output, items, ids))
        return out

    def pending(self) -> int:
        return sum(len(q) for q in self.queues.values())

    def fill(self) -> dict[str, BinFill]:
        return {
            self.output or "combination": BinFill(
                self.labels, self.counts.copy(), self.seen_bins.required(), 1, self.need.copy()
            )
        }


class MultiEngine(Engine):
    """Several independent cell engines fed the same items (v2: one per output)."""

    def __init__(self, engines: Sequence[CellEngine]) -> None:
        self.engines = list(engines)

    def add(self, item: Any, bins: tuple[int, ...]) -> list[RawSet]:
        out = []
        for e in self.engines:
            out += e.add(item, bins)
        self.dropped = sum(e.dropped for e in self.engines)
        return out

    def pending(self) -> int:
        return sum(e.pending() for e in self.engines)

    def observe(self, bins: tuple[int, ...]) -> None:
        for e in self.engines:
            e.observe(bins)

    def fill(self) -> dict[str, BinFill]:
        out: dict[str, BinFill] = {}
        for e in self.engines:
            out.update(e.fill())
        return out


class _Side:
    """One output's queues in a :class:`PerOutputEngine` (ids of the items it holds)."""

    def __init__(
        self, name: str, bins: Bins, n_other: int, n_sub: int, per_bin: int, rules: QueueRules
    ) -> None:
        self.name = name
        self.labels = bins.labels
        self.seen = _Seen(len(bins), rules)
        self.count = np.zeros(len(bins), np.int64)  # items per bin
        self.sub = np.zeros((len(bins), n_sub), np.int64)  # items per (bin, sub-bin)
        self.pools: list[list[deque[int]]] = [
            [deque() for _ in range(n_sub)] for _ in range(len(bins))
        ]  # ids per (bin, sub-bin), oldest first; may hold ids used up through the other side
        self.arrived = np.zeros((len(bins), n_sub), np.int64)  # items ever queued per sub-bin
        self.cross = np.zeros((len(bins), n_other), np.int64)  # items per (bin, other's bin)
        self.by_other: list[list[deque[int]]] = [
            [deque() for _ in range(n_other)] for _ in range(len(bins))
        ]  # ids per (bin, bin in the other output), oldest first; may hold used-up ids


class PerOutputEngine(Engine):
    """Two outputs, items used once over all sets (v3, v4); see :class:`OutputPair`.

    Args:
        pair: The outputs and how a set picks within a bin.
        rules: How items are queued.
        rng: Breaks ties between equally good sub-bins.
        patience: Stream mode: a bin missing some sub-bins is ready once it holds this many
            items; None: as soon as it holds ``per_bin``.
    """

    def __init__(
        self,
        *,
        pair: OutputPair,
        rules: QueueRules,
        rng: np.random.Generator,
        patience: int | None = None,
    ) -> None:
        n_sub = len(pair.sub_bins)
        self.sides = tuple(
            _Side(pair.names[o], pair.bins[o], len(pair.bins[1 - o]), n_sub, pair.per_bin, rules)
            for o in (0, 1)
        )
        self.mode = rules.mode
        self.warmup = rules.warmup
        self.max_per_bin = rules.max_per_bin
        self.seen = 0
        self.patience = patience
        self.per_bin = pair.per_bin
        self.waterfill = pair.waterfill
        self.rng = rng
        self.alive: dict[int, tuple[Any, tuple[int, ...]]] = {}
        self.next_id = 0
        self.turn = 0

    def pending(self) -> int:
        return len(self.alive)

    def _kill(self, uid: int) -> Any:
        item, b = self.alive.pop(uid)
        for o, side in enumerate(self.sides):
            side.count[b[o]] -= 1
            side.sub[b[o], b[2 + o]] -= 1
            side.cross[b[o], b[1 - o]] -= 1
        return item

    def observe(self, bins: tuple[int, ...]) -> None:
        for o, side in enumerate(self.sides):
            side.seen.add(bins[o])

    def fill(self) -> dict[str, BinFill]:
        return {
            side.name: BinFill(side.labels, side.count.copy(), side.seen.required(), self.per_bin)
            for side in self.sides
        }

    def queue(self, item: Any, bins: tuple[int, ...]) -> None:
        """Queue an item without emitting sets (dataset mode queues everything first)."""
        self.seen += 1
        if self.mode == "seen":
            self.observe(bins)
        uid = self.next_id
        self.next_id += 1
        self.alive[uid] = (item, bins)
        for o, side in enumerate(self.sides):
            b, s, other = bins[o], bins[2 + o], bins[1 - o]
            side.count[b] += 1
            side.sub[b, s] += 1
            side.arrived[b, s] += 1
            side.cross[b, other] += 1
            for ids, alive in (
                (side.pools[b][s], side.sub[b, s]),
                (side.by_other[b][other], side.cross[b, other]),
            ):
                ids.append(uid)
                if len(ids) > 2 * alive + 64:
                    self._compact(ids)  # drop ids used up through the other output
        if self.max_per_bin is not None:
            for o, side in enumerate(self.sides):
                if side.count[bins[o]] > self.max_per_bin:
                    self._evict(o, bins[o])
                    self.dropped += 1

    def _evict(self, o: int, b: int) -> None:
        """Drop one item of the overfull bin ``b`` of output ``o``, sparing rare ones.

        Every item of the bin is as common as any other *in this output*, but not in the other
        one: the item dropped is the oldest of those whose bin in the other output holds the
        most items, so a crowded bin (straight ahead) never throws away the rare samples it
        also holds for the other output's sets (hard braking).
        """
        side, other = self.sides[o], self.sides[1 - o]
        avail = np.flatnonzero(side.cross[b] > 0)
        ob = int(avail[np.argmax(other.count[avail])])
        ids = side.by_other[b][ob]
        while ids[0] not in self.alive:
            ids.popleft()
        self._kill(ids.popleft())

    def _compact(self, ids: deque[int]) -> None:
        alive = [uid for uid in ids if uid in self.alive]
        ids.clear()
        ids.extend(alive)

    def add(self, item: Any, bins: tuple[int, ...]) -> list[RawSet]:
        self.queue(item, bins)
        return self.drain()

    def complete(self, o: int) -> bool:
        """Whether output ``o`` can emit a set now."""
        side = self.sides[o]
        req = side.seen.required()
        if self.seen < self.warmup or not req.any():
            return False
        count = side.count[req]
        enough = count >= self.per_bin
        if self.patience is None or not enough.all():
            return bool(enough.all())
        # Wait only for the sub-bins common in this bin (at least 1 / (2 per_bin) of what it
        # received; until it received ``patience`` items, of what every bin received): the
        # others may take thousands of samples to come, or never come.
        arrived = side.arrived[req]
        local = arrived.sum(axis=1, keepdims=True)
        overall = side.arrived.sum(axis=0)
        expected = np.where(
            local >= self.patience,
            arrived * (2 * self.per_bin) >= local,
            overall * (2 * self.per_bin) >= overall.sum(),
        )
        varied = np.all((side.sub[req] > 0) | ~expected, axis=1)
        return bool(np.all(varied | (count >= self.patience)))

    def drain(self) -> list[RawSet]:
        """Emit every set that can be completed, alternating between the outputs."""
        out: list[RawSet] = []
        while True:
            ready = [o for o in (self.turn, 1 - self.turn) if self.complete(o)]
            if not ready:
                return out
            o = ready[0]
            out.append(self.emit(o))
            self.turn = 1 - o

    def _pick_sub(self, o: int, b: int, taken: np.ndarray) -> int:
        side = self.sides[o]
        avail = np.flatnonzero(side.sub[b] > 0)
        if self.waterfill:
            # Fewest taken so far in this bin, then the most plentiful sub-bin.
            score = -taken[avail] * (1 << 40) + side.sub[b][avail]
        else:
            # Spare rare samples: the sub-bin (= bin of the other output) with most samples left.
            score = self.sides[1 - o].count[avail]
        best = avail[score == score.max()]
        return int(best[0] if len(best) == 1 else self.rng.choice(best))

    def emit(self, o: int) -> RawSet:
        """One set for output ``o`` (which must be :meth:`complete`)."""
        side = self.sides[o]
        items: list[Any] = []
        bins: list[int] = []
        for b in np.flatnonzero(side.seen.required()).tolist():
            taken = np.zeros(side.sub.shape[1], np.int64)
            for _ in range(self.per_bin):
                s = self._pick_sub(o, b, taken)
                pool = side.pools[b][s]
                while pool[0] not in self.alive:
                    pool.popleft()
                items.append(self._kill(pool.popleft()))
                bins.append(b)
                taken[s] += 1
        return (side.name, items, bins)
