"""Reading a store: :class:`SampleStore` (random access, batches, iteration, verification).

Opening scans the chunk files and checks each with :mod:`.format`'s functions, reading only the
trailer and metadata (and the frame bytes of chunks not yet in the ``index.json`` cache); frames
are decoded on demand through memory maps, several threads per batch.
"""

from __future__ import annotations

import contextlib
import json
import logging
import mmap
import os
import threading
import warnings
import zlib
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gta_env.fields import check_int
from imitation.sample import SCALAR_KEYS, Batch, Sample, unstack_batch
from imitation.storage.files import (
    INDEX_FILE,
    JOURNAL_FILE,
    STORE_FILE,
    atomic_write,
    chunk_names,
    open_regular,
    read_journal,
    read_layout,
    temp_names,
)
from imitation.storage.format import (
    CHUNK_NAME,
    FORMAT_VERSION,
    HEAD_MAGIC,
    META_FIELDS,
    TRAILER,
    ChunkFormatError,
    Codec,
    CorruptChunkError,
    CorruptChunkWarning,
    check_payload,
    chunk_count_from_name,
    chunk_name,
    decode_footer,
    layout_of,
    parse_trailer,
)
from imitation.storage.report import ChunkProblem, StoreReport

__all__ = ["ChunkInfo", "SampleStore", "chunk_layout", "read_chunk_info", "store_layout"]

logger = logging.getLogger(__name__)


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


def read_chunk_info(path: Path, *, verify_payload: bool) -> ChunkInfo:
    """Read and check a chunk file's trailer, header and metadata (and payload CRC if asked).

    Raises:
        ChunkFormatError: With a short reason when the chunk is truncated or corrupt.
        FileNotFoundError: If the chunk disappeared (rotated away) meanwhile.
    """
    m = CHUNK_NAME.match(path.name)
    if m is None:
        raise ChunkFormatError("file name does not follow <time>-<writer>-<seq>-n<count>.g5c")
    with os.fdopen(open_regular(path), "rb") as f:
        size = os.fstat(f.fileno()).st_size
        head = f.read(len(HEAD_MAGIC))
        f.seek(max(0, size - TRAILER.size))
        trailer = parse_trailer(head, f.read(TRAILER.size), size)
        start, stop = trailer.footer_span
        f.seek(start)
        footer = decode_footer(f.read(stop - start), trailer, expected_n=int(m.group(4)))
        if verify_payload:
            start, stop = trailer.payload_span
            f.seek(start)
            check_payload(f.read(stop - start), footer)
    own = _own_name(footer.header)
    if own is not None and own != path.name:
        raise ChunkFormatError(
            f"its header names it {own}: a renamed or copied chunk (skipped so that its "
            "samples are not counted twice)"
        )
    header = footer.header
    return ChunkInfo(
        path=path,
        n=footer.n,
        size=size,
        codec=str(header["codec"]),
        hood_shape=tuple(header["hood_shape"]),
        cinematic_shape=tuple(header["cinematic_shape"]) if footer.has_cinematic else None,
        writer_id=str(header.get("writer_id", m.group(2))),
        arrays=footer.arrays,
    )


def _own_name(header: dict[str, Any]) -> str | None:
    """The file name a chunk's header gives it, or None for headers without the fields."""
    try:
        return chunk_name(
            int(header["created_ns"]), str(header["writer_id"]), int(header["seq"]), header["n"]
        )
    except (KeyError, TypeError, ValueError):
        return None


def chunk_layout(info: ChunkInfo) -> dict[str, Any]:
    """The ``store.json`` layout a chunk describes."""
    return layout_of(info.hood_shape, info.cinematic_shape)


