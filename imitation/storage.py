"""Crash-safe, chunked on-disk storage of demonstration samples (the original's rotating Storage).

A store is a directory of immutable *chunk files* (``*.g5c``), each holding up to
``StorageConfig.chunk_samples`` samples, plus two small JSON files:

- ``store.json``: the frame layout every chunk must share (hood and cinematic shapes). Created
  atomically by the first writer; rebuilt from the first valid chunk if it is missing.
- ``index.json``: a *cache* of chunks whose payload checksum was already verified (name, size,
  modification time). Chunk files are the truth: a chunk missing from the cache, or whose size or
  time changed, is verified again on open; a stale or missing cache only costs time.

Format, and why
---------------
Each chunk stores every frame compressed *on its own* (zstd level 1 by default), followed by the
small per-sample fields as raw little-endian arrays, a JSON header, and a fixed 32-byte trailer
with checksums::

    b"G5DCHNK1" | frame blobs ... | offsets, CRCs, action, speed, ... | JSON header | trailer

- **Per-frame compression** makes random access cheap: reading sample *i* decompresses one
  ~1-3 KB blob, not a whole chunk, so random batches (what a trainer draws) cost the same as
  sequential reads and no decoded-chunk cache is needed. Compressing whole chunks (``.npz``)
  compresses a little better but would decode ~256 frames to read one.
- **zstd** over zlib/lz4: measured on rendered 90x160 frames, zstd-1 makes ~33x smaller frames at
  ~19,000 frames/s compression and ~25,000 frames/s decompression into the batch; zlib-1 is ~2x
  slower both ways and larger, lz4 is faster to compress but ~2x larger. Rendered frames (flat
  shading, sky gradients) compress very well: about 1.4 KB per 90x160 sample in total (see
  ``benchmarks/storage_speed.py``). ``codec="zlib"`` (standard library) and ``"none"`` exist.
- **Crash safety**: a chunk is written to a hidden temporary file, fsynced, renamed into place
  with ``os.replace`` (atomic) and the directory is fsynced. A reader only ever sees complete
  chunks, so ``kill -9`` at any moment loses at most the samples not yet committed (the chunk in
  flight). The trailer carries a CRC of the header and metadata, the header a CRC of all frame
  bytes, and each frame its own CRC: truncated or corrupted chunks are reported by file name
  (a :class:`CorruptChunkWarning` and :meth:`SampleStore.report`) and skipped; the rest reads.
- **Several writers** may share a directory (parallel collectors): a chunk's name is
  ``<commit time ns>-<writer id>-<sequence>-n<count>.g5c``, unique per writer, and sorting names
  orders chunks by commit time, which defines the global sample index. Rerunning a writer on a
  directory appends.
- **Rotation**: with ``max_bytes`` or ``max_samples`` set, a writer deletes the oldest chunks after
  each commit until the store fits (the chunk just written is always kept). Global indices shift
  when old chunks go; call :meth:`SampleStore.refresh` to see new and removed chunks.
"""

from __future__ import annotations

import contextlib
import json
import logging
import mmap
import os
import re
import secrets
import struct
import threading
import time
import warnings
import zlib
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from imitation.sample import (
    BATCH_DTYPES,
    SCALAR_KEYS,
    SCALAR_SHAPES,
    Batch,
    Sample,
    check_batch,
    unstack_batch,
)

__all__ = [
    "ChunkInfo",
    "ChunkProblem",
    "CorruptChunkError",
    "CorruptChunkWarning",
    "SampleStore",
    "SampleWriter",
    "StorageConfig",
    "StoreReport",
]

logger = logging.getLogger(__name__)

CHUNK_SUFFIX = ".g5c"
STORE_FILE = "store.json"
INDEX_FILE = "index.json"
FORMAT_VERSION = 1
_HEAD_MAGIC = b"G5DCHNK1"
_TAIL_MAGIC = b"G5DCEND1"
# meta_offset, json_offset, json_len, footer_crc32, tail magic
_TRAILER = struct.Struct("<QQII8s")
_CHUNK_NAME = re.compile(r"^(\d{20})-([A-Za-z0-9]+)-(\d{6,})-n(\d+)\.g5c$")
_WRITER_ID = re.compile(r"^[A-Za-z0-9]{1,40}$")
_CODECS = ("zstd", "zlib", "none")


class CorruptChunkWarning(UserWarning):
    """A chunk file failed its checks and is skipped; the message names the file."""


