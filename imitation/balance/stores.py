"""v2 data on disk: one store per output, and the view a trainer reads them through.

v2 balances each output on its own, so its sets train one output each: ``balance_store`` and
``collect --balance v2`` write one store per output into ``<folder>/<output>`` (``accel``,
``brake``, ``steering``). :class:`PerOutputStore` opens such a folder as one store (the
concatenation, in output order) that also says which indices belong to which output
(:attr:`PerOutputStore.output_indices`); the trainer gives each output its own buffer, filled
only from that output's store. :func:`open_samples` opens either kind of folder, and says
clearly what is wrong with a folder that is neither.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "V2_OUTPUTS",
    "PerOutputStore",
    "open_samples",
    "per_output_dirs",
    "require_single_store",
]

V2_OUTPUTS = ("accel", "brake", "steering")
"""The outputs v2 balances, each written to its own store ``<folder>/<output>``."""


def _has_chunks(path: Path) -> bool:
    return path.is_dir() and any(path.glob("*.g5c"))


def per_output_dirs(path: str | Path) -> dict[str, Path]:
    """The per-output stores under ``path`` (a v2 folder), in :data:`V2_OUTPUTS` order; {} if none."""
    root = Path(path)
    return {name: root / name for name in V2_OUTPUTS if _has_chunks(root / name)}


def require_single_store(path: str | Path, *, what: str = "this command") -> None:
    """Fail clearly when ``path`` is a v2 folder (one store per output) or holds no store.

    Raises:
        ValueError: Naming the folder and what to pass instead.
    """
    root = Path(path)
    if not root.is_dir():
        raise ValueError(f"{root}: no such store directory")
    subs = per_output_dirs(root)
    if subs and not _has_chunks(root):
        raise ValueError(
            f"{root} is a v2 collection folder (one store per output: "
            f"{', '.join(subs)}), not one store; {what} takes one store: pass one of "
            f"{', '.join(str(p) for p in subs.values())}, or train on the folder itself "
            "(gta5drive train --data FOLDER fills one buffer per output from its own store)"
        )
    if not _has_chunks(root):
        raise ValueError(f"{root} holds no samples (no *.g5c chunk files)")


class PerOutputStore:
    """Per-output stores read as one: indices ``[0, len(first))`` are the first output's, etc.

    Args:
        stores: Output name -> its store (``len``, ``read_batch``, ``column``), in order.
    """

    def __init__(self, stores: Mapping[str, Any]) -> None:
        if not stores:
            raise ValueError("a PerOutputStore needs at least one output store")
        self.stores = dict(stores)
        sizes = [len(s) for s in self.stores.values()]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.output_indices: dict[str, np.ndarray] = {
            name: np.arange(self.offsets[i], self.offsets[i + 1], dtype=np.int64)
            for i, name in enumerate(self.stores)
        }
        """Output name -> the indices of its samples in this view."""

    @classmethod
    def open(cls, path: str | Path) -> PerOutputStore:
        """Open the v2 folder ``path`` (its ``<output>`` stores).

        Raises:
            ValueError: If ``path`` holds no per-output store.
        """
        from imitation.storage import SampleStore

        dirs = per_output_dirs(path)
        if not dirs:
            raise ValueError(
                f"{path} is not a v2 collection folder: none of {list(V2_OUTPUTS)} holds a store"
            )
        return cls({name: SampleStore(d) for name, d in dirs.items()})

    @property
    def outputs(self) -> tuple[str, ...]:
        """The outputs, in order."""
        return tuple(self.stores)

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def _locate(self, indices: np.ndarray) -> np.ndarray:
        idx = np.asarray(indices, np.int64)
        if idx.ndim != 1:
            raise ValueError(f"indices must be one-dimensional, got shape {idx.shape}")
        if len(idx) and (idx.min() < 0 or idx.max() >= len(self)):
            raise IndexError(f"indices outside [0, {len(self)})")
        return np.searchsorted(self.offsets, idx, side="right") - 1

    def read_batch(self, indices: Sequence[int] | np.ndarray) -> dict[str, np.ndarray]:
        """Samples at ``indices`` (any mix of outputs), in the order given."""
        idx = np.asarray(indices, np.int64)
        part = self._locate(idx)
        out: dict[str, np.ndarray] = {}
        for p, store in enumerate(self.stores.values()):
            pos = np.flatnonzero(part == p)
            if not len(pos):
                continue
            batch = store.read_batch(idx[pos] - self.offsets[p])
            for key, value in batch.items():
                value = np.asarray(value)
                if key not in out:
                    out[key] = np.empty((len(idx), *value.shape[1:]), value.dtype)
                out[key][pos] = value
        return out

    def column(self, key: str) -> np.ndarray:
        """A metadata column over every output's store, in view order."""
        return np.concatenate([np.asarray(s.column(key)) for s in self.stores.values()])

    def close(self) -> None:
        """Close every store."""
        for s in self.stores.values():
            close = getattr(s, "close", None)
            if callable(close):
                close()


def open_samples(path: str | Path) -> Any:
    """One store, or a :class:`PerOutputStore` for a v2 folder, with clear errors.

    Raises:
        ValueError: If ``path`` does not exist or holds no samples in either layout.
    """
    from imitation.storage import SampleStore

    root = Path(path)
    if not root.is_dir():
        raise ValueError(f"{root}: no such store directory")
    if per_output_dirs(root) and not _has_chunks(root):
        return PerOutputStore.open(root)
    if not _has_chunks(root):
        raise ValueError(f"{root} holds no samples (no *.g5c chunk files)")
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        return SampleStore(root)