def store_layout(root: Path) -> dict[str, Any] | None:
    """The frame layout of the store at ``root``: the oldest valid chunk's, else ``store.json``'s.

    Chunks describe themselves, so a ``store.json`` that disagrees with them (edited, damaged,
    a key missing) never turns good chunks into "corrupt" ones; it is only consulted for a
    store without a readable chunk.
    """
    for name in chunk_names(root):
        try:
            return chunk_layout(read_chunk_info(root / name, verify_payload=False))
        except (ChunkFormatError, OSError):
            continue
    return read_layout(root)


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
        check_int("decode_threads", decode_threads, minimum=1)
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
        self._scan(verify_all=False)

    def _scan(self, *, verify_all: bool) -> None:
        self._close_maps()
        cache = {} if verify_all else self._read_index()
        chunks: list[ChunkInfo] = []
        problems: list[ChunkProblem] = []
        verified: dict[str, list[int]] = {}
        names = chunk_names(self.root)
        for name in names:
            path = self.root / name
            try:
                st = path.stat()
                key = [st.st_size, st.st_mtime_ns]
                info = read_chunk_info(path, verify_payload=cache.get(name) != key)
            except FileNotFoundError:
                continue  # rotated away while scanning
            except ChunkFormatError as exc:
                problems.append(ChunkProblem(name, str(exc)))
                continue
            except OSError as exc:
                problems.append(ChunkProblem(name, f"unreadable ({exc.strerror or exc})"))
                continue
            verified[name] = key
            chunks.append(info)
        layout, notes = self._resolve_layout(chunks)
        keep: list[ChunkInfo] = []
        for info in chunks:
            if layout is not None and chunk_layout(info) != layout:
                problems.append(
                    ChunkProblem(
                        info.name,
                        f"frame layout hood {info.hood_shape} cinematic {info.cinematic_shape} "
                        f"differs from the store's (its oldest chunk's) "
                        f"{tuple(layout['hood_shape'])} / {layout['cinematic_shape']}",
                    )
                )
                verified.pop(info.name, None)
                continue
            keep.append(info)
        journal = read_journal(self.root)
        present = set(names)
        missing = tuple(
            ChunkProblem(
                name,
                f"missing: {JOURNAL_FILE} lists it but the file is gone (deleted by hand?); "
                f"its {chunk_count_from_name(name) or 0} samples are lost",
            )
            for name, live in sorted((journal or {}).items())
            if live and name not in present
        )
        for p in (*problems, *missing):
            warnings.warn(
                f"skipping chunk {p.name} in {self.root}: {p.reason}",
                CorruptChunkWarning,
                stacklevel=4,
            )
        for note in notes:
            warnings.warn(f"{self.root}: {note}", CorruptChunkWarning, stacklevel=4)
        if self._update_index and verified != cache:
            self._write_index(verified)
        self._layout = layout
        self._chunks = tuple(keep)
        self._problems = tuple(problems)
        self._missing = missing
        # What was repaired stays reported for this store object's life (verify rescans).
        self._notes = tuple(dict.fromkeys((*getattr(self, "_notes", ()), *notes)))
        self._build_columns()

    def _resolve_layout(
        self, chunks: Sequence[ChunkInfo]
    ) -> tuple[dict[str, Any] | None, tuple[str, ...]]:
        """The store's layout (the oldest valid chunk's) and what was wrong with store.json."""
        saved = read_layout(self.root)
        if not chunks:
            return saved, ()
        layout = chunk_layout(chunks[0])
        if saved is not None and saved == layout:
            return layout, ()
        if saved is None:
            what = f"{STORE_FILE} is missing or malformed"
        else:
            what = (
                f"{STORE_FILE} says hood {saved['hood_shape']} cinematic "
                f"{saved['cinematic_shape']} but the chunks hold hood {layout['hood_shape']} "
                f"cinematic {layout['cinematic_shape']}"
            )
        if not self._update_index:
            return layout, (f"{what}; the chunks' own layout is used",)
        try:
            atomic_write(
                self.root / STORE_FILE, json.dumps(layout, sort_keys=True).encode(), fsync=True
            )
        except OSError:
            return layout, (f"{what}; the chunks' own layout is used (could not rewrite it)",)
        return layout, (f"{what}; rebuilt it from the chunks",)

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
            atomic_write(self.root / INDEX_FILE, payload.encode(), fsync=False)
        except OSError as exc:  # a cache: a read-only copy must still open
            logger.debug("could not update %s: %s", self.root / INDEX_FILE, exc)

    def _build_columns(self) -> None:
        counts = np.array([c.n for c in self._chunks], dtype=np.int64)
        self._starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self._n = int(self._starts[-1])
        cols: dict[str, np.ndarray] = {}
        for key, dtype, shape in META_FIELDS:
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
            missing=self._missing,
            notes=self._notes,
            temp_files=tuple(temp_names(self.root)),
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
        self._scan(verify_all=True)  # payload CRC checks on every chunk; works read-only
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
                    f"skipping chunk {p.name} in {self.root}: {p.reason}",
                    CorruptChunkWarning,
                    stacklevel=2,
                )
        return self.report()

    # -- reading ---------------------------------------------------------------------------

    def _codec(self, name: str) -> Codec:
        # Decompressor objects are not thread-safe: one set per thread.
        codecs: dict[str, Codec] | None = getattr(self._local, "codecs", None)
        if codecs is None:
            codecs = self._local.codecs = {}
        codec = codecs.get(name)
        if codec is None:
            codec = codecs[name] = Codec(name)
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
