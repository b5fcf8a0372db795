"""Training buffers as in the original: fill to a threshold, draw random batches and remove them.

A :class:`SampleBuffer` holds up to ``capacity`` samples (25,000 by default). Training may draw
only while it is filled to at least ``start_fill`` (90 %) of its capacity; every batch is drawn
uniformly at random *without replacement* and its samples leave the buffer, so consecutive
batches never share a sample and are decorrelated even when the data arrives as correlated
driving sequences. The buffer is topped up again from a live stream of balanced sets or from
storage (warm start). When a sample arrives at a full buffer, the oldest sample is evicted.

A :class:`BufferSet` is either one shared buffer or one buffer per output (the original's
balancing v2 kept a separately balanced buffer per output); a per-output draw concatenates equal
shares of every buffer and returns a mask saying which output each row trains.

Batches are dicts of numpy arrays with one row per sample (see ``imitation.sample``); the buffer
adds ``storage_index`` (the sample's index in storage, -1 when it came from a stream) so the
trainer can read neighbouring samples (frame stacks, history) and resume exactly.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from imitation.sample import BATCH_DTYPES, SCALAR_SHAPES

STORAGE_INDEX = "storage_index"
BATCH_FIELDS: tuple[str, ...] = tuple(BATCH_DTYPES)
"""Keys a sample or batch can carry (the batch format of :mod:`imitation.sample`)."""
READ_CHUNK = 1024


class Store(Protocol):
    """What buffers and the trainer need from a storage: a length and batched random reads."""

    def __len__(self) -> int: ...

    def read_batch(self, indices: np.ndarray) -> Mapping[str, np.ndarray]: ...


class BufferNotReady(RuntimeError):
    """A draw was asked of a buffer below its start threshold (or smaller than the batch)."""


@dataclass(frozen=True, kw_only=True)
class BufferConfig:
    """Buffer sizes and policy.

    Attributes:
        capacity: samples per buffer (the original: 25,000).
        start_fill: fraction of ``capacity`` that must be present before any draw (0.9).
        per_output: one buffer per output instead of one shared buffer.
        outputs: names of the per-output buffers when they are not the model's outputs: v2's
            ``("accel", "brake", "steering")``, whose accel and brake buffers both train a
            merged ``throttle_brake`` output (see :func:`output_columns`); () = the model's.
    """

    capacity: int = 25_000
    start_fill: float = 0.9
    per_output: bool = False
    outputs: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "outputs", tuple(str(o) for o in self.outputs))
        if self.capacity < 1:
            raise ValueError(f"buffer capacity must be >= 1, got {self.capacity}")
        if not 0.0 < self.start_fill <= 1.0:
            raise ValueError(f"start_fill must be in (0, 1], got {self.start_fill}")


OUTPUT_ALIASES: dict[str, tuple[str, ...]] = {
    "accel": ("accel", "throttle", "throttle_brake"),
    "throttle": ("throttle", "accel", "throttle_brake"),
    "brake": ("brake", "throttle_brake"),
}
"""A balanced output -> the model outputs it can train, best first (v2's accel and brake train
``throttle``/``brake`` outputs when the model has them, else the merged ``throttle_brake``)."""


def output_columns(buffers: Sequence[str], model_outputs: Sequence[str]) -> dict[str, int]:
    """Which model output (its column in the action) each per-output buffer trains.

    A buffer named like a model output trains it; v2's ``accel`` and ``brake`` train the
    model's ``throttle``/``brake`` outputs, or both its merged ``throttle_brake`` (the default
    2-output model: a brake set teaches the same output as an accel set, from the other side).

    Raises:
        ValueError: If a buffer matches no model output.
    """
    outs = list(model_outputs)
    columns: dict[str, int] = {}
    for name in buffers:
        match = next((c for c in OUTPUT_ALIASES.get(name, (name,)) if c in outs), None)
        if match is None:
            raise ValueError(
                f"per-output buffer {name!r} matches no model output {outs}: a model trained on "
                f"{list(buffers)} needs outputs named after them (accel and brake may also "
                "train one merged 'throttle_brake')"
            )
        columns[name] = outs.index(match)
    return columns


def as_batch(data: Any) -> dict[str, np.ndarray]:
    """Turn a batch dict, or a sequence of samples (objects or dicts), into a batch dict.

    Args:
        data: a mapping of arrays with one row per sample, or a sequence of samples whose fields
            (attributes or keys) are those of :data:`BATCH_FIELDS`.

    Returns:
        dict of numpy arrays, one row per sample, in the layout of storage reads
        (:data:`~imitation.sample.SCALAR_SHAPES`: a sample's float ``speed`` becomes an
        ``(N, 1)`` column), so rows from storage and from collectors share one buffer.
    """
    if isinstance(data, Mapping):
        batch = {k: np.asarray(v) for k, v in data.items()}
    else:
        items = list(data)
        if not items:
            return {}
        first = items[0]
        keys = [k for k in (*BATCH_FIELDS, STORAGE_INDEX) if _get(first, k) is not None]
        batch = {k: np.stack([np.asarray(_get(s, k)) for s in items]) for k in keys}
    lengths = {k: len(v) for k, v in batch.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"batch columns have different lengths: {lengths}")
    for key, shape in SCALAR_SHAPES.items():
        value = batch.get(key)
        if (
            value is not None
            and value.shape[1:] != shape
            and value.size == len(value) * math.prod(shape)
        ):
            batch[key] = value.reshape(len(value), *shape)
    return batch


def _get(sample: Any, key: str) -> Any:
    return sample.get(key) if isinstance(sample, Mapping) else getattr(sample, key, None)


def _batch_len(batch: Mapping[str, np.ndarray]) -> int:
    return len(next(iter(batch.values()))) if batch else 0


class SampleBuffer:
    """A fixed-capacity buffer of samples: add, draw a random batch and remove it.

    Args:
        capacity: maximum samples held.
        start_fill: fraction of capacity required before a draw.
        rng: generator for draws and evictions.
        name: used in errors and metrics.
        clock: seconds, for sample ages (injectable for tests).
    """

    def __init__(
        self,
        *,
        capacity: int = 25_000,
        start_fill: float = 0.9,
        rng: np.random.Generator,
        name: str = "shared",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        BufferConfig(capacity=capacity, start_fill=start_fill)  # validates
        self.capacity = int(capacity)
        self.start_fill = float(start_fill)
        self.threshold = max(1, math.ceil(self.start_fill * self.capacity - 1e-9))
        self.name = name
        self.rng = rng
        self.clock = clock
        self._cols: dict[str, np.ndarray] = {}
        self._inserted = np.zeros(self.capacity, np.float64)
        self._seq = np.zeros(self.capacity, np.int64)
        self._size = 0
        self.added = 0
        self.drawn = 0
        self.evicted = 0

    def __len__(self) -> int:
        return self._size

    @property
    def fill(self) -> float:
        """Fraction of capacity in use."""
        return self._size / self.capacity

    @property
    def free(self) -> int:
        """Samples that can be added before the oldest are evicted."""
        return self.capacity - self._size

    @property
    def ready(self) -> bool:
        """Whether the buffer is filled to its start threshold."""
        return self._size >= self.threshold

    def _allocate(self, batch: Mapping[str, np.ndarray]) -> None:
        for key, value in batch.items():
            self._cols[key] = np.zeros((self.capacity, *value.shape[1:]), dtype=value.dtype)
        if STORAGE_INDEX not in self._cols:
            self._cols[STORAGE_INDEX] = np.full(self.capacity, -1, np.int64)

    def add(self, data: Any) -> int:
        """Add samples (a batch dict or a sequence of samples), evicting the oldest when full.

        Returns:
            the number of samples added.
        """
        batch = as_batch(data)
        n = _batch_len(batch)
        if n == 0:
            return 0
        if not self._cols:
            self._allocate(batch)
        missing = set(self._cols) - set(batch) - {STORAGE_INDEX}
        extra = set(batch) - set(self._cols)
        if missing or extra:
            raise ValueError(
                f"buffer {self.name!r}: samples must have the same fields as before; "
                f"missing {sorted(missing)}, unexpected {sorted(extra)}"
            )
        if n > self.capacity:  # only the newest fit
            batch = {k: v[-self.capacity :] for k, v in batch.items()}
            n = self.capacity
        overflow = n - self.free
        if overflow > 0:
            occupied = self._seq[: self._size]
            oldest = np.argpartition(occupied, overflow - 1)[:overflow]
            self._remove(oldest)
            self.evicted += overflow
        start, stop = self._size, self._size + n
        for key, col in self._cols.items():
            if key in batch:
                col[start:stop] = batch[key]
            else:
                col[start:stop] = -1
        self._inserted[start:stop] = self.clock()
        self._seq[start:stop] = np.arange(self.added, self.added + n)
        self._size = stop
        self.added += n
        return n

    def _remove(self, idx: np.ndarray) -> None:
        """Remove rows ``idx`` by moving rows from the tail into the holes (O(len(idx)))."""
        idx = np.unique(idx)
        new_size = self._size - len(idx)
        holes = idx[idx < new_size]
        tail = np.setdiff1d(np.arange(new_size, self._size), idx, assume_unique=True)
        if len(holes):
            for col in (*self._cols.values(), self._inserted, self._seq):
                col[holes] = col[tail]
        self._size = new_size

    def draw(self, batch_size: int) -> dict[str, np.ndarray]:
        """Draw ``batch_size`` samples uniformly at random without replacement and remove them.

        Returns:
            batch dict (with ``storage_index``, and ``age_s``: seconds each sample waited).

        Raises:
            BufferNotReady: the buffer is below its start threshold or smaller than the batch.
        """
        if not self.ready:
            raise BufferNotReady(
                f"buffer {self.name!r} holds {self._size} samples, below its start threshold of "
                f"{self.threshold} ({self.start_fill:.0%} of {self.capacity}); add samples or refill "
                "it before drawing"
            )
        if batch_size > self._size:
            raise BufferNotReady(
                f"buffer {self.name!r} holds {self._size} samples, fewer than a batch of {batch_size}"
            )
        idx = self.rng.choice(self._size, size=batch_size, replace=False)
        batch = {k: col[idx].copy() for k, col in self._cols.items()}
        batch["age_s"] = self.clock() - self._inserted[idx]
        self._remove(idx)
        self.drawn += batch_size
        return batch

    def source_indices(self) -> np.ndarray:
        """Storage indices of the samples held (in slot order; -1 for stream samples)."""
        if not self._cols:
            return np.zeros(0, np.int64)
        return self._cols[STORAGE_INDEX][: self._size].copy()

    def stats(self) -> dict[str, float]:
        """Fill level, size, sample ages (seconds and samples added since) and counters."""
        now, size = self.clock(), self._size
        ages = now - self._inserted[:size]
        seq_ages = self.added - self._seq[:size]
        return {
            "fill": self.fill,
            "size": float(size),
            "age_mean_s": float(ages.mean()) if size else 0.0,
            "age_max_s": float(ages.max()) if size else 0.0,
            "age_mean_samples": float(seq_ages.mean()) if size else 0.0,
            "added": float(self.added),
            "drawn": float(self.drawn),
            "evicted": float(self.evicted),
        }

    def clear(self) -> None:
        """Remove every sample (counters are kept)."""
        self._size = 0


class BufferSet:
    """One shared buffer or one buffer per output, refilled from a stream or from storage.

    Args:
        names: buffer names: ``("shared",)`` or the output names (per-output buffers).
        columns: per-output buffers: the model output (column of the action) each trains, and
            ``width`` the number of model outputs; default buffer ``i`` trains output ``i``.
        width: number of model outputs (the mask's width); default ``len(names)``.
        capacity: samples per buffer.
        start_fill: fraction of capacity required before a draw.
        rng: generator for draws and storage refills.
        clock: seconds, for sample ages.
    """

    def __init__(
        self,
        *,
        names: Sequence[str] = ("shared",),
        columns: Mapping[str, int] | None = None,
        width: int | None = None,
        capacity: int = 25_000,
        start_fill: float = 0.9,
        rng: np.random.Generator,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not names:
            raise ValueError("a BufferSet needs at least one buffer name")
        self.rng = rng
        self.columns = dict(columns) if columns is not None else {n: i for i, n in enumerate(names)}
        self.width = int(width) if width is not None else len(names)
        self.buffers = {
            n: SampleBuffer(capacity=capacity, start_fill=start_fill, rng=rng, name=n, clock=clock)
            for n in names
        }

    @classmethod
    def from_config(
        cls,
        config: BufferConfig,
        *,
        outputs: Sequence[str],
        rng: np.random.Generator,
        clock: Callable[[], float] = time.monotonic,
    ) -> BufferSet:
        """Shared or per-output buffers as ``config`` says.

        Args:
            outputs: the model's outputs.
        """
        names = (config.outputs or tuple(outputs)) if config.per_output else ("shared",)
        columns = output_columns(names, outputs) if config.per_output else None
        return cls(
            names=names,
            columns=columns,
            width=len(outputs) if config.per_output else None,
            capacity=config.capacity,
            start_fill=config.start_fill,
            rng=rng,
            clock=clock,
        )

    @property
    def per_output(self) -> bool:
        """Whether there is one buffer per output."""
        return tuple(self.buffers) != ("shared",)

    @property
    def ready(self) -> bool:
        """Whether every buffer is filled to its threshold."""
        return all(b.ready for b in self.buffers.values())

    @property
    def fill(self) -> float:
        """Lowest fill level among the buffers."""
        return min(b.fill for b in self.buffers.values())

    def __len__(self) -> int:
        return sum(len(b) for b in self.buffers.values())

    def _buffer(self, output: str | None) -> SampleBuffer:
        if output is None:
            if self.per_output:
                raise ValueError(
                    f"per-output buffers {list(self.buffers)}: say which output the samples are "
                    "balanced for (output=...)"
                )
            return self.buffers["shared"]
        if output not in self.buffers:
            raise KeyError(f"no buffer named {output!r}; buffers: {list(self.buffers)}")
        return self.buffers[output]

    def add(self, data: Any, *, output: str | None = None) -> int:
        """Add samples to the shared buffer or to the buffer of ``output``."""
        return self._buffer(output).add(data)

    def draw(self, batch_size: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Draw one training batch.

        Per-output buffers each give an equal share (the first ones one more when it does not
        divide); the mask ``(B, outputs)`` marks which output each row trains. A shared buffer
        gives the whole batch and a mask of ones (its width is then 1 and broadcasts).

        Returns:
            (batch, mask).
        """
        names = list(self.buffers)
        shares = [
            batch_size // len(names) + (i < batch_size % len(names)) for i in range(len(names))
        ]
        if not self.ready:
            low = [n for n, b in self.buffers.items() if not b.ready]
            raise BufferNotReady(f"buffers {low} are below their start threshold; refill first")
        parts = [self.buffers[n].draw(s) for n, s in zip(names, shares, strict=True) if s]
        batch = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        if not self.per_output:
            return batch, np.ones((batch_size, 1), np.float32)
        mask = np.zeros((batch_size, self.width), np.float32)
        row = 0
        for name, s in zip(names, shares, strict=True):
            mask[row : row + s, self.columns[name]] = 1.0
            row += s
        return batch, mask

    def refill_from_stream(self, sets: Iterable[Any], *, output: str | None = None) -> int:
        """Add balanced sets from a stream until the target buffer(s) are full or it runs dry.

        Args:
            sets: balanced sets (batch dicts or sequences of samples). For per-output buffers an
                item may be ``(output_name, set)``; otherwise ``output`` names the buffer.
            output: buffer for untagged sets.

        Returns:
            samples added.
        """
        added = 0
        for item in sets:
            name, data = output, item
            if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
                name, data = item
            added += self.add(data, output=name)
            if all(b.free == 0 for b in self.buffers.values()):
                break
        return added

    def refill_from_storage(
        self, store: Store, *, indices: np.ndarray | Mapping[str, np.ndarray] | None = None
    ) -> dict[str, int]:
        """Top every buffer up to capacity with random samples read from storage.

        Samples already held by a buffer are not drawn again for it; a buffer holds at most the
        number of available indices.

        Args:
            store: a storage with ``len`` and ``read_batch``.
            indices: storage indices to draw from (e.g. training towns only); default all. Per
                buffer name for per-output buffers filled from their own stores (a v2 folder
                read as one :class:`~imitation.balance.PerOutputStore`).

        Returns:
            samples added per buffer.
        """
        counts: dict[str, int] = {}
        for name, buffer in self.buffers.items():
            if isinstance(indices, Mapping):
                if name not in indices:
                    raise KeyError(f"no storage indices for buffer {name!r}; got {list(indices)}")
                pool = np.asarray(indices[name], np.int64)
            elif indices is None:
                pool = np.arange(len(store), dtype=np.int64)
            else:
                pool = np.asarray(indices, np.int64)
            held = buffer.source_indices()
            candidates = (
                np.setdiff1d(pool, held[held >= 0], assume_unique=False) if len(held) else pool
            )
            want = min(buffer.free, len(candidates))
            if want <= 0:
                counts[name] = 0
                continue
            chosen = np.sort(self.rng.choice(candidates, size=want, replace=False))
            counts[name] = self.add_from_storage(
                store, chosen, output=name if self.per_output else None
            )
        return counts

    def add_from_storage(
        self, store: Store, indices: np.ndarray, *, output: str | None = None
    ) -> int:
        """Read ``indices`` from storage (in chunks) and add them, remembering their indices."""
        added = 0
        for start in range(0, len(indices), READ_CHUNK):
            chunk = np.asarray(indices[start : start + READ_CHUNK], np.int64)
            batch = dict(store.read_batch(chunk))
            batch[STORAGE_INDEX] = chunk
            added += self.add(batch, output=output)
        return added

    def state(self) -> dict[str, np.ndarray]:
        """Storage indices held by each buffer (for exact resume from storage)."""
        return {name: b.source_indices() for name, b in self.buffers.items()}

    def restore(self, store: Store, state: Mapping[str, np.ndarray]) -> None:
        """Refill empty buffers with the samples a :meth:`state` named, in the same slots."""
        for name, idx in state.items():
            buffer = self._buffer(name if self.per_output else None)
            buffer.clear()
            idx = np.asarray(idx, np.int64)
            if np.any(idx < 0):
                raise ValueError(
                    f"buffer {name!r} held stream samples, which cannot be restored from storage"
                )
            self.add_from_storage(store, idx, output=name if self.per_output else None)

    def stats(self) -> dict[str, float]:
        """Metrics ``buffer/<name>/<stat>`` for every buffer."""
        return {
            f"buffer/{name}/{k}": v
            for name, b in self.buffers.items()
            for k, v in b.stats().items()
        }
