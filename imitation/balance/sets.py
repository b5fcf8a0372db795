"""What balancing produces: :class:`BalancedSet`, :class:`BalanceResult`, :class:`BinFill`."""

from __future__ import annotations

from dataclasses import dataclass
from types import EllipsisType
from typing import Generic, TypeVar

import numpy as np

__all__ = ["BalanceResult", "BalancedSet", "BinFill"]

T = TypeVar("T")


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
        need: Per bin, samples it must hold for a set when that differs between bins (v1 on
            2-column actions, where a cell also serves the slots of impossible combinations);
            None: ``per_bin`` for every bin.
    """

    labels: tuple[str, ...]
    counts: np.ndarray
    required: np.ndarray
    per_bin: int = 1
    need: np.ndarray | None = None

    @property
    def ready(self) -> int:
        """Required bins holding enough samples for a set."""
        need = self.per_bin if self.need is None else self.need
        return int(np.sum(self.required & (self.counts >= need)))
