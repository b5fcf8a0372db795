"""Crash-safe, chunked on-disk storage of demonstration samples (the original's rotating Storage).

The package has one module per job: :mod:`.format` (the chunk file format as pure functions on
bytes), :mod:`.files` (directory names, atomic writes), :mod:`.writer` (:class:`SampleWriter`,
:class:`StorageConfig`), :mod:`.reader` (:class:`SampleStore`) and :mod:`.report`
(:class:`StoreReport`). Import the public names from here.

A store is a directory of immutable *chunk files* (``*.g5c``), each holding up to
``StorageConfig.chunk_samples`` samples, plus two small JSON files:

- ``store.json``: the frame layout every chunk must share (hood and cinematic shapes). Created
  atomically by the first writer. Chunks describe themselves, so the oldest valid chunk's layout
  wins: a ``store.json`` that is missing, malformed or disagrees with the chunks is rebuilt from
  them (and named in the report), never turning good chunks into "corrupt" ones.
- ``chunks.log``: the journal of committed and rotated chunks, so a chunk deleted by anything
  else is reported *missing* (with its sample count) instead of lost silently.
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
- **Damage**: a chunk whose header names it differently (a copy under a second valid name) is
  skipped, not counted twice; a header key missing or of the wrong type skips that chunk only;
  every decompression is bounded by the expected frame size (a crafted "bomb" is rejected
  before it allocates); only regular files are opened (a FIFO never blocks); reading works on a
  read-only store, and a writer says "read-only" or "disk full" (removing its temporary file,
  keeping every committed chunk) instead of a traceback.
- **Several writers** may share a directory (parallel collectors): a chunk's name is
  ``<commit time ns>-<writer id>-<sequence>-n<count>.g5c``, unique per writer, and sorting names
  orders chunks by commit time, which defines the global sample index. Rerunning a writer on a
  directory appends.
- **Rotation**: with ``max_bytes`` or ``max_samples`` set, a writer deletes the oldest chunks after
  each commit until the store fits (the chunk just written is always kept). Global indices shift
  when old chunks go; call :meth:`SampleStore.refresh` to see new and removed chunks.
"""

from __future__ import annotations

from imitation.storage.files import StoreWriteError
from imitation.storage.format import CorruptChunkError, CorruptChunkWarning
from imitation.storage.reader import ChunkInfo, SampleStore
from imitation.storage.report import ChunkProblem, StoreReport
from imitation.storage.writer import SampleWriter, StorageConfig

__all__ = [
    "ChunkInfo",
    "ChunkProblem",
    "CorruptChunkError",
    "CorruptChunkWarning",
    "SampleStore",
    "SampleWriter",
    "StorageConfig",
    "StoreWriteError",
    "StoreReport",
]
