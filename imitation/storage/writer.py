"""Appending samples to a store: :class:`StorageConfig` and :class:`SampleWriter`.

A writer buffers compressed frames and metadata for up to ``chunk_samples`` samples, then commits
them as one chunk (:func:`~imitation.storage.format.encode_chunk`) written to a hidden temporary
file, fsynced and renamed into place, so a crash loses at most the chunk in flight.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import re
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from gta_env.fields import check_ints
from imitation.sample import SCALAR_KEYS, Sample, check_batch, unstack_batch
from imitation.storage.files import (
    STORE_FILE,
    append_journal,
    atomic_write,
    chunk_names,
    fsync_dir,
    read_layout,
    temp_names,
    write_error,
)
from imitation.storage.format import (
    CHUNK_SUFFIX,
    CODECS,
    FORMAT_VERSION,
    META_FIELDS,
    Codec,
    chunk_count_from_name,
    chunk_name,
    encode_chunk,
    layout_of,
)
from imitation.storage.reader import store_layout

__all__ = ["SampleWriter", "StorageConfig"]

logger = logging.getLogger(__name__)

_WRITER_ID = re.compile(r"^[A-Za-z0-9]{1,40}$")


@dataclass(frozen=True, kw_only=True)
class StorageConfig:
    """How a :class:`SampleWriter` writes chunks.

    Attributes:
        chunk_samples: Samples per chunk (the most a crash can lose). 256 is ~8.5 s of driving.
        codec: Frame compression: ``"zstd"`` (needs the ``zstandard`` package), ``"zlib"`` or
            ``"none"``.
        level: Compression level (zstd 1-22, zlib 1-9; ignored for ``"none"``).
        max_bytes: Rotating cap on the total size of chunk files, or None for no cap.
        max_samples: Rotating cap on the number of stored samples, or None for no cap.
        fsync: fsync chunk files and the directory (turn off only for throwaway data).
        stale_temp_s: Temporary files older than this (left by killed writers) are deleted when
            a writer starts.
    """

    chunk_samples: int = 256
    codec: str = "zstd"
    level: int = 1
    max_bytes: int | None = None
    max_samples: int | None = None
    fsync: bool = True
    stale_temp_s: float = 600.0

    def __post_init__(self) -> None:
        check_ints(self, {"chunk_samples": 1})
        if self.codec not in CODECS:
            raise ValueError(f"StorageConfig.codec must be one of {CODECS}, got {self.codec!r}")
        limits = {"zstd": (1, 22), "zlib": (1, 9), "none": (0, 100)}[self.codec]
        if not limits[0] <= self.level <= limits[1]:
            raise ValueError(
                f"StorageConfig.level for codec {self.codec!r} must be in {list(limits)}, "
                f"got {self.level}"
            )
        check_ints(self, {"max_bytes": 1, "max_samples": 1}, optional=True)
        if self.stale_temp_s <= 0:
            raise ValueError(f"StorageConfig.stale_temp_s must be > 0, got {self.stale_temp_s}")


class SampleWriter:
    """Appends samples to a store directory, one atomically written chunk at a time.

    Use it as a context manager (it flushes on exit, also when an exception ends the block)::

        with SampleWriter("data/run1", config=StorageConfig(max_bytes=20 * 2**30)) as w:
            for sample in recorder:
                w.append(sample)

    Several writers (processes) may write into one directory at once; a rerun appends.

    Args:
        root: The store directory (created if missing).
        config: How chunks are written.
        writer_id: Short alphanumeric id that keeps this writer's chunk names unique; a random one
            (with the process id) by default.

    Raises:
        ValueError: If the directory holds a store with another frame layout (on first append),
            or ``writer_id`` is not alphanumeric.
        StoreWriteError: If the folder cannot be written (read-only); on commit, if the disk is
            full (the message says so; no temporary file is left, committed chunks are kept,
            and the pending samples stay pending).
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        config: StorageConfig | None = None,
        writer_id: str | None = None,
    ) -> None:
        self.root = Path(root)
        self.config = config or StorageConfig()
        if writer_id is None:
            writer_id = f"p{os.getpid()}r{secrets.token_hex(3)}"
        if not _WRITER_ID.match(writer_id):
            raise ValueError(
                f"writer_id must be 1-40 letters or digits (it is part of chunk file names), "
                f"got {writer_id!r}"
            )
        self.writer_id = writer_id
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise write_error(self.root, exc, "create the folder") from None
        if not os.access(self.root, os.W_OK):
            raise write_error(
                self.root, OSError(errno.EACCES, "not writable"), "write chunks"
            ) from None
        self._codec = Codec(self.config.codec, self.config.level)
        self._layout: dict[str, Any] | None = None
        self._seq = 0
        self._last_ns = 0
        self._closed = False
        self.committed_samples = 0
        self.committed_chunks: list[Path] = []
        self._reset_pending()
        self._remove_stale_temp_files()

    # -- public API ------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Samples appended but not yet committed (lost if the process dies now)."""
        return len(self._hood)

    def append(self, sample: Sample) -> Path | None:
        """Append one sample; commits a chunk when ``chunk_samples`` are pending.

        Returns:
            The path of the chunk committed by this call, or None.
        """
        if not isinstance(sample, Sample):
            raise TypeError(f"append expects a Sample, got {type(sample).__name__}")
        self._check_open()
        cin_shape = None if sample.cinematic is None else sample.cinematic.shape
        self._check_layout(sample.hood.shape, cin_shape)
        self._hood.append(self._codec.compress(np.ascontiguousarray(sample.hood).data))
        if sample.cinematic is not None:
            self._cin.append(self._codec.compress(np.ascontiguousarray(sample.cinematic).data))
        self._meta["action"].append(sample.action)
        self._meta["executed_action"].append(sample.executed_action)
        self._meta["speed"].append((sample.speed,))
        self._meta["purpose"].append(sample.purpose)
        self._meta["time"].append(sample.time)
        self._meta["step"].append(sample.step)
        self._meta["episode_id"].append(sample.episode_id)
        self._meta["town_id"].append(sample.town_id)
        self._meta["light"].append(sample.light)
        self._meta["target_speed"].append(sample.target_speed)
        if len(self._hood) >= self.config.chunk_samples:
            return self._commit()
        return None

    def extend(self, samples: Sequence[Sample]) -> list[Path]:
        """Append several samples; returns the chunks committed meanwhile."""
        return [p for s in samples if (p := self.append(s)) is not None]

    def append_batch(self, batch: Mapping[str, np.ndarray]) -> list[Path]:
        """Append every sample of a batch dict (see :mod:`imitation.sample`).

        Values are validated like :class:`Sample` validates them (one sample at a time).

        Returns:
            The chunks committed meanwhile.
        """
        check_batch(batch)
        return self.extend(unstack_batch(batch))

    def flush(self) -> Path | None:
        """Commit the pending samples as a (possibly short) chunk.

        Returns:
            The committed chunk's path, or None if nothing was pending.
        """
        self._check_open()
        return self._commit() if self._hood else None

    def close(self) -> None:
        """Flush and stop accepting samples (idempotent)."""
        if not self._closed:
            self.flush()
            self._closed = True

    def __enter__(self) -> SampleWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Samples appended before an error are valid data: keep them.
        self.close()

    def __repr__(self) -> str:
        return (
            f"SampleWriter({str(self.root)!r}, writer_id={self.writer_id!r}, "
            f"committed={self.committed_samples}, pending={self.pending})"
        )

    # -- internals -------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError(f"{self!r} is closed; create a new SampleWriter to append more")

    def _reset_pending(self) -> None:
        self._hood: list[bytes] = []
        self._cin: list[bytes] = []
        self._meta: dict[str, list[Any]] = {key: [] for key in SCALAR_KEYS}

    def _check_layout(self, hood: tuple[int, ...], cin: tuple[int, ...] | None) -> None:
        want = layout_of(hood, cin)
        if self._layout is None:
            # The chunks describe themselves: store.json is rebuilt when it disagrees with them.
            existing = store_layout(self.root)
            if existing is None or read_layout(self.root) != existing:
                existing = self._create_layout(existing or want)
            self._layout = existing
        if (
            self._layout["hood_shape"] != want["hood_shape"]
            or self._layout["cinematic_shape"] != want["cinematic_shape"]
        ):
            raise ValueError(
                f"sample has hood {tuple(hood)} and cinematic {cin}, but the store at "
                f"{self.root} holds hood {tuple(self._layout['hood_shape'])} and cinematic "
                f"{self._layout['cinematic_shape']}; write to another directory"
            )

    def _create_layout(self, layout: dict[str, Any]) -> dict[str, Any]:
        path = self.root / STORE_FILE
        data = json.dumps(layout, sort_keys=True).encode()
        try:
            if path.exists() or path.is_symlink():  # malformed or disagreeing: rebuild it
                atomic_write(path, data, fsync=self.config.fsync)
                return layout
            tmp = self.root / f".tmp-{self.writer_id}-store.json"
            try:
                tmp.write_bytes(data)
                if self.config.fsync:
                    with open(tmp, "rb") as f:
                        os.fsync(f.fileno())
                with contextlib.suppress(FileExistsError):  # another writer was first: it wins
                    os.link(tmp, path)
            finally:
                tmp.unlink(missing_ok=True)
            if self.config.fsync:
                fsync_dir(self.root)
        except OSError as exc:
            raise write_error(self.root, exc, f"write {STORE_FILE}") from None
        return read_layout(self.root) or layout

    def _commit(self) -> Path:
        n = len(self._hood)
        assert self._layout is not None
        meta = {
            key: np.asarray(values, dtype=dtype).reshape(n, *shape)
            for key, dtype, shape in META_FIELDS
            for values in [self._meta[key]]
        }
        now = max(time.time_ns(), self._last_ns + 1)
        self._last_ns = now
        header = {
            "format": FORMAT_VERSION,
            "codec": self._codec.name,
            "hood_shape": self._layout["hood_shape"],
            "cinematic_shape": self._layout["cinematic_shape"],
            "writer_id": self.writer_id,
            "seq": self._seq,
            "created_ns": now,
        }
        data = encode_chunk(
            hood_blobs=self._hood,
            cin_blobs=self._cin if self._layout["cinematic_shape"] is not None else None,
            meta=meta,
            header=header,
        )
        name = chunk_name(now, self.writer_id, self._seq, n)
        tmp = self.root / f".tmp-{self.writer_id}-{self._seq:06d}{CHUNK_SUFFIX}"
        final = self.root / name
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                if self.config.fsync:
                    os.fsync(f.fileno())
            os.replace(tmp, final)
        except OSError as exc:
            # Disk full or gone read-only: leave no temporary file holding the space, keep the
            # pending samples (a later flush may succeed) and every chunk committed before.
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            raise write_error(self.root, exc, f"commit {n} samples") from None
        if self.config.fsync:
            fsync_dir(self.root)
        # The chunk is committed; the journal is a check. No fsync: a line lost in a power cut
        # only means the chunk is not checked for being missing later (it is still read).
        with contextlib.suppress(OSError):
            append_journal(self.root, [f"+{name}"], fsync=False)
        self._seq += 1
        self.committed_samples += n
        self.committed_chunks.append(final)
        self._reset_pending()
        self._rotate(keep=name)
        return final

    def _rotate(self, *, keep: str) -> None:
        cfg = self.config
        if cfg.max_bytes is None and cfg.max_samples is None:
            return
        names = chunk_names(self.root)
        sizes: dict[str, int] = {}
        for name in names:
            try:
                sizes[name] = os.stat(self.root / name).st_size
            except FileNotFoundError:
                continue  # another writer rotated it away
        names = [n for n in names if n in sizes]
        counts = {n: chunk_count_from_name(n) or 0 for n in names}
        total_bytes = sum(sizes.values())
        total_samples = sum(counts.values())
        for name in names:  # oldest first
            over_bytes = cfg.max_bytes is not None and total_bytes > cfg.max_bytes
            over_samples = cfg.max_samples is not None and total_samples > cfg.max_samples
            if not (over_bytes or over_samples) or name == keep:
                break
            # Journal first: a kill in between leaves a present chunk, which is still read.
            with contextlib.suppress(OSError):
                append_journal(self.root, [f"-{name}"], fsync=False)
            with contextlib.suppress(FileNotFoundError):  # another writer was faster
                os.unlink(self.root / name)
            total_bytes -= sizes[name]
            total_samples -= counts[name]
            logger.debug("rotated away %s", name)

    def _remove_stale_temp_files(self) -> None:
        cutoff = time.time() - self.config.stale_temp_s
        for name in temp_names(self.root):
            path = self.root / name
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
            except OSError:  # gone meanwhile, or not ours to delete
                pass
