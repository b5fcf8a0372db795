"""The balancing schemes v1-v4 behind one interface, :class:`Balancer`.

What tells the schemes apart is data: one frozen :class:`SchemeSpec` per scheme (its outputs and
their bins, whether sets train only their own output, and for v3/v4 the
:class:`~imitation.balance.engines.OutputPair` that steers picks). A scheme class adds only how
its engine is built. See :mod:`imitation.balance` for what each scheme does.
"""

from __future__ import annotations

import dataclasses
import operator
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from gta_env.fields import check_int
from imitation.balance.bins import (
    PEDAL_V1,
    PEDAL_V2,
    SIGNED_V1,
    SIGNED_V2,
    Bins,
    check_actions,
    merge_pedals,
    split_pedals,
)
from imitation.balance.engines import (
    CellEngine,
    Engine,
    MultiEngine,
    OutputPair,
    PerOutputEngine,
    QueueRules,
    RawSet,
)
from imitation.balance.sets import BalancedSet, BalanceResult, BinFill
from imitation.plots import save_histograms
from imitation.sample import Sample

__all__ = [
    "REQUIRE_MODES",
    "SCHEMES",
    "Balancer",
    "BalancerV1",
    "BalancerV2",
    "BalancerV3",
    "BalancerV4",
    "SchemeSpec",
    "make_balancer",
]

REQUIRE_MODES = ("all", "seen")
"""Values of ``Balancer(require=...)``."""

DEFAULT_MIN_SHARE = 0.001
"""``require="seen"``: bins holding less than this share of the samples are not required (see
"Required bins" in :mod:`imitation.balance`)."""


@dataclass(frozen=True)
class SchemeSpec:
    """What a balancing scheme is, as data.

    Attributes:
        name: ``"v1"`` ... ``"v4"``.
        outputs: The outputs binned, in order, each with its bins.
        merged_pedals: Outputs from actions: ``throttle_brake`` and ``steering`` (True) or
            ``accel``, ``brake`` and ``steering`` (False).
        own_output_sets: Each set trains only the output it balances (v2), so histograms after
            balancing count each output over its own sets and stores are written per output.
        pair: v3/v4: the two outputs balanced against each other and how picks are made.
    """

    name: str
    outputs: tuple[tuple[str, Bins], ...]
    merged_pedals: bool
    own_output_sets: bool = False
    pair: OutputPair | None = None