class CorruptChunkError(OSError):
    """A chunk failed a check while being read (e.g. a frame's CRC); the message names the file."""


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
        if isinstance(self.chunk_samples, bool) or not isinstance(self.chunk_samples, int):
            raise ValueError(
                f"StorageConfig.chunk_samples must be an int, got {self.chunk_samples!r}"
            )
        if self.chunk_samples < 1:
            raise ValueError(f"StorageConfig.chunk_samples must be >= 1, got {self.chunk_samples}")
        if self.codec not in _CODECS:
            raise ValueError(f"StorageConfig.codec must be one of {_CODECS}, got {self.codec!r}")
        limits = {"zstd": (1, 22), "zlib": (1, 9), "none": (0, 100)}[self.codec]
        if not limits[0] <= self.level <= limits[1]:
            raise ValueError(
                f"StorageConfig.level for codec {self.codec!r} must be in {list(limits)}, "
                f"got {self.level}"
            )
        for name in ("max_bytes", "max_samples"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                raise ValueError(f"StorageConfig.{name} must be None or an int >= 1, got {value!r}")
        if self.stale_temp_s <= 0:
            raise ValueError(f"StorageConfig.stale_temp_s must be > 0, got {self.stale_temp_s}")


# --------------------------------------------------------------------------------------- codecs


class _Codec:
    """Compress/decompress one frame; ``name`` is recorded in every chunk header."""

    def __init__(self, name: str, level: int = 1) -> None:
        self.name = name
        if name == "zstd":
            try:
                import zstandard
            except ImportError as exc:  # pragma: no cover - depends on the environment
                raise ImportError(
                    "codec 'zstd' needs the zstandard package: pip install zstandard "
                    "(or write with StorageConfig(codec='zlib'))"
                ) from exc
            self._c = zstandard.ZstdCompressor(level=level, write_content_size=True)
            self._d = zstandard.ZstdDecompressor()
        elif name == "zlib":
            self._level = level
        elif name != "none":
            raise ValueError(f"unknown codec {name!r}; known: {_CODECS}")

    def compress(self, data: bytes | memoryview) -> bytes:
        if self.name == "zstd":
            return self._c.compress(data)
        if self.name == "zlib":
            return zlib.compress(data, self._level)
        return bytes(data)

    def decompress(self, blob: bytes | memoryview, size: int) -> bytes:
        if self.name == "zstd":
            return self._d.decompress(blob, max_output_size=size)
        if self.name == "zlib":
            return zlib.decompress(blob, bufsize=size)
        return bytes(blob)


# --------------------------------------------------------------------------------- chunk format

# Per-sample metadata stored after the frames, in this order.
_META_FIELDS: tuple[tuple[str, np.dtype[Any], tuple[int, ...]], ...] = tuple(
    (key, BATCH_DTYPES[key], SCALAR_SHAPES[key]) for key in SCALAR_KEYS
)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _atomic_write(path: Path, data: bytes, *, fsync: bool) -> None:
    tmp = path.with_name(f".tmp-{os.getpid()}-{secrets.token_hex(4)}-{path.name}")
    with open(tmp, "xb") as f:
        f.write(data)
        f.flush()
        if fsync:
            os.fsync(f.fileno())
    os.replace(tmp, path)
    if fsync:
        _fsync_dir(path.parent)


def _encode_chunk(
    *,
    hood_blobs: Sequence[bytes],
    cin_blobs: Sequence[bytes] | None,
    meta: Mapping[str, np.ndarray],
    header: dict[str, Any],
) -> bytes:
    n = len(hood_blobs)
    parts: list[bytes] = [_HEAD_MAGIC]
    pos = len(_HEAD_MAGIC)
    arrays: list[tuple[str, np.ndarray]] = []
    for name, blobs in (("hood", hood_blobs), ("cinematic", cin_blobs)):
        if blobs is None:
            continue
        offsets = np.empty(n + 1, dtype="<u8")
        crcs = np.empty(n, dtype="<u4")
        for i, blob in enumerate(blobs):
            offsets[i] = pos
            crcs[i] = zlib.crc32(blob)
            pos += len(blob)
        offsets[n] = pos
        parts.extend(blobs)
        arrays += [(f"{name}_offsets", offsets), (f"{name}_crc", crcs)]
    frames_crc = 0
    for blob in parts[1:]:
        frames_crc = zlib.crc32(blob, frames_crc)
    meta_offset = pos
    fields = []
    rel = 0
    for key, dtype, shape in _META_FIELDS:
        arr = np.ascontiguousarray(meta[key], dtype=dtype.newbyteorder("<"))
        if arr.shape != (n, *shape):
            raise ValueError(f"chunk field {key!r} has shape {arr.shape}, expected {(n, *shape)}")
        arrays.append((key, arr))
    meta_parts = []
    for key, arr in arrays:
        raw = arr.tobytes()
        fields.append([key, arr.dtype.str, list(arr.shape), rel, len(raw)])
        meta_parts.append(raw)
        rel += len(raw)
    header = dict(header, n=n, frames_crc32=frames_crc, fields=fields)
    meta_bytes = b"".join(meta_parts)
    json_bytes = json.dumps(header, sort_keys=True).encode()
    footer_crc = zlib.crc32(json_bytes, zlib.crc32(meta_bytes))
    json_offset = meta_offset + len(meta_bytes)
    trailer = _TRAILER.pack(meta_offset, json_offset, len(json_bytes), footer_crc, _TAIL_MAGIC)
    return b"".join([*parts, meta_bytes, json_bytes, trailer])


@dataclass(frozen=True, eq=False)
class ChunkInfo:
    """What the reader knows about one valid chunk (its metadata is held in memory)."""

    path: Path
    n: int
    size: int
    codec: str
    hood_shape: tuple[int, int, int]
    cinematic_shape: tuple[int, int, int] | None
    writer_id: str
    arrays: dict[str, np.ndarray] = field(repr=False)

    @property
    def name(self) -> str:
        """The chunk's file name."""
        return self.path.name


class _ChunkError(Exception):
    pass


def _read_chunk_info(path: Path, *, verify_payload: bool) -> ChunkInfo:
    """Parse and check a chunk's trailer, header and metadata (and payload CRC if asked).

    Raises:
        _ChunkError: With a short reason when the chunk is truncated or corrupt.
        FileNotFoundError: If the chunk disappeared (rotated away) meanwhile.
    """
    m = _CHUNK_NAME.match(path.name)
    if m is None:
        raise _ChunkError("file name does not follow <time>-<writer>-<seq>-n<count>.g5c")
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size < len(_HEAD_MAGIC) + _TRAILER.size:
            raise _ChunkError(f"truncated: {size} bytes is shorter than an empty chunk")
        if f.read(len(_HEAD_MAGIC)) != _HEAD_MAGIC:
            raise _ChunkError("bad magic at the start (not a chunk file or overwritten)")
        f.seek(size - _TRAILER.size)
        meta_offset, json_offset, json_len, footer_crc, tail = _TRAILER.unpack(
            f.read(_TRAILER.size)
        )
        if tail != _TAIL_MAGIC:
            raise _ChunkError("no valid trailer (truncated or corrupt end)")
        if not (
            len(_HEAD_MAGIC) <= meta_offset <= json_offset
            and json_offset + json_len + _TRAILER.size == size
        ):
            raise _ChunkError("trailer offsets do not match the file size (truncated or corrupt)")
        f.seek(meta_offset)
        footer = f.read(json_offset + json_len - meta_offset)
        if zlib.crc32(footer) != footer_crc:
            raise _ChunkError("metadata checksum mismatch (corrupt metadata)")
        try:
            header = json.loads(footer[json_offset - meta_offset :])
        except ValueError as exc:
            raise _ChunkError(f"unreadable JSON header ({exc})") from None
        if header.get("format") != FORMAT_VERSION:
            raise _ChunkError(f"unsupported chunk format {header.get('format')!r}")
        n = int(header["n"])
        if n != int(m.group(4)):
            raise _ChunkError(f"header says {n} samples, file name says {m.group(4)}")
        arrays: dict[str, np.ndarray] = {}
        for key, dtype, shape, rel, nbytes in header["fields"]:
            arr = np.frombuffer(
                footer, dtype=np.dtype(dtype), count=int(np.prod(shape)), offset=rel
            )
            if arr.nbytes != nbytes:
                raise _ChunkError(f"field {key!r} has the wrong size")
            arrays[key] = arr.reshape(shape)
        for key, dtype, shape in _META_FIELDS:
            got = arrays.get(key)
            if got is None or got.shape != (n, *shape):
                raise _ChunkError(f"field {key!r} missing or of the wrong shape")
            arrays[key] = got.astype(dtype)  # native byte order, owns its memory
        has_cin = header.get("cinematic_shape") is not None
        for frame in ("hood", "cinematic") if has_cin else ("hood",):
            offsets = arrays.get(f"{frame}_offsets")
            if offsets is None or offsets.shape != (n + 1,) or arrays.get(f"{frame}_crc") is None:
                raise _ChunkError(f"{frame} frame table missing")
            if n and (
                offsets[0] < len(_HEAD_MAGIC)
                or offsets[-1] > meta_offset
                or np.any(np.diff(offsets.astype(np.int64)) < 0)
            ):
                raise _ChunkError(f"{frame} frame offsets out of range")
        if verify_payload:
            f.seek(len(_HEAD_MAGIC))
            payload = f.read(meta_offset - len(_HEAD_MAGIC))
            if zlib.crc32(payload) != int(header["frames_crc32"]):
                raise _ChunkError("frame data checksum mismatch (corrupt frames)")
    return ChunkInfo(
        path=path,
        n=n,
        size=size,
        codec=str(header["codec"]),
        hood_shape=tuple(header["hood_shape"]),
        cinematic_shape=tuple(header["cinematic_shape"]) if has_cin else None,
        writer_id=str(header.get("writer_id", m.group(2))),
        arrays=arrays,
    )


def _chunk_names(root: Path) -> list[str]:
    try:
        names = os.listdir(root)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if n.endswith(CHUNK_SUFFIX) and not n.startswith("."))


