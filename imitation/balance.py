"""Balancing regression demonstrations: schemes v1, v2, v3 (the original's) and v4 (new).

Driving data is dominated by "straight on, steady throttle". A balancer turns a skewed stream or
dataset into *balanced sets*: groups of samples in which each bin of an output (or each
combination of bins) appears exactly once, or ``per_bin`` times. Every scheme works in two modes
behind one interface, :class:`Balancer`:

- **stream** (collector side): :meth:`Balancer.add` takes samples one at a time, keeps them in
  per-bin queues (bounded by ``max_per_bin``; the oldest sample of an overfull bin is dropped) and
  returns the balanced sets completed by that sample;
- **dataset**: :meth:`Balancer.balance` takes all actions of a dataset (e.g.
  ``SampleStore.column("action")``) and returns every balanced set it can build, as indices;
  :func:`balance_store` also copies them into a new store and draws the histograms.

Outputs
-------
Actions are ``[throttle_brake, steering]`` (N, 2) as recorded, or ``[throttle, brake,
steering]`` (N, 3) from the environment's 3-output mode. Schemes v1 and v2 bin accelerate and
brake as separate outputs: from 2-column actions ``accel = max(a, 0)`` and ``brake = max(-a, 0)``.
Schemes v3 and v4 merge them into one output ``throttle_brake`` (``throttle - brake`` for 3-column
actions).

Bins
----
All comparisons are made in float32 against float32 edges (so the float32 value 0.2 lies in
``[0.2, 0.8)``). Signed outputs are binned by magnitude and mirrored, so closedness is symmetric
about zero.

- ``PEDAL_V1`` (5 bins, SEED.md): ``[0]``, ``(0, .2)``, ``[.2, .8)``, ``[.8, 1)``, ``[1]``.
- ``SIGNED_V1`` (9 bins, v1 steering; v4's sub-bins): ``[-1]``, ``(-1, -.8]``, ``(-.8, -.2]``,
  ``(-.2, 0)``, ``[0]``, ``(0, .2)``, ``[.2, .8)``, ``[.8, 1)``, ``[1]``.
- ``PEDAL_V2`` (12 bins): ``[0]``, ``(0, .1)``, ``[.1, .2)``, ..., ``[.9, 1)``, ``[1]`` -- ten
  0.1-wide bins plus the exact values "released" and "floored".
- ``SIGNED_V2`` (21 bins): ``[-1, -.9]``, ``(-.9, -.8]``, ..., ``(-.1, 0)``, ``[0]``, ``(0, .1)``,
  ``[.1, .2)``, ..., ``[.9, 1]`` -- twenty 0.1-wide bins plus exact zero.

SEED.md gives v2 only as "0.1-wide bins, 12 + 21 bins"; the edges above are our reading that
yields exactly those counts.

Schemes
-------
- **v1** (:class:`BalancerV1`): bins every combination of (accel ``PEDAL_V1``, brake ``PEDAL_V1``,
  steering ``SIGNED_V1``): 5 x 5 x 9 = 225 combinations; a balanced set holds one sample of every
  combination -> 225-sample sets for 3-column actions. With 2-column actions accel and brake are
  never both non-zero, so only the 9 x 9 = 81 reachable combinations (accel bin ``[0]`` or brake
  bin ``[0]``) are required -> 81-sample sets.
- **v2** (:class:`BalancerV2`): each output balanced on its own: accel and brake ``PEDAL_V2`` (12
  bins), steering ``SIGNED_V2`` (21 bins). Sets are separate per output (the original kept one
  buffer per output): a set for ``steering`` has one sample per steering bin and is meant to
  train the steering output only. A sample may appear in one set of each output.
- **v3** (:class:`BalancerV3`): outputs ``throttle_brake`` and ``steering``, both ``SIGNED_V2``.
  A set for output *o* has one sample per bin of *o*, and its samples keep all outputs (one
  buffer trains every head), so a sample is used at most once over all sets. When picking from a
  bin, v3 takes a sample whose bin in the *other* output is the most plentiful, to spare rare
  samples for the other output's sets.
- **v4** (:class:`BalancerV4`, new): like v3, but a set holds ``per_bin`` (default 9) samples of
  every bin of the balanced output, chosen to sub-balance the other output over its 9
  ``SIGNED_V1`` bins: each pick goes to the sub-bin picked least so far in that bin (ties: the
  most plentiful sub-bin), i.e. one of each available sub-bin before any repeats. When the data
  lacks some sub-bins, the rest fill the set, so sets are as flat as the data allows.

In dataset mode v1 and v2 give exactly ``min(count)`` sets (per output for v2); v3 and v4 first
queue everything, then build sets alternating between the outputs until no output can complete
one.

Required bins (continuous experts)
----------------------------------
By default (``require="all"``) a set needs every bin (or v1 combination) the scheme defines. A
continuous controller such as the embedded world's autopilot rarely or never produces some of
them: measured over 4,500 expert samples with traffic, steering was never exactly 0 and never
beyond -0.7, and throttle_brake was exactly 0 in 5.6 % of samples. Under ``"all"`` such data
yields no set at all. ``require="seen"`` keeps the bins as defined but requires only those the
data has shown:

- **dataset mode**: a bin (v1: a combination) that is empty in the dataset is not required;
  every non-empty one is. With every bin present this is exactly ``"all"``.
- **stream mode**: a bin becomes required the first time a sample falls in it and stays
  required from then on (a rare bin, once seen, slows the sets down to its rate, as balancing
  should). No set is emitted before ``warmup`` samples were added, so that the first sets are
  not built from the handful of bins seen in the first seconds.

:meth:`Balancer.fill` reports the queued samples per bin and which bins are required (the
collector's progress bar shows it).
"""

