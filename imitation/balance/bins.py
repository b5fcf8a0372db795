"""Bins: partitions of an output's range, the scheme's bin sets, and actions -> outputs.

See :mod:`imitation.balance` for the edges and why they are what they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "PEDAL_V1",
    "PEDAL_V2",
    "SIGNED_V1",
    "SIGNED_V2",
    "Bins",
    "Interval",
    "check_actions",
    "merge_pedals",
    "split_pedals",
]


@dataclass(frozen=True)
class Interval:
    """One bin: ``lo`` to ``hi``, each end open or closed (``lo == hi``: one exact value)."""

    lo: float
    hi: float
    lo_closed: bool
    hi_closed: bool

    def label(self) -> str:
        """Interval notation, e.g. ``"[0.2,0.8)"`` or ``"[0]"``."""
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
    intervals: tuple[Interval, ...]

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
    ivs = [Interval(0.0, 0.0, True, True)]
    bounds = [0.0, *edges, 1.0]
    for i, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
        ivs.append(Interval(lo, hi, i > 0, False))
    ivs.append(Interval(1.0, 1.0, True, True))
    return Bins(name, tuple(ivs))


def _mirror(name: str, positive: Bins) -> Bins:
    """Mirror positive-side bins (the first one being exact [0]) onto the negative side."""
    neg = [
        Interval(
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
        Interval(0.0, 0.0, True, True),
        Interval(0.0, 0.1, False, False),
        *(Interval(round(0.1 * k, 1), round(0.1 * (k + 1), 1), True, False) for k in range(1, 9)),
        Interval(0.9, 1.0, True, True),
    ),
)
SIGNED_V2 = _mirror("SIGNED_V2", _SIGNED_V2_POS)


def split_pedals(actions: np.ndarray) -> dict[str, np.ndarray]:
    """accel, brake, steering from (N, 2) or (N, 3) actions."""
    a = check_actions(actions)
    if a.shape[1] == 2:
        return {
            "accel": np.maximum(a[:, 0], 0),
            "brake": np.maximum(-a[:, 0], 0),
            "steering": a[:, 1],
        }
    return {"accel": a[:, 0], "brake": a[:, 1], "steering": a[:, 2]}


def merge_pedals(actions: np.ndarray) -> dict[str, np.ndarray]:
    """throttle_brake, steering from (N, 2) or (N, 3) actions."""
    a = check_actions(actions)
    if a.shape[1] == 2:
        return {"throttle_brake": a[:, 0], "steering": a[:, 1]}
    return {"throttle_brake": np.clip(a[:, 0] - a[:, 1], -1, 1), "steering": a[:, 2]}


def check_actions(actions: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
    """Actions as float32 (N, 2) or (N, 3), checked.

    Raises:
        ValueError: For another shape, or 3-column pedals outside [0, 1].
    """
    a = np.asarray(actions, dtype=np.float32)
    if a.ndim != 2 or a.shape[1] not in (2, 3):
        raise ValueError(
            "actions must have shape (N, 2) [throttle_brake, steering] or (N, 3) "
            f"[throttle, brake, steering], got {a.shape}"
        )
    if a.shape[1] == 3 and (np.any(a[:, :2] < 0) or np.any(a[:, :2] > 1)):
        raise ValueError("3-column actions need throttle and brake in [0, 1]")
    return a