_MERGED = (("throttle_brake", SIGNED_V2), ("steering", SIGNED_V2))
V1_SPEC = SchemeSpec(
    name="v1",
    outputs=(("accel", PEDAL_V1), ("brake", PEDAL_V1), ("steering", SIGNED_V1)),
    merged_pedals=False,
)
V2_SPEC = SchemeSpec(
    name="v2",
    outputs=(("accel", PEDAL_V2), ("brake", PEDAL_V2), ("steering", SIGNED_V2)),
    merged_pedals=False,
    own_output_sets=True,
)
V3_SPEC = SchemeSpec(
    name="v3",
    outputs=_MERGED,
    merged_pedals=True,
    pair=OutputPair(
        names=("throttle_brake", "steering"),
        bins=(SIGNED_V2, SIGNED_V2),
        sub_bins=SIGNED_V2,
        per_bin=1,
        waterfill=False,
    ),
)
V4_SPEC = dataclasses.replace(
    V3_SPEC,
    name="v4",
    pair=dataclasses.replace(
        V3_SPEC.pair,  # type: ignore[type-var]
        sub_bins=SIGNED_V1,
        per_bin=len(SIGNED_V1),
        waterfill=True,
    ),
)
"""v3's outputs, with ``per_bin`` picks per bin that sub-balance the other output."""


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
        min_share: With ``require="seen"``: a bin (v1: a cell) is required only while it holds at
            least this share of the samples seen (default :data:`DEFAULT_MIN_SHARE`; 0: every
            bin seen once). Rarer bins would hold every set back to their own rate.
    """

    SPEC: ClassVar[SchemeSpec]
    """The scheme this class implements (an instance's :attr:`spec` may refine it)."""

    def __init__(
        self,
        *,
        rng: np.random.Generator,
        max_per_bin: int | None = 1000,
        require: str = "all",
        warmup: int = 0,
        min_share: float | None = None,
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
        check_int("warmup", warmup, minimum=0)
        if warmup and require == "all":
            raise ValueError("warmup only applies with require='seen'")
        if min_share is None:
            min_share = DEFAULT_MIN_SHARE if require == "seen" else 0.0
        if not 0.0 <= float(min_share) < 1.0:
            raise ValueError(f"min_share must be in [0, 1), got {min_share}")
        if min_share and require == "all":
            raise ValueError("min_share only applies with require='seen'")
        self.min_share = float(min_share)
        self.spec = self.SPEC
        self.rng = rng
        self.max_per_bin = max_per_bin
        self.require = require
        self.warmup = warmup
        self._n_columns: int | None = None
        self._engine: Engine | None = None
        self.dropped = 0

    # -- what the spec defines ------------------------------------------------------------

    @property
    def scheme(self) -> str:
        """The scheme's name, ``"v1"`` ... ``"v4"``."""
        return self.spec.name

    def outputs(self, actions: np.ndarray) -> dict[str, np.ndarray]:
        """The outputs this scheme balances, computed from actions."""
        return merge_pedals(actions) if self.spec.merged_pedals else split_pedals(actions)

    def output_bins(self) -> dict[str, Bins]:
        """The bins of each output."""
        return dict(self.spec.outputs)

    # -- what subclasses define ----------------------------------------------------------

    @abstractmethod
    def _new_engine(self, n_columns: int, rules: QueueRules) -> Engine:
        """A fresh queueing engine for actions of ``n_columns`` columns."""

    def _stream_rules(self) -> QueueRules:
        mode = "seen" if self.require == "seen" else "all"
        return QueueRules(
            mode=mode, warmup=self.warmup, max_per_bin=self.max_per_bin, min_share=self.min_share
        )

    # -- stream mode -----------------------------------------------------------------------

    def add(self, sample: Sample) -> list[BalancedSet[Sample]]:
        """Queue one sample; returns the balanced sets it completed (usually none)."""
        return self.add_item(sample, sample.action)

    def add_item(self, item: Any, action: np.ndarray | Sequence[float]) -> list[BalancedSet[Any]]:
        """Queue any item under the given action; returns the balanced sets completed."""
        a = check_actions(np.asarray(action, dtype=np.float32).reshape(1, -1))
        if self._engine is None:
            self._n_columns = a.shape[1]
            self._engine = self._new_engine(a.shape[1], self._stream_rules())
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
            return self._new_engine(2, self._stream_rules()).fill()
        return self._engine.fill()

    def _observed_engine(self, bins: list[tuple[int, ...]], n_columns: int) -> Engine:
        """A dataset-mode engine; with ``require="seen"`` only the bins present are required."""
        if self.require == "all":
            return self._new_engine(n_columns, QueueRules())
        engine = self._new_engine(n_columns, QueueRules(mode="observed", min_share=self.min_share))
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
        a = check_actions(actions)
        bins = self._bin_rows(a)
        engine = self._observed_engine(bins, a.shape[1])
        raw: list[RawSet] = []
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
                own = self.spec.own_output_sets
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


class BalancerV1(Balancer):
    """v1: one sample of every (accel, brake, steering) bin combination per set (see module).

    Sets have 5 x 5 x 9 = 225 slots, one per combination, for either action layout. From
    2-column ``[throttle_brake, steering]`` actions accel and brake are binned separately
    (``max(a, 0)``, ``max(-a, 0)``), but a merged action never presses both, so the 144
    combinations with both pedals pressed cannot occur: the slot of such a combination
    ``(a, b, s)`` is served by the accel-only cell ``(a, 0, s)`` when ``a + b`` is even, else by
    the brake-only cell ``(0, b, s)``. Per steering bin a set then holds one "released" sample
    and three of every pressed accel and brake bin (25 in all), and each set still has 225
    samples with the original's size and one entry per combination in :attr:`BalancedSet.bins`.
    """

    SPEC = V1_SPEC

    @staticmethod
    def combination(bins: tuple[int, ...]) -> int:
        """Combination index of (accel bin, brake bin, steering bin): ``(a * 5 + b) * 9 + s``."""
        return (bins[0] * len(PEDAL_V1) + bins[1]) * len(SIGNED_V1) + bins[2]

    @staticmethod
    def required_combinations(n_columns: int) -> list[int]:
        """Cells that can hold samples: all 225 for 3-column actions, 81 for 2-column ones."""
        return [
            BalancerV1.combination((a, b, s))
            for a in range(len(PEDAL_V1))
            for b in range(len(PEDAL_V1))
            for s in range(len(SIGNED_V1))
            if n_columns == 3 or a == 0 or b == 0
        ]

    @staticmethod
    def slots(n_columns: int) -> list[tuple[int, int]]:
        """(combination, cell serving it) for the 225 slots of a set (see the class docstring)."""
        out = []
        for a in range(len(PEDAL_V1)):
            for b in range(len(PEDAL_V1)):
                for s in range(len(SIGNED_V1)):
                    combo = BalancerV1.combination((a, b, s))
                    if n_columns == 3 or a == 0 or b == 0:
                        cell = combo
                    elif (a + b) % 2 == 0:
                        cell = BalancerV1.combination((a, 0, s))
                    else:
                        cell = BalancerV1.combination((0, b, s))
                    out.append((combo, cell))
        return out

    def _new_engine(self, n_columns: int, rules: QueueRules) -> Engine:
        required = self.required_combinations(n_columns)
        p, s = PEDAL_V1.labels, SIGNED_V1.labels
        labels = [f"{p[c // 45]}|{p[c // 9 % 5]}|{s[c % 9]}" for c in required]
        return CellEngine(
            output=None,
            required=required,
            key=self.combination,
            labels=labels,
            rules=rules,
            slots=self.slots(n_columns),
        )


class BalancerV2(Balancer):
    """v2: accel (12 bins), brake (12) and steering (21) balanced separately (see module)."""

    SPEC = V2_SPEC

    def _new_engine(self, n_columns: int, rules: QueueRules) -> Engine:
        return MultiEngine(
            [
                CellEngine(
                    output=name,
                    required=range(len(bins)),
                    key=operator.itemgetter(col),
                    labels=bins.labels,
                    rules=rules,
                )
                for col, (name, bins) in enumerate(self.spec.outputs)
            ]
        )


class BalancerV3(Balancer):
    """v3: throttle_brake and steering (21 bins each), sets per output keep all outputs."""

    SPEC = V3_SPEC

    @property
    def _pair(self) -> OutputPair:
        assert self.spec.pair is not None
        return self.spec.pair

    def _extra_bin_columns(self, outs: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        # Sub-bin when output 0 is balanced: output 1's; and the other way round.
        first, second = self._pair.names
        sub_bins = self._pair.sub_bins
        return [sub_bins.index(outs[second]), sub_bins.index(outs[first])]

    def _new_engine(self, n_columns: int, rules: QueueRules) -> Engine:
        return PerOutputEngine(
            pair=self._pair,
            rules=rules,
            rng=self.rng,
            patience=self._patience(rules.max_per_bin),
        )

    def _patience(self, max_per_bin: int | None) -> int | None:
        return None

    def balance(self, actions: np.ndarray) -> BalanceResult:
        """Queue every sample first, then build sets alternating between the outputs."""
        a = check_actions(actions)
        bins = self._bin_rows(a)
        engine = self._observed_engine(bins, a.shape[1])
        assert isinstance(engine, PerOutputEngine)
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
        min_share: See :class:`Balancer`.
        per_bin: Samples per bin of the balanced output in each set (default: one per
            ``SIGNED_V1`` sub-bin of the other output, 9).
        patience: Stream mode: samples a bin may hold before it is used without every sub-bin
            (default ``2 * per_bin``, at most ``max_per_bin``).
    """

    SPEC = V4_SPEC

    def __init__(
        self,
        *,
        rng: np.random.Generator,
        max_per_bin: int | None = 1000,
        require: str = "all",
        warmup: int = 0,
        min_share: float | None = None,
        per_bin: int = len(SIGNED_V1),
        patience: int | None = None,
    ) -> None:
        super().__init__(
            rng=rng, max_per_bin=max_per_bin, require=require, warmup=warmup, min_share=min_share
        )
        if per_bin < 1:
            raise ValueError(f"per_bin must be >= 1, got {per_bin}")
        if max_per_bin is not None and max_per_bin < per_bin:
            raise ValueError(f"max_per_bin ({max_per_bin}) must be >= per_bin ({per_bin})")
        if patience is not None and patience < per_bin:
            raise ValueError(f"patience ({patience}) must be >= per_bin ({per_bin})")
        self.spec = dataclasses.replace(
            V4_SPEC, pair=dataclasses.replace(self._pair, per_bin=per_bin)
        )
        self._patience_value = patience

    def _patience(self, max_per_bin: int | None) -> int | None:
        if max_per_bin is None:  # dataset mode: all samples are queued before sets are built
            return None
        if self._patience_value is not None:
            return min(self._patience_value, max_per_bin)
        return min(2 * self._pair.per_bin, max_per_bin)


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