from __future__ import annotations

import bisect
import operator
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import EllipsisType
from typing import Any, ClassVar, Generic, TypeVar

import numpy as np

from imitation.plots import save_histograms
from imitation.sample import Sample

__all__ = [
    "PEDAL_V1",
    "PEDAL_V2",
    "SCHEMES",
    "SIGNED_V1",
    "SIGNED_V2",
    "BalanceResult",
    "BalancedSet",
    "Balancer",
    "BinFill",
    "BalancerV1",
    "BalancerV2",
    "BalancerV3",
    "BalancerV4",
    "Bins",
    "balance_store",
    "make_balancer",
]

T = TypeVar("T")


# ------------------------------------------------------------------------------------- bins


@dataclass(frozen=True)
class _Interval:
    lo: float
    hi: float
    lo_closed: bool
    hi_closed: bool

    def label(self) -> str:
        if self.lo == self.hi:
            return f"[{self.lo:g}]"
        return f"{'[' if self.lo_closed else '('}{self.lo:g},{self.hi:g}{']' if self.hi_closed else ')'}"


@dataclass(frozen=True)
class Bins:
    """A partition of an output's range into intervals (see the module docstring).

    Attributes:
        name: What the bins are called (e.g. ``"PEDAL_V1"``).
        intervals: The intervals, in increasing order.
    """

    name: str
    intervals: tuple[_Interval, ...]

    def __len__(self) -> int:
        return len(self.intervals)

    @property
    def labels(self) -> tuple[str, ...]:
        """Interval notation of each bin, e.g. ``"[0.2,0.8)"``."""
        return tuple(iv.label() for iv in self.intervals)

    def index(self, values: np.ndarray | Sequence[float] | float) -> np.ndarray:
        """The bin of each value (int64), comparing in float32.

        Raises:
            ValueError: If a value is NaN or outside every bin.
        """
        x = np.asarray(values, dtype=np.float32)
        out = np.full(x.shape, -1, dtype=np.int64)
        for i, iv in enumerate(self.intervals):
            lo, hi = np.float32(iv.lo), np.float32(iv.hi)
            above = (x >= lo) if iv.lo_closed else (x > lo)
            below = (x <= hi) if iv.hi_closed else (x < hi)
            out[above & below] = i
        if np.any(out < 0):
            bad = x[out < 0].ravel()[:5].tolist()
            first, last = self.intervals[0], self.intervals[-1]
            raise ValueError(
                f"values {bad} fall outside the {self.name} bins "
                f"[{first.lo:g}, {last.hi:g}]; clip actions to their range before balancing"
            )
        return out

    def counts(self, values: np.ndarray) -> np.ndarray:
        """How many values fall in each bin."""
        return np.bincount(self.index(values).ravel(), minlength=len(self))


def _pedal_bins(name: str, edges: Sequence[float]) -> Bins:
    """[0], (0, e1), [e1, e2), ..., [ek, 1), [1]."""
    ivs = [_Interval(0.0, 0.0, True, True)]
    bounds = [0.0, *edges, 1.0]
    for i, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
        ivs.append(_Interval(lo, hi, i > 0, False))
    ivs.append(_Interval(1.0, 1.0, True, True))
    return Bins(name, tuple(ivs))


def _mirror(name: str, positive: Bins) -> Bins:
    """Mirror positive-side bins (the first one being exact [0]) onto the negative side."""
    neg = [
        _Interval(
            0.0 - iv.hi,
            0.0 - iv.lo,  # 0.0 - x: no "-0" labels
            iv.hi_closed,
            iv.lo_closed,
        )
        for iv in reversed(positive.intervals[1:])
    ]
    return Bins(name, (*neg, *positive.intervals))


PEDAL_V1 = _pedal_bins("PEDAL_V1", [0.2, 0.8])
SIGNED_V1 = _mirror("SIGNED_V1", PEDAL_V1)
PEDAL_V2 = _pedal_bins("PEDAL_V2", [round(0.1 * k, 1) for k in range(1, 10)])
_SIGNED_V2_POS = Bins(
    "positive",
    (
        _Interval(0.0, 0.0, True, True),
        _Interval(0.0, 0.1, False, False),
        *(_Interval(round(0.1 * k, 1), round(0.1 * (k + 1), 1), True, False) for k in range(1, 9)),
        _Interval(0.9, 1.0, True, True),
    ),
)
SIGNED_V2 = _mirror("SIGNED_V2", _SIGNED_V2_POS)