def _temp_names(root: Path) -> list[str]:
    try:
        return sorted(n for n in os.listdir(root) if n.startswith(".tmp-"))
    except FileNotFoundError:
        return []


def _layout_of(sample_hood: tuple[int, ...], cin: tuple[int, ...] | None) -> dict[str, Any]:
    return {
        "format": FORMAT_VERSION,
        "hood_shape": list(sample_hood),
        "cinematic_shape": None if cin is None else list(cin),
    }


def _read_layout(root: Path) -> dict[str, Any] | None:
    try:
        layout = json.loads((root / STORE_FILE).read_text())
    except (FileNotFoundError, ValueError):
        return None
    if not isinstance(layout, dict) or "hood_shape" not in layout:
        return None
    return layout


# -------------------------------------------------------------------------------------- writer


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
        self.root.mkdir(parents=True, exist_ok=True)
        self._codec = _Codec(self.config.codec, self.config.level)
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
        want = _layout_of(hood, cin)
        if self._layout is None:
            existing = _read_layout(self.root)
            if existing is None:
                existing = self._create_layout(want)
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
        tmp = self.root / f".tmp-{self.writer_id}-store.json"
        tmp.write_bytes(json.dumps(layout, sort_keys=True).encode())
        if self.config.fsync:
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
        try:
            os.link(tmp, path)  # fails if another writer created it first: first one wins
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
        if self.config.fsync:
            _fsync_dir(self.root)
        return _read_layout(self.root) or layout

    def _commit(self) -> Path:
        n = len(self._hood)
        assert self._layout is not None
        meta = {
            key: np.asarray(values, dtype=dtype).reshape(n, *shape)
            for key, dtype, shape in _META_FIELDS
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
        data = _encode_chunk(
            hood_blobs=self._hood,
            cin_blobs=self._cin if self._layout["cinematic_shape"] is not None else None,
            meta=meta,
            header=header,
        )
        name = f"{now:020d}-{self.writer_id}-{self._seq:06d}-n{n}{CHUNK_SUFFIX}"
        tmp = self.root / f".tmp-{self.writer_id}-{self._seq:06d}{CHUNK_SUFFIX}"
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            if self.config.fsync:
                os.fsync(f.fileno())
        final = self.root / name
        os.replace(tmp, final)
        if self.config.fsync:
            _fsync_dir(self.root)
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
        names = _chunk_names(self.root)
        sizes: dict[str, int] = {}
        for name in names:
            try:
                sizes[name] = os.stat(self.root / name).st_size
            except FileNotFoundError:
                continue  # another writer rotated it away
        names = [n for n in names if n in sizes]
        counts = {n: int(m.group(4)) if (m := _CHUNK_NAME.match(n)) else 0 for n in names}
        total_bytes = sum(sizes.values())
        total_samples = sum(counts.values())
        for name in names:  # oldest first
            over_bytes = cfg.max_bytes is not None and total_bytes > cfg.max_bytes
            over_samples = cfg.max_samples is not None and total_samples > cfg.max_samples
            if not (over_bytes or over_samples) or name == keep:
                break
            with contextlib.suppress(FileNotFoundError):  # another writer was faster
                os.unlink(self.root / name)
            total_bytes -= sizes[name]
            total_samples -= counts[name]
            logger.debug("rotated away %s", name)

    def _remove_stale_temp_files(self) -> None:
        cutoff = time.time() - self.config.stale_temp_s
        for name in _temp_names(self.root):
            path = self.root / name
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
            except FileNotFoundError:
                pass


# ------------------------------------------------------------------------------------- reader


@dataclass(frozen=True)
class ChunkProblem:
    """A chunk that was skipped, and why."""

    name: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class StoreReport:
    """What :meth:`SampleStore.report` and :meth:`SampleStore.verify` found.

    Attributes:
        root: The store directory.
        chunks: Valid chunks.
        samples: Samples in valid chunks.
        chunk_bytes: Total size of valid chunk files.
        corrupt: Skipped chunk files, each with the reason.
        temp_files: Temporary files (chunks in flight, or left by killed writers).
        hood_shape: Hood frame shape, or None for an empty store.
        cinematic_shape: Cinematic frame shape, or None if not recorded.
        episodes: Distinct episode ids.
        towns: Distinct town ids.
    """

    root: Path
    chunks: int
    samples: int
    chunk_bytes: int
    corrupt: tuple[ChunkProblem, ...]
    temp_files: tuple[str, ...]
    hood_shape: tuple[int, ...] | None
    cinematic_shape: tuple[int, ...] | None
    episodes: int
    towns: int

    @property
    def bytes_per_sample(self) -> float:
        """Average bytes on disk per sample (0 for an empty store)."""
        return self.chunk_bytes / self.samples if self.samples else 0.0

    @property
    def ok(self) -> bool:
        """True when no chunk was skipped."""
        return not self.corrupt

    def __str__(self) -> str:
        lines = [
            f"store {self.root}: {self.samples} samples in {self.chunks} chunks, "
            f"{self.chunk_bytes / 2**20:.1f} MiB ({self.bytes_per_sample:.0f} bytes/sample)",
            f"  hood {self.hood_shape}, cinematic {self.cinematic_shape}, "
            f"{self.episodes} episodes, {self.towns} towns",
        ]
        if self.temp_files:
            lines.append(
                f"  {len(self.temp_files)} temporary file(s) (in flight or left by a crash)"
            )
        if self.corrupt:
            lines.append(f"  {len(self.corrupt)} corrupt chunk(s) skipped:")
            lines += [f"    {p.name}: {p.reason}" for p in self.corrupt]
        else:
            lines.append("  no corrupt chunks")
        return "\n".join(lines)


class SampleStore:
    """Reads a store directory: random access by global sample index, batches, iteration.

    Opening scans the chunk files, checks each one's trailer and metadata CRC, verifies the
    frame-data CRC of chunks not yet in ``index.json`` (then caches them there), and skips every
    chunk that fails, warning with a :class:`CorruptChunkWarning` that names the file. The global
    index orders samples by chunk commit time. All per-sample metadata (actions, speed, ...) is
    held in memory (~80 bytes/sample); frames are read on demand through memory maps.

    Args:
        root: The store directory.
        decode_threads: Threads that decompress frames of one batch (zstd releases the GIL);
            1 decodes in the calling thread. Use 1 inside data-loader worker processes.
        update_index: Write ``index.json`` after verifying new chunks (a cache; failures to
            write it are ignored, e.g. on a read-only copy).

    Raises:
        FileNotFoundError: If ``root`` does not exist.
    """

    def __init__(
        self, root: str | os.PathLike[str], *, decode_threads: int = 1, update_index: bool = True
    ) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(
                f"no demonstration store at {self.root}: the directory does not exist "
                "(record one with SampleWriter or `gta5drive collect`)"
            )
        if (
            isinstance(decode_threads, bool)
            or not isinstance(decode_threads, int)
            or decode_threads < 1
        ):
            raise ValueError(f"decode_threads must be an int >= 1, got {decode_threads!r}")
        self._decode_threads = decode_threads
        self._pool: ThreadPoolExecutor | None = None
        self._update_index = update_index
        # One read-only map per chunk, made on first use; the file is closed right away, so open
        # file limits do not apply, and a chunk rotated away meanwhile stays readable.
        self._maps: dict[int, mmap.mmap] = {}
        self._map_lock = threading.Lock()
        self._local = threading.local()
        self.refresh()

    # -- scanning --------------------------------------------------------------------------

    def refresh(self) -> None:
        """Rescan the directory: pick up new chunks, drop rotated ones, re-check changed ones."""
        self._close_maps()
        cache = self._read_index()
        layout = _read_layout(self.root)
        chunks: list[ChunkInfo] = []
        problems: list[ChunkProblem] = []
        verified: dict[str, list[int]] = {}
        for name in _chunk_names(self.root):
            path = self.root / name
            try:
                st = path.stat()
                key = [st.st_size, st.st_mtime_ns]
                info = _read_chunk_info(path, verify_payload=cache.get(name) != key)
            except FileNotFoundError:
                continue  # rotated away while scanning
            except _ChunkError as exc:
                problems.append(ChunkProblem(name, str(exc)))
                continue
            except OSError as exc:
                problems.append(ChunkProblem(name, f"unreadable ({exc})"))
                continue
            if layout is None:
                layout = _layout_of(info.hood_shape, info.cinematic_shape)
            want_cin = layout["cinematic_shape"]
            if (
                list(info.hood_shape) != layout["hood_shape"]
                or (None if info.cinematic_shape is None else list(info.cinematic_shape))
                != want_cin
            ):
                problems.append(
                    ChunkProblem(
                        name,
                        f"frame layout hood {info.hood_shape} cinematic {info.cinematic_shape} "
                        f"differs from the store's {tuple(layout['hood_shape'])} / {want_cin}",
                    )
                )
                continue
            verified[name] = key
            chunks.append(info)
        for p in problems:
            warnings.warn(
                f"skipping corrupt chunk {p.name} in {self.root}: {p.reason}",
                CorruptChunkWarning,
                stacklevel=3,
            )
        if self._update_index and verified != cache:
            self._write_index(verified)
        self._layout = layout
        self._chunks = tuple(chunks)
        self._problems = tuple(problems)
        self._build_columns()

    def _read_index(self) -> dict[str, list[int]]:
        try:
            data = json.loads((self.root / INDEX_FILE).read_text())
            if data.get("format") == FORMAT_VERSION and isinstance(data.get("chunks"), dict):
                return {str(k): list(v) for k, v in data["chunks"].items()}
        except (FileNotFoundError, ValueError, AttributeError, TypeError):
            pass
        return {}

    def _write_index(self, verified: dict[str, list[int]]) -> None:
        payload = json.dumps({"format": FORMAT_VERSION, "chunks": verified}, sort_keys=True)
        try:
            _atomic_write(self.root / INDEX_FILE, payload.encode(), fsync=False)
        except OSError as exc:  # a cache: a read-only copy must still open
            logger.debug("could not update %s: %s", self.root / INDEX_FILE, exc)

    def _build_columns(self) -> None:
        counts = np.array([c.n for c in self._chunks], dtype=np.int64)
        self._starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self._n = int(self._starts[-1])
        cols: dict[str, np.ndarray] = {}
        for key, dtype, shape in _META_FIELDS:
            if self._chunks:
                arr = np.concatenate([c.arrays[key] for c in self._chunks])
            else:
                arr = np.empty((0, *shape), dtype=dtype)
            arr.flags.writeable = False
            cols[key] = arr
        self._columns = cols
        frames = ("hood", "cinematic") if self.cinematic_shape is not None else ("hood",)
        self._frame_tables: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        for frame in frames:
            if self._chunks:
                start = np.concatenate([c.arrays[f"{frame}_offsets"][:-1] for c in self._chunks])
                end = np.concatenate([c.arrays[f"{frame}_offsets"][1:] for c in self._chunks])
                crc = np.concatenate([c.arrays[f"{frame}_crc"] for c in self._chunks])
            else:
                start = end = np.empty(0, np.int64)
                crc = np.empty(0, np.uint32)
            self._frame_tables[frame] = (
                start.astype(np.int64),
                end.astype(np.int64),
                crc.astype(np.int64),
            )
        self._chunk_of = np.repeat(np.arange(len(self._chunks), dtype=np.int64), counts)

    # -- properties ------------------------------------------------------------------------

    def __len__(self) -> int:
        return self._n

    @property
    def chunks(self) -> tuple[ChunkInfo, ...]:
        """The valid chunks, oldest first."""
        return self._chunks

    @property
    def hood_shape(self) -> tuple[int, int, int] | None:
        """Hood frame shape (H, W, 3), or None for an empty store."""
        return None if self._layout is None else tuple(self._layout["hood_shape"])

    @property
    def cinematic_shape(self) -> tuple[int, int, int] | None:
        """Cinematic frame shape, or None when the store has none."""
        if self._layout is None or self._layout["cinematic_shape"] is None:
            return None
        return tuple(self._layout["cinematic_shape"])

    @property
    def nbytes(self) -> int:
        """Total size of the valid chunk files."""
        return sum(c.size for c in self._chunks)

    def column(self, key: str) -> np.ndarray:
        """A read-only metadata column for all samples (e.g. ``"action"``: float32 (N, 2)).

        Args:
            key: Any batch key except the frames: one of ``SCALAR_KEYS``.
        """
        if key not in self._columns:
            raise KeyError(f"no column {key!r}; metadata columns are {list(self._columns)}")
        return self._columns[key]

    def report(self) -> StoreReport:
        """Counts, sizes, and the chunk files that were skipped (by name, with the reason)."""
        return StoreReport(
            root=self.root,
            chunks=len(self._chunks),
            samples=self._n,
            chunk_bytes=self.nbytes,
            corrupt=self._problems,
            temp_files=tuple(_temp_names(self.root)),
            hood_shape=self.hood_shape,
            cinematic_shape=self.cinematic_shape,
            episodes=int(np.unique(self._columns["episode_id"]).size),
            towns=int(np.unique(self._columns["town_id"]).size),
        )

    def verify(self) -> StoreReport:
        """Full integrity check: re-check every chunk and decode every frame.

        Chunks that fail are added to the report and skipped from now on (the store is
        rescanned, so global indices may change).
        """
        cache_path = self.root / INDEX_FILE
        cache_path.unlink(missing_ok=True)  # force payload CRC checks on every chunk
        self.refresh()
        bad: list[ChunkProblem] = []
        for ci, chunk in enumerate(self._chunks):
            lo, hi = int(self._starts[ci]), int(self._starts[ci + 1])
            try:
                for s in range(lo, hi, 256):
                    self.read_batch(np.arange(s, min(hi, s + 256)))
            except (CorruptChunkError, ValueError) as exc:
                bad.append(ChunkProblem(chunk.name, f"frame decoding failed ({exc})"))
        if bad:
            keep = [c for c in self._chunks if c.name not in {b.name for b in bad}]
            self._close_maps()
            self._chunks = tuple(keep)
            self._problems = self._problems + tuple(bad)
            self._build_columns()
            for p in bad:
                warnings.warn(
                    f"skipping corrupt chunk {p.name} in {self.root}: {p.reason}",
                    CorruptChunkWarning,
                    stacklevel=2,
                )
        return self.report()

    # -- reading ---------------------------------------------------------------------------

    def _codec(self, name: str) -> _Codec:
        # Decompressor objects are not thread-safe: one set per thread.
        codecs: dict[str, _Codec] | None = getattr(self._local, "codecs", None)
        if codecs is None:
            codecs = self._local.codecs = {}
        codec = codecs.get(name)
        if codec is None:
            codec = codecs[name] = _Codec(name)
        return codec

    def _map(self, ci: int) -> mmap.mmap:
        mm = self._maps.get(ci)
        if mm is not None:
            return mm
        chunk = self._chunks[ci]
        with self._map_lock:
            mm = self._maps.get(ci)
            if mm is None:
                try:
                    with open(chunk.path, "rb") as f:
                        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
                except FileNotFoundError:
                    raise FileNotFoundError(
                        f"chunk {chunk.name} was removed from {self.root} since the store was "
                        "opened (rotated away by a writer's size cap?); call refresh() to rescan"
                    ) from None
                self._maps[ci] = mm
        return mm

    def _close_maps(self) -> None:
        maps = getattr(self, "_maps", None)
        while maps:
            _, mm = maps.popitem()
            with contextlib.suppress(BufferError):  # a batch being decoded still holds a view
                mm.close()

    def _indices(self, indices: Any) -> np.ndarray:
        idx = np.asarray(indices)
        if idx.ndim != 1:
            raise ValueError(f"indices must be one-dimensional, got shape {idx.shape}")
        if idx.size and not np.issubdtype(idx.dtype, np.integer):
            raise ValueError(f"indices must be integers, got dtype {idx.dtype}")
        idx = idx.astype(np.int64, copy=False)
        if idx.size and (idx.min() < 0 or idx.max() >= self._n):
            raise IndexError(
                f"sample indices must lie in [0, {self._n}), got min {idx.min()} max {idx.max()}"
            )
        return idx

    def _read_frames(self, frame: str, idx: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        n = idx.size
        out = np.empty((n, *shape), dtype=np.uint8)
        starts, ends, crcs = self._frame_tables[frame]
        chunk_ids = self._chunk_of[idx]
        for ci in np.unique(chunk_ids).tolist():
            self._map(ci)
        jobs = list(
            zip(
                range(n),
                chunk_ids.tolist(),
                starts[idx].tolist(),
                ends[idx].tolist(),
                crcs[idx].tolist(),
                strict=True,
            )
        )
        flat = out.reshape(n, -1)
        threads = min(self._decode_threads, n // 32)
        if threads <= 1:
            self._decode(frame, flat, jobs, idx)
        else:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self._decode_threads, thread_name_prefix="decode")
            step = -(-n // threads)
            futures = [
                self._pool.submit(self._decode, frame, flat, jobs[s : s + step], idx)
                for s in range(0, n, step)
            ]
            for fut in futures:
                fut.result()
        return out

    def _decode(
        self,
        frame: str,
        flat: np.ndarray,
        jobs: Sequence[tuple[int, int, int, int, int]],
        idx: np.ndarray,
    ) -> None:
        size = flat.shape[1]
        crc32 = zlib.crc32
        views: dict[int, memoryview] = {}
        try:
            for pos, ci, a, b, c in jobs:
                view = views.get(ci)
                if view is None:
                    view = views[ci] = memoryview(self._maps[ci])
                blob = view[a:b]
                try:
                    if crc32(blob) != c:
                        raise self._corrupt(ci, f"{frame} frame {int(idx[pos])} fails its CRC")
                    try:
                        raw = self._codec(self._chunks[ci].codec).decompress(blob, size)
                    except Exception as exc:
                        raise self._corrupt(
                            ci, f"{frame} frame {int(idx[pos])} does not decode ({exc})"
                        ) from None
                    if len(raw) != size:
                        raise self._corrupt(
                            ci,
                            f"{frame} frame {int(idx[pos])} has {len(raw)} bytes, expected {size}",
                        )
                    flat[pos] = np.frombuffer(raw, dtype=np.uint8)
                finally:
                    blob.release()
        finally:
            for view in views.values():
                view.release()

    def _corrupt(self, ci: int, reason: str) -> CorruptChunkError:
        name = self._chunks[ci].name
        problem = ChunkProblem(name, reason)
        if problem not in self._problems:
            self._problems = (*self._problems, problem)
        return CorruptChunkError(
            f"chunk {name} in {self.root} is corrupt: {reason}; run SampleStore.verify() "
            "(or `gta5drive dataset-info`) to list and skip corrupt chunks"
        )

    def read_batch(self, indices: Sequence[int] | np.ndarray) -> Batch:
        """Read samples by global index into a batch dict (see :mod:`imitation.sample`).

        Args:
            indices: Global sample indices in [0, len(store)), any order, repeats allowed.

        Returns:
            The batch, in the order of ``indices``.

        Raises:
            IndexError: If an index is out of range.
            CorruptChunkError: If a frame fails its CRC (the message names the chunk file).
        """
        idx = self._indices(indices)
        hood_shape = self.hood_shape or (0, 0, 3)
        batch: Batch = {"hood": self._read_frames("hood", idx, hood_shape)}
        cin_shape = self.cinematic_shape
        if cin_shape is not None:
            batch["cinematic"] = self._read_frames("cinematic", idx, cin_shape)
        for key in SCALAR_KEYS:
            batch[key] = self._columns[key][idx]
        return batch

    def __getitem__(self, index: int) -> Sample:
        """The sample at a global index (negative indices count from the end)."""
        if isinstance(index, bool) or not isinstance(index, int | np.integer):
            raise TypeError(f"index must be an int, got {type(index).__name__}; use read_batch")
        i = int(index) + self._n if index < 0 else int(index)
        return unstack_batch(self.read_batch([i]))[0]

    def iter_batches(
        self,
        batch_size: int = 256,
        *,
        shuffle: bool = False,
        rng: np.random.Generator | None = None,
    ) -> Iterator[Batch]:
        """Yield batches covering every sample once.

        Args:
            batch_size: Samples per batch (the last one may be shorter).
            shuffle: Visit samples in a random order (needs ``rng``).
            rng: The generator used when shuffling.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if shuffle and rng is None:
            raise ValueError("iter_batches(shuffle=True) needs rng=np.random.Generator(...)")
        order = rng.permutation(self._n) if shuffle and rng is not None else np.arange(self._n)
        for s in range(0, self._n, batch_size):
            yield self.read_batch(order[s : s + batch_size])

    def __iter__(self) -> Iterator[Sample]:
        for batch in self.iter_batches(256):
            yield from unstack_batch(batch)

    def close(self) -> None:
        """Release memory maps and decoding threads."""
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
        self._close_maps()

    def __enter__(self) -> SampleStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        self._close_maps()

    def __repr__(self) -> str:
        return (
            f"SampleStore({str(self.root)!r}, samples={self._n}, chunks={len(self._chunks)}, "
            f"corrupt={len(self._problems)})"
        )