def _split_pedals(actions: np.ndarray) -> dict[str, np.ndarray]:
    """accel, brake, steering from (N, 2) or (N, 3) actions."""
    a = _check_actions(actions)
    if a.shape[1] == 2:
        return {
            "accel": np.maximum(a[:, 0], 0),
            "brake": np.maximum(-a[:, 0], 0),
            "steering": a[:, 1],
        }
    return {"accel": a[:, 0], "brake": a[:, 1], "steering": a[:, 2]}


def _merge_pedals(actions: np.ndarray) -> dict[str, np.ndarray]:
    """throttle_brake, steering from (N, 2) or (N, 3) actions."""
    a = _check_actions(actions)
    if a.shape[1] == 2:
        return {"throttle_brake": a[:, 0], "steering": a[:, 1]}
    return {"throttle_brake": np.clip(a[:, 0] - a[:, 1], -1, 1), "steering": a[:, 2]}


def _check_actions(actions: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
    a = np.asarray(actions, dtype=np.float32)
    if a.ndim != 2 or a.shape[1] not in (2, 3):
        raise ValueError(
            "actions must have shape (N, 2) [throttle_brake, steering] or (N, 3) "
            f"[throttle, brake, steering], got {a.shape}"
        )
    if a.shape[1] == 3 and (np.any(a[:, :2] < 0) or np.any(a[:, :2] > 1)):
        raise ValueError("3-column actions need throttle and brake in [0, 1]")
    return a


# ------------------------------------------------------------------------------ results


@dataclass(frozen=True)
class BalancedSet(Generic[T]):
    """One balanced set.

    Attributes:
        scheme: ``"v1"`` ... ``"v4"``.
        output: The output this set balances (None for v1, which balances combinations).
        items: The samples (stream mode) or dataset indices (dataset mode).
        bins: For each item, its bin in ``output`` (v1: its combination index).
    """

    scheme: str
    output: str | None
    items: tuple[T, ...]
    bins: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.items)


@dataclass(frozen=True)
class BalanceResult:
    """Balanced sets built from a dataset (items are indices into the actions given).

    Attributes:
        scheme: The scheme used.
        sets: Every set, in the order built.
        n_input: How many samples were balanced.
    """

    scheme: str
    sets: tuple[BalancedSet[int], ...]
    n_input: int

    def indices(self, output: str | None | EllipsisType = ...) -> np.ndarray:
        """Dataset indices of all sets (``...``) or of the sets of one output, in set order."""
        chosen = [s for s in self.sets if output is ... or s.output == output]
        if not chosen:
            return np.empty(0, dtype=np.int64)
        return np.concatenate([np.asarray(s.items, dtype=np.int64) for s in chosen])

    def sets_per_output(self) -> dict[str | None, int]:
        """Number of sets per balanced output."""
        out: dict[str | None, int] = {}
        for s in self.sets:
            out[s.output] = out.get(s.output, 0) + 1
        return out

    @property
    def outputs(self) -> tuple[str | None, ...]:
        """The outputs sets were built for, in first-seen order."""
        return tuple(dict.fromkeys(s.output for s in self.sets))


@dataclass(frozen=True)
class BinFill:
    """Queued samples per bin of one balanced output (stream mode), for progress displays.

    Attributes:
        labels: Bin labels (v1: ``"accel|brake|steering"`` combinations).
        counts: Samples queued per bin.
        required: Whether each bin is required for a set (see "Required bins").
        per_bin: Samples a required bin must hold for a set.
    """

    labels: tuple[str, ...]
    counts: np.ndarray
    required: np.ndarray
    per_bin: int = 1

    @property
    def ready(self) -> int:
        """Required bins holding enough samples for a set."""
        return int(np.sum(self.required & (self.counts >= self.per_bin)))


REQUIRE_MODES = ("all", "seen")
"""Values of ``Balancer(require=...)``."""


# ---------------------------------------------------------------------------- interface


class Balancer(ABC):
    """Common interface of the balancing schemes (see the module docstring).

    Args:
        rng: Draws the order in which dataset samples are queued (which samples of a plentiful
            bin are kept) and breaks ties.
        max_per_bin: Stream mode: the most samples queued per bin (or combination); the oldest is
            dropped when a bin overflows. None for no bound.
        require: ``"all"``: a set needs every defined bin; ``"seen"``: only bins the data has
            shown (see "Required bins" in the module docstring).
        warmup: Stream mode with ``require="seen"``: samples to add before the first set.
    """

    scheme: ClassVar[str]

    def __init__(
        self,
        *,
        rng: np.random.Generator,
        max_per_bin: int | None = 1000,
        require: str = "all",
        warmup: int = 0,
    ) -> None:
        if not isinstance(rng, np.random.Generator):
            raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
        if max_per_bin is not None and max_per_bin < 1:
            raise ValueError(f"max_per_bin must be None or >= 1, got {max_per_bin}")
        if require not in REQUIRE_MODES:
            raise ValueError(
                f"require must be one of {REQUIRE_MODES}, got {require!r} ('seen' suits "
                "continuous experts whose actions never hit some bins)"
            )
        if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
            raise ValueError(f"warmup must be an int >= 0, got {warmup!r}")
        if warmup and require == "all":
            raise ValueError("warmup only applies with require='seen'")
        self.rng = rng
        self.max_per_bin = max_per_bin
        self.require = require
        self.warmup = warmup
        self._n_columns: int | None = None
        self._engine: _Engine | None = None
        self.dropped = 0

    # -- what subclasses define ----------------------------------------------------------

    @abstractmethod
    def outputs(self, actions: np.ndarray) -> dict[str, np.ndarray]:
        """The outputs this scheme balances, computed from actions."""

    @abstractmethod
    def output_bins(self) -> dict[str, Bins]:
        """The bins of each output."""

    @abstractmethod
    def _new_engine(
        self, n_columns: int, max_per_bin: int | None, mode: str = "all", warmup: int = 0
    ) -> _Engine:
        """A fresh queueing engine; ``mode`` is one of ``_Engine.MODES``."""

    # -- stream mode -----------------------------------------------------------------------

    def add(self, sample: Sample) -> list[BalancedSet[Sample]]:
        """Queue one sample; returns the balanced sets it completed (usually none)."""
        return self.add_item(sample, sample.action)

    def add_item(self, item: Any, action: np.ndarray | Sequence[float]) -> list[BalancedSet[Any]]:
        """Queue any item under the given action; returns the balanced sets completed."""
        a = _check_actions(np.asarray(action, dtype=np.float32).reshape(1, -1))
        if self._engine is None:
            self._n_columns = a.shape[1]
            mode = "seen" if self.require == "seen" else "all"
            self._engine = self._new_engine(a.shape[1], self.max_per_bin, mode, self.warmup)
        elif a.shape[1] != self._n_columns:
            raise ValueError(
                f"action has {a.shape[1]} columns but this balancer was fed {self._n_columns}; "
                "use one balancer per action layout"
            )
        bins = self._bin_rows(a)[0]
        sets = self._engine.add(item, bins)
        self.dropped = self._engine.dropped
        return [BalancedSet(self.scheme, o, tuple(items), tuple(b)) for o, items, b in sets]

    @property
    def pending(self) -> int:
        """Samples queued in stream mode and not yet emitted."""
        return 0 if self._engine is None else self._engine.pending()

    def fill(self) -> dict[str, BinFill]:
        """Stream mode: queued samples per bin of each balanced output (v1: per combination).

        Empty (all-zero counts) before the first sample was added.
        """
        if self._engine is None:
            mode = "seen" if self.require == "seen" else "all"
            return self._new_engine(2, self.max_per_bin, mode, self.warmup).fill()
        return self._engine.fill()

    def _observed_engine(self, bins: list[tuple[int, ...]], n_columns: int) -> _Engine:
        """A dataset-mode engine; with ``require="seen"`` only the bins present are required."""
        if self.require == "all":
            return self._new_engine(n_columns, None)
        engine = self._new_engine(n_columns, None, "observed")
        for row in bins:
            engine.observe(row)
        return engine

    # -- dataset mode ----------------------------------------------------------------------

    def balance(self, actions: np.ndarray) -> BalanceResult:
        """Build every balanced set a dataset allows (stream state is not touched).

        Args:
            actions: (N, 2) or (N, 3) actions, e.g. ``store.column("action")``.

        Returns:
            The sets, whose items are indices into ``actions``.
        """
        a = _check_actions(actions)
        bins = self._bin_rows(a)
        engine = self._observed_engine(bins, a.shape[1])
        raw: list[tuple[str | None, list[Any], list[int]]] = []
        for i in self.rng.permutation(len(a)).tolist():
            raw += engine.add(i, bins[i])
        sets = tuple(BalancedSet(self.scheme, o, tuple(items), tuple(b)) for o, items, b in raw)
        return BalanceResult(self.scheme, sets, len(a))

    def _bin_rows(self, actions: np.ndarray) -> list[tuple[int, ...]]:
        outs = self.outputs(actions)
        cols = [bins.index(outs[name]) for name, bins in self.output_bins().items()]
        cols += self._extra_bin_columns(outs)
        return list(map(tuple, np.stack(cols, axis=1).tolist()))

    def _extra_bin_columns(self, outs: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        return []

    # -- histograms --------------------------------------------------------------------------

    def histograms(
        self, actions: np.ndarray, result: BalanceResult | None = None
    ) -> dict[str, tuple[tuple[str, ...], np.ndarray]]:
        """Counts per bin of every output, before balancing or (with ``result``) after.

        After v2, each output is counted over its own sets only (they train only that output);
        after v1, v3 and v4, over all selected samples.
        """
        outs = self.outputs(actions)
        hist = {}
        for name, bins in self.output_bins().items():
            if result is None:
                values = outs[name]
            else:
                own = self.scheme == "v2"
                values = outs[name][result.indices(name if own else ...)]
            hist[name] = (bins.labels, bins.counts(values))
        return hist

    def plot(
        self, actions: np.ndarray, result: BalanceResult, out_dir: str | Path
    ) -> tuple[Path, Path]:
        """Write ``<scheme>_before.png`` and ``<scheme>_after.png`` histograms into ``out_dir``."""
        out_dir = Path(out_dir)
        before = save_histograms(
            out_dir / f"{self.scheme}_before.png",
            self.histograms(actions),
            title=f"balancing {self.scheme}: before ({len(actions)} samples)",
            color="tab:gray",
        )
        after = save_histograms(
            out_dir / f"{self.scheme}_after.png",
            self.histograms(actions, result),
            title=f"balancing {self.scheme}: after ({len(result.sets)} sets)",
            color="tab:green",
        )
        return before, after


# ------------------------------------------------------------------------------ engines


class _Engine(ABC):
    """Queues items per bin and emits balanced sets.

    ``mode``: ``"all"`` (every defined bin required), ``"seen"`` (a bin becomes required when an
    item falls in it), ``"observed"`` (only bins passed to :meth:`observe` are required).
    """

    MODES = ("all", "seen", "observed")
    dropped: int = 0

    @abstractmethod
    def add(
        self, item: Any, bins: tuple[int, ...]
    ) -> list[tuple[str | None, list[Any], list[int]]]:
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


class _CellEngine(_Engine):
    """Queues per cell; a set is one item from every required cell (v1, and each v2 output)."""

    def __init__(
        self,
        *,
        output: str | None,
        required: Sequence[int],
        key: Callable[[tuple[int, ...]], int],
        max_per_bin: int | None,
        labels: Sequence[str],
        mode: str = "all",
        warmup: int = 0,
    ) -> None:
        self.output = output
        self.possible = list(required)
        self.labels = tuple(labels)
        self.key = key
        self.mode = mode
        self.required = list(self.possible) if mode == "all" else []
        self._required = set(self.required)
        self.queues: dict[int, deque[Any]] = {c: deque() for c in self.possible}
        self.filled = 0  # required cells with a queued item (only required cells hold items)
        self.max_per_bin = max_per_bin
        self.warmup = warmup
        self.seen = 0

    def observe(self, bins: tuple[int, ...]) -> None:
        c = self.key(bins)
        if c in self.queues and c not in self._required:
            self._required.add(c)
            bisect.insort(self.required, c)

    def add(
        self, item: Any, bins: tuple[int, ...]
    ) -> list[tuple[str | None, list[Any], list[int]]]:
        c = self.key(bins)
        q = self.queues.get(c)
        if q is None:  # unreachable cell: cannot happen for valid actions
            return []
        self.seen += 1
        if self.mode == "seen":
            self.observe(bins)
        if c not in self._required:  # "observed" mode, cell not observed: nothing to balance
            return []
        if not q:
            self.filled += 1
        q.append(item)
        if self.max_per_bin is not None and len(q) > self.max_per_bin:
            q.popleft()
            self.dropped += 1
        out: list[tuple[str | None, list[Any], list[int]]] = []
        while self.seen >= self.warmup and self.required and self.filled == len(self.required):
            items = []
            for cell in self.required:
                queue = self.queues[cell]
                items.append(queue.popleft())
                if not queue:
                    self.filled -= 1
            out.append((self.output, items, list(self.required)))
        return out

    def pending(self) -> int:
        return sum(len(q) for q in self.queues.values())

    def fill(self) -> dict[str, BinFill]:
        counts = np.array([len(self.queues[c]) for c in self.possible], np.int64)
        required = np.array([c in self._required for c in self.possible], bool)
        return {self.output or "combination": BinFill(self.labels, counts, required, 1)}


class _MultiEngine(_Engine):
    """Several independent cell engines fed the same items (v2: one per output)."""

    def __init__(self, engines: Sequence[_CellEngine]) -> None:
        self.engines = list(engines)

    def add(
        self, item: Any, bins: tuple[int, ...]
    ) -> list[tuple[str | None, list[Any], list[int]]]:
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


class _PerOutputEngine(_Engine):
    """Two outputs, items used once over all sets (v3, v4).

    ``bins`` of an item are (primary bin of output 0, primary bin of output 1, sub-bin used when
    output 0 is balanced, sub-bin used when output 1 is balanced).
    """

    def __init__(
        self,
        *,
        names: tuple[str, str],
        n_bins: tuple[int, int],
        n_sub: tuple[int, int],
        per_bin: int,
        waterfill: bool,
        max_per_bin: int | None,
        rng: np.random.Generator,
        patience: int | None = None,
        labels: tuple[Sequence[str], Sequence[str]] = ((), ()),
        mode: str = "all",
        warmup: int = 0,
    ) -> None:
        self.names = names
        self.labels = (tuple(labels[0]), tuple(labels[1]))
        self.mode = mode
        self.warmup = warmup
        self.seen = 0
        self.req = [np.full(n_bins[o], mode == "all", bool) for o in (0, 1)]
        # A bin is ready when it can give per_bin picks from distinct sub-bins, or (sub-bins
        # missing) once it holds `patience` samples; None: as soon as it holds per_bin.
        self.patience = patience
        self.distinct = min(per_bin, n_sub[0]), min(per_bin, n_sub[1])
        self.n_bins = n_bins
        self.per_bin = per_bin
        self.waterfill = waterfill
        self.max_per_bin = max_per_bin
        self.rng = rng
        self.alive: dict[int, tuple[Any, tuple[int, ...]]] = {}
        self.next_id = 0
        self.count = [np.zeros(n_bins[o], np.int64) for o in (0, 1)]
        self.sub = [np.zeros((n_bins[o], n_sub[o]), np.int64) for o in (0, 1)]
        self.pools: list[list[list[deque[int]]]] = [
            [[deque() for _ in range(n_sub[o])] for _ in range(n_bins[o])] for o in (0, 1)
        ]
        self.arrival: list[list[deque[int]]] = [[deque() for _ in range(n_bins[o])] for o in (0, 1)]
        self.turn = 0

    def pending(self) -> int:
        return len(self.alive)

    def _kill(self, uid: int) -> Any:
        item, b = self.alive.pop(uid)
        for o in (0, 1):
            self.count[o][b[o]] -= 1
            self.sub[o][b[o], b[2 + o]] -= 1
        return item

    def observe(self, bins: tuple[int, ...]) -> None:
        for o in (0, 1):
            self.req[o][bins[o]] = True

    def fill(self) -> dict[str, BinFill]:
        return {
            self.names[o]: BinFill(
                self.labels[o], self.count[o].copy(), self.req[o].copy(), self.per_bin
            )
            for o in (0, 1)
        }

    def queue(self, item: Any, bins: tuple[int, ...]) -> None:
        self.seen += 1
        if self.mode == "seen":
            self.observe(bins)
        uid = self.next_id
        self.next_id += 1
        self.alive[uid] = (item, bins)
        for o in (0, 1):
            self.count[o][bins[o]] += 1
            self.sub[o][bins[o], bins[2 + o]] += 1
            pool = self.pools[o][bins[o]][bins[2 + o]]
            pool.append(uid)
            if len(pool) > 2 * self.sub[o][bins[o], bins[2 + o]] + 64:
                self._compact(pool)  # drop ids used up through the other output
            arrivals = self.arrival[o][bins[o]]
            arrivals.append(uid)
            if len(arrivals) > 2 * self.count[o][bins[o]] + 64:
                self._compact(arrivals)
        if self.max_per_bin is not None:
            for o in (0, 1):
                if self.count[o][bins[o]] > self.max_per_bin:
                    arrivals = self.arrival[o][bins[o]]
                    while arrivals[0] not in self.alive:
                        arrivals.popleft()
                    self._kill(arrivals.popleft())
                    self.dropped += 1

    def _compact(self, ids: deque[int]) -> None:
        alive = [uid for uid in ids if uid in self.alive]
        ids.clear()
        ids.extend(alive)

    def add(
        self, item: Any, bins: tuple[int, ...]
    ) -> list[tuple[str | None, list[Any], list[int]]]:
        self.queue(item, bins)
        return self.drain()

    def complete(self, o: int) -> bool:
        req = self.req[o]
        if self.seen < self.warmup or not req.any():
            return False
        count = self.count[o][req]
        enough = count >= self.per_bin
        if self.patience is None or not enough.all():
            return bool(enough.all())
        varied = (self.sub[o][req] > 0).sum(axis=1) >= self.distinct[o]
        return bool(np.all(varied | (count >= self.patience)))

    def drain(self) -> list[tuple[str | None, list[Any], list[int]]]:
        out: list[tuple[str | None, list[Any], list[int]]] = []
        while True:
            ready = [o for o in (self.turn, 1 - self.turn) if self.complete(o)]
            if not ready:
                return out
            o = ready[0]
            out.append(self.emit(o))
            self.turn = 1 - o

    def _pick_sub(self, o: int, b: int, taken: np.ndarray) -> int:
        avail = np.flatnonzero(self.sub[o][b] > 0)
        if self.waterfill:
            # Fewest taken so far in this bin, then the most plentiful sub-bin.
            score = -taken[avail] * (1 << 40) + self.sub[o][b][avail]
        else:
            # Spare rare samples: the sub-bin (= bin of the other output) with most samples left.
            score = self.count[1 - o][avail]
        best = avail[score == score.max()]
        return int(best[0] if len(best) == 1 else self.rng.choice(best))

    def emit(self, o: int) -> tuple[str | None, list[Any], list[int]]:
        items: list[Any] = []
        bins: list[int] = []
        for b in np.flatnonzero(self.req[o]).tolist():
            taken = np.zeros(self.sub[o].shape[1], np.int64)
            for _ in range(self.per_bin):
                s = self._pick_sub(o, b, taken)
                pool = self.pools[o][b][s]
                while pool[0] not in self.alive:
                    pool.popleft()
                items.append(self._kill(pool.popleft()))
                bins.append(b)
                taken[s] += 1
        return (self.names[o], items, bins)


# ------------------------------------------------------------------------------ schemes


class BalancerV1(Balancer):
    """v1: one sample of every (accel, brake, steering) bin combination per set (see module)."""

    scheme = "v1"

    def outputs(self, actions: np.ndarray) -> dict[str, np.ndarray]:
        return _split_pedals(actions)

    def output_bins(self) -> dict[str, Bins]:
        return {"accel": PEDAL_V1, "brake": PEDAL_V1, "steering": SIGNED_V1}

    @staticmethod
    def combination(bins: tuple[int, ...]) -> int:
        """Combination index of (accel bin, brake bin, steering bin): ``(a * 5 + b) * 9 + s``."""
        return (bins[0] * len(PEDAL_V1) + bins[1]) * len(SIGNED_V1) + bins[2]

    @staticmethod
    def required_combinations(n_columns: int) -> list[int]:
        """225 combinations for 3-column actions, the 81 reachable ones for 2-column actions."""
        return [
            BalancerV1.combination((a, b, s))
            for a in range(len(PEDAL_V1))
            for b in range(len(PEDAL_V1))
            for s in range(len(SIGNED_V1))
            if n_columns == 3 or a == 0 or b == 0
        ]

    def _new_engine(
        self, n_columns: int, max_per_bin: int | None, mode: str = "all", warmup: int = 0
    ) -> _Engine:
        required = self.required_combinations(n_columns)
        p, s = PEDAL_V1.labels, SIGNED_V1.labels
        labels = [f"{p[c // 45]}|{p[c // 9 % 5]}|{s[c % 9]}" for c in required]
        return _CellEngine(
            output=None,
            required=required,
            key=self.combination,
            max_per_bin=max_per_bin,
            labels=labels,
            mode=mode,
            warmup=warmup,
        )


class BalancerV2(Balancer):
    """v2: accel (12 bins), brake (12) and steering (21) balanced separately (see module)."""

    scheme = "v2"

    def outputs(self, actions: np.ndarray) -> dict[str, np.ndarray]:
        return _split_pedals(actions)

    def output_bins(self) -> dict[str, Bins]:
        return {"accel": PEDAL_V2, "brake": PEDAL_V2, "steering": SIGNED_V2}

    def _new_engine(
        self, n_columns: int, max_per_bin: int | None, mode: str = "all", warmup: int = 0
    ) -> _Engine:
        engines = []
        for col, (name, bins) in enumerate(self.output_bins().items()):
            engines.append(
                _CellEngine(
                    output=name,
                    required=range(len(bins)),
                    key=operator.itemgetter(col),
                    max_per_bin=max_per_bin,
                    labels=bins.labels,
                    mode=mode,
                    warmup=warmup,
                )
            )
        return _MultiEngine(engines)


class BalancerV3(Balancer):
    """v3: throttle_brake and steering (21 bins each), sets per output keep all outputs."""

    scheme = "v3"
    _per_bin = 1
    _waterfill = False
    _sub_bins = SIGNED_V2

    def outputs(self, actions: np.ndarray) -> dict[str, np.ndarray]:
        return _merge_pedals(actions)

    def output_bins(self) -> dict[str, Bins]:
        return {"throttle_brake": SIGNED_V2, "steering": SIGNED_V2}

    def _extra_bin_columns(self, outs: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        # Sub-bin when throttle_brake is balanced: steering's; and the other way round.
        return [
            self._sub_bins.index(outs["steering"]),
            self._sub_bins.index(outs["throttle_brake"]),
        ]

    def _new_engine(
        self, n_columns: int, max_per_bin: int | None, mode: str = "all", warmup: int = 0
    ) -> _Engine:
        return _PerOutputEngine(
            names=("throttle_brake", "steering"),
            labels=(SIGNED_V2.labels, SIGNED_V2.labels),
            mode=mode,
            warmup=warmup,
            n_bins=(len(SIGNED_V2), len(SIGNED_V2)),
            n_sub=(len(self._sub_bins), len(self._sub_bins)),
            per_bin=self._per_bin,
            waterfill=self._waterfill,
            max_per_bin=max_per_bin,
            rng=self.rng,
            patience=self._patience(max_per_bin),
        )

    def _patience(self, max_per_bin: int | None) -> int | None:
        return None

    def balance(self, actions: np.ndarray) -> BalanceResult:
        """Queue every sample first, then build sets alternating between the outputs."""
        a = _check_actions(actions)
        bins = self._bin_rows(a)
        engine = self._observed_engine(bins, a.shape[1])
        assert isinstance(engine, _PerOutputEngine)
        for i in self.rng.permutation(len(a)).tolist():
            engine.queue(i, bins[i])
        raw = engine.drain()
        sets = tuple(BalancedSet(self.scheme, o, tuple(items), tuple(b)) for o, items, b in raw)
        return BalanceResult(self.scheme, sets, len(a))


class BalancerV4(BalancerV3):
    """v4 (new): v3 with ``per_bin`` samples per bin that sub-balance the other output.

    In stream mode a bin is ready once it holds ``per_bin`` samples from distinct sub-bins, or,
    when some sub-bins have not shown up, once it holds ``patience`` samples; in dataset mode
    everything is queued first, so no waiting is needed.

    Args:
        rng: See :class:`Balancer`.
        max_per_bin: See :class:`Balancer`.
        require: See :class:`Balancer`.
        warmup: See :class:`Balancer`.
        per_bin: Samples per bin of the balanced output in each set (default: one per
            ``SIGNED_V1`` sub-bin of the other output, 9).
        patience: Stream mode: samples a bin may hold before it is used without every sub-bin
            (default ``4 * per_bin``, at most ``max_per_bin``).
    """

    scheme = "v4"
    _waterfill = True
    _sub_bins = SIGNED_V1

    def __init__(
        self,
        *,
        rng: np.random.Generator,
        max_per_bin: int | None = 1000,
        require: str = "all",
        warmup: int = 0,
        per_bin: int = len(SIGNED_V1),
        patience: int | None = None,
    ) -> None:
        super().__init__(rng=rng, max_per_bin=max_per_bin, require=require, warmup=warmup)
        if per_bin < 1:
            raise ValueError(f"per_bin must be >= 1, got {per_bin}")
        if max_per_bin is not None and max_per_bin < per_bin:
            raise ValueError(f"max_per_bin ({max_per_bin}) must be >= per_bin ({per_bin})")
        if patience is not None and patience < per_bin:
            raise ValueError(f"patience ({patience}) must be >= per_bin ({per_bin})")
        self._per_bin = per_bin
        self._patience_value = patience

    def _patience(self, max_per_bin: int | None) -> int | None:
        if max_per_bin is None:  # dataset mode: all samples are queued before sets are built
            return None
        if self._patience_value is not None:
            return min(self._patience_value, max_per_bin)
        return min(4 * self._per_bin, max_per_bin)


SCHEMES: dict[str, type[Balancer]] = {
    "v1": BalancerV1,
    "v2": BalancerV2,
    "v3": BalancerV3,
    "v4": BalancerV4,
}
"""Scheme name -> balancer class."""


def make_balancer(
    scheme: str, *, rng: np.random.Generator, max_per_bin: int | None = 1000, **kwargs: Any
) -> Balancer:
    """A balancer by scheme name (``"v1"`` ... ``"v4"``).

    Raises:
        ValueError: For an unknown scheme.
    """
    cls = SCHEMES.get(scheme)
    if cls is None:
        raise ValueError(f"unknown balancing scheme {scheme!r}; choose one of {sorted(SCHEMES)}")
    return cls(rng=rng, max_per_bin=max_per_bin, **kwargs)


# ------------------------------------------------------------------------ stored datasets


@dataclass(frozen=True)
class StoreBalanceReport:
    """What :func:`balance_store` did.

    Attributes:
        result: The balanced sets (indices into the source store).
        outputs: Where samples were written: output name (None for one store) -> directory.
        plots: The histogram PNGs written.
    """

    result: BalanceResult
    outputs: dict[str | None, Path] = field(default_factory=dict)
    plots: tuple[Path, ...] = ()


def balance_store(
    store: Any,
    balancer: Balancer,
    *,
    out_dir: str | Path | None = None,
    plots_dir: str | Path | None = None,
    writer_config: Any = None,
    batch_size: int = 256,
    progress: bool = True,
) -> StoreBalanceReport:
    """Balance a stored dataset and optionally copy the balanced samples into a new store.

    Args:
        store: A :class:`imitation.storage.SampleStore`.
        balancer: The scheme to apply.
        out_dir: Where to write the balanced store. v2 writes one store per output into
            ``out_dir/<output>`` (its sets train one output each); other schemes one store.
        plots_dir: Where to write the before/after histograms (None: none).
        writer_config: A :class:`imitation.storage.StorageConfig` for the output.
        batch_size: Samples copied per read.
        progress: Show a progress bar while copying.

    Returns:
        The sets, output directories and plots.
    """
    from tqdm import tqdm

    from imitation.storage import SampleWriter

    actions = store.column("action")
    result = balancer.balance(actions)
    outputs: dict[str | None, Path] = {}
    if out_dir is not None:
        out_dir = Path(out_dir)
        groups: Iterable[str | None] = result.outputs if balancer.scheme == "v2" else [None]
        for output in groups:
            idx = result.indices(output if balancer.scheme == "v2" else ...)
            target = out_dir / output if output is not None else out_dir
            with (
                SampleWriter(target, config=writer_config) as writer,
                tqdm(
                    total=len(idx), desc=f"writing {target}", unit="sample", disable=not progress
                ) as bar,
            ):
                for s in range(0, len(idx), batch_size):
                    part = idx[s : s + batch_size]
                    writer.append_batch(store.read_batch(part))
                    bar.update(len(part))
            outputs[output] = target
    plots: tuple[Path, ...] = ()
    if plots_dir is not None:
        plots = balancer.plot(actions, result, plots_dir)
    return StoreBalanceReport(result=result, outputs=outputs, plots=plots)
