"""The chunk file format as pure functions on bytes: encode, parse the trailer, decode, check.

A chunk is one immutable file::

    b"G5DCHNK1" | frame blobs ... | offsets, CRCs, action, speed, ... | JSON header | trailer

The fixed 32-byte trailer (:data:`TRAILER`) gives where the metadata and the JSON header start
and a CRC over both; the header carries a CRC over all frame bytes, and each frame its own CRC.
Nothing here touches the file system: the reader reads the few byte ranges these functions ask
for, and tests can build and break chunks in memory. Why the format looks like this is in
:mod:`imitation.storage`.
"""

from __future__ import annotations

import json
import re
import struct
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from imitation.sample import BATCH_DTYPES, OPTIONAL_DEFAULTS, SCALAR_KEYS, SCALAR_SHAPES

__all__ = [
    "CHUNK_SUFFIX",
    "CODECS",
    "FORMAT_VERSION",
    "HEAD_MAGIC",
    "META_FIELDS",
    "TRAILER",
    "ChunkFormatError",
    "Codec",
    "CorruptChunkError",
    "CorruptChunkWarning",
    "Footer",
    "Trailer",
    "chunk_count_from_name",
    "chunk_name",
    "check_header",
    "check_payload",
    "decode_chunk",
    "decode_footer",
    "encode_chunk",
    "is_shape",
    "layout_of",
    "parse_trailer",
]

CHUNK_SUFFIX = ".g5c"
FORMAT_VERSION = 1
HEAD_MAGIC = b"G5DCHNK1"
TAIL_MAGIC = b"G5DCEND1"
# meta_offset, json_offset, json_len, footer_crc32, tail magic
TRAILER = struct.Struct("<QQII8s")
CHUNK_NAME = re.compile(r"^(\d{20})-([A-Za-z0-9]+)-(\d{6,})-n(\d+)\.g5c$")
CODECS = ("zstd", "zlib", "none")

# Per-sample metadata stored after the frames, in this order.
META_FIELDS: tuple[tuple[str, np.dtype[Any], tuple[int, ...]], ...] = tuple(
    (key, BATCH_DTYPES[key], SCALAR_SHAPES[key]) for key in SCALAR_KEYS
)


class CorruptChunkWarning(UserWarning):
    """A chunk file failed its checks and is skipped; the message names the file."""


class CorruptChunkError(OSError):
    """A chunk failed a check while being read (e.g. a frame's CRC); the message names the file."""


class ChunkFormatError(Exception):
    """Bytes that are not a valid chunk; the message is a short reason (no file name)."""


# --------------------------------------------------------------------------------------- codecs


class Codec:
    """Compress/decompress one frame; ``name`` is recorded in every chunk header.

    Args:
        name: One of :data:`CODECS`.
        level: Compression level (ignored for ``"none"`` and when only decompressing).

    Raises:
        ImportError: For ``"zstd"`` without the ``zstandard`` package (says what to install).
        ValueError: For an unknown codec name.
    """

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
            raise ValueError(f"unknown codec {name!r}; known: {CODECS}")

    def compress(self, data: bytes | memoryview) -> bytes:
        """One frame's bytes, compressed."""
        if self.name == "zstd":
            return self._c.compress(data)
        if self.name == "zlib":
            return zlib.compress(data, self._level)
        return bytes(data)

    def decompress(self, blob: bytes | memoryview, size: int) -> bytes:
        """One frame's bytes from its blob, never more than ``size`` (the expected length).

        A crafted blob (a "compression bomb": 8 KB that claims or expands to 256 MiB) is
        rejected before anything larger than ``size`` is allocated: zstd allocates what the
        frame header claims, so the claim is checked first; zlib is inflated at most
        ``size + 1`` bytes.

        Raises:
            ValueError: If the blob would decode to more than ``size`` bytes, or does not decode.
        """
        if self.name == "zstd":
            import zstandard

            claimed = zstandard.frame_content_size(blob)
            if claimed > size:
                raise ValueError(f"frame claims {claimed} bytes, more than the {size} expected")
            # Without a claim (-1), max_output_size bounds the output buffer.
            return self._d.decompress(blob, max_output_size=size)
        if self.name == "zlib":
            d = zlib.decompressobj()
            raw = d.decompress(blob, size + 1)
            if len(raw) > size or d.unconsumed_tail:
                raise ValueError(f"frame expands to more than the {size} bytes expected")
            return raw
        if len(blob) > size:
            raise ValueError(f"frame has {len(blob)} bytes, more than the {size} expected")
        return bytes(blob)


# ---------------------------------------------------------------------------------------- names


def chunk_name(created_ns: int, writer_id: str, seq: int, n: int) -> str:
    """The file name of a chunk: sorting names orders chunks by commit time."""
    return f"{created_ns:020d}-{writer_id}-{seq:06d}-n{n}{CHUNK_SUFFIX}"


def chunk_count_from_name(name: str) -> int | None:
    """The sample count a chunk's file name states, or None if the name is not a chunk's."""
    m = CHUNK_NAME.match(name)
    return None if m is None else int(m.group(4))


def layout_of(hood: tuple[int, ...], cinematic: tuple[int, ...] | None) -> dict[str, Any]:
    """The ``store.json`` frame layout for these frame shapes."""
    return {
        "format": FORMAT_VERSION,
        "hood_shape": list(hood),
        "cinematic_shape": None if cinematic is None else list(cinematic),
    }


# ------------------------------------------------------------------------------------- encoding


def encode_chunk(
    *,
    hood_blobs: Sequence[bytes],
    cin_blobs: Sequence[bytes] | None,
    meta: Mapping[str, np.ndarray],
    header: dict[str, Any],
) -> bytes:
    """A whole chunk file's bytes.

    Args:
        hood_blobs: Compressed hood frames, one per sample.
        cin_blobs: Compressed cinematic frames, or None when the store has none.
        meta: One array per :data:`META_FIELDS` key, ``(n, *shape)`` (an optional key that is
            missing is written as its default).
        header: JSON-able header fields (format, codec, shapes, writer id, ...); ``n``,
            ``frames_crc32`` and ``fields`` are added.

    Raises:
        ValueError: If a metadata array has the wrong shape.
    """
    n = len(hood_blobs)
    parts: list[bytes] = [HEAD_MAGIC]
    pos = len(HEAD_MAGIC)
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
    for key, dtype, shape in META_FIELDS:
        value = meta[key] if key in meta or key not in OPTIONAL_DEFAULTS else None
        if value is None:
            value = np.full((n, *shape), OPTIONAL_DEFAULTS[key], dtype)
        arr = np.ascontiguousarray(value, dtype=dtype.newbyteorder("<"))
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
    trailer = TRAILER.pack(meta_offset, json_offset, len(json_bytes), footer_crc, TAIL_MAGIC)
    return b"".join([*parts, meta_bytes, json_bytes, trailer])


# ------------------------------------------------------------------------------------- decoding


@dataclass(frozen=True)
class Trailer:
    """Where a chunk's metadata and JSON header lie (byte offsets from the file's start)."""

    size: int
    meta_offset: int
    json_offset: int
    json_len: int
    footer_crc: int

    @property
    def footer_span(self) -> tuple[int, int]:
        """``(start, stop)`` of the metadata and header bytes :func:`decode_footer` needs."""
        return self.meta_offset, self.json_offset + self.json_len

    @property
    def payload_span(self) -> tuple[int, int]:
        """``(start, stop)`` of the frame bytes :func:`check_payload` needs."""
        return len(HEAD_MAGIC), self.meta_offset


@dataclass(frozen=True)
class Footer:
    """A chunk's decoded header and metadata arrays (frame tables included)."""

    header: dict[str, Any]
    arrays: dict[str, np.ndarray]

    @property
    def n(self) -> int:
        """Samples in the chunk."""
        return int(self.header["n"])

    @property
    def has_cinematic(self) -> bool:
        """Whether the chunk stores cinematic frames."""
        return self.header.get("cinematic_shape") is not None


def parse_trailer(head: bytes, tail: bytes, size: int) -> Trailer:
    """Check a chunk's magic and trailer.

    Args:
        head: The file's first ``len(HEAD_MAGIC)`` bytes.
        tail: The file's last ``TRAILER.size`` bytes.
        size: The file's size in bytes.

    Raises:
        ChunkFormatError: If the chunk is truncated or its ends are corrupt.
    """
    if size < len(HEAD_MAGIC) + TRAILER.size:
        raise ChunkFormatError(f"truncated: {size} bytes is shorter than an empty chunk")
    if head != HEAD_MAGIC:
        raise ChunkFormatError("bad magic at the start (not a chunk file or overwritten)")
    meta_offset, json_offset, json_len, footer_crc, magic = TRAILER.unpack(tail)
    if magic != TAIL_MAGIC:
        raise ChunkFormatError("no valid trailer (truncated or corrupt end)")
    if not (
        len(HEAD_MAGIC) <= meta_offset <= json_offset
        and json_offset + json_len + TRAILER.size == size
    ):
        raise ChunkFormatError("trailer offsets do not match the file size (truncated or corrupt)")
    return Trailer(size, meta_offset, json_offset, json_len, footer_crc)


def decode_footer(footer: bytes, trailer: Trailer, *, expected_n: int | None = None) -> Footer:
    """Check and decode a chunk's metadata and header (the bytes of ``trailer.footer_span``).

    Args:
        footer: The metadata and JSON header bytes.
        trailer: The chunk's parsed trailer.
        expected_n: The sample count the file name states, checked against the header's.

    Raises:
        ChunkFormatError: If a checksum, the format version, a field or a frame table is wrong.
    """
    if zlib.crc32(footer) != trailer.footer_crc:
        raise ChunkFormatError("metadata checksum mismatch (corrupt metadata)")
    try:
        header = json.loads(footer[trailer.json_offset - trailer.meta_offset :])
    except ValueError as exc:
        raise ChunkFormatError(f"unreadable JSON header ({exc})") from None
    if not isinstance(header, dict):
        raise ChunkFormatError(f"JSON header is a {type(header).__name__}, not an object")
    if header.get("format") != FORMAT_VERSION:
        raise ChunkFormatError(f"unsupported chunk format {header.get('format')!r}")
    check_header(header)
    n = header["n"]
    if expected_n is not None and n != expected_n:
        raise ChunkFormatError(f"header says {n} samples, file name says {expected_n}")
    try:
        return _decode_arrays(footer, trailer, header)
    except (TypeError, ValueError, KeyError, IndexError) as exc:
        raise ChunkFormatError(f"malformed field table ({type(exc).__name__}: {exc})") from None


def is_shape(value: Any) -> bool:
    """Whether ``value`` is a JSON frame shape ``[H, W, 3]`` with sides in [1, 8192]."""
    return (
        isinstance(value, list)
        and len(value) == 3
        and all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 8192 for v in value)
        and value[2] == 3
    )


def check_header(header: Mapping[str, Any]) -> None:
    """Check the keys every chunk header must have, and their types.

    Raises:
        ChunkFormatError: Naming the first key that is missing or of the wrong type.
    """
    checks: tuple[tuple[str, Any], ...] = (
        ("n", lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0),
        ("codec", lambda v: v in CODECS),
        ("hood_shape", is_shape),
        ("cinematic_shape", lambda v: v is None or is_shape(v)),
        ("frames_crc32", lambda v: isinstance(v, int) and not isinstance(v, bool)),
        ("fields", lambda v: isinstance(v, list)),
    )
    for key, ok in checks:
        if key not in header:
            raise ChunkFormatError(f"header key {key!r} missing")
        if not ok(header[key]):
            raise ChunkFormatError(f"header key {key!r} has a bad value {header[key]!r}")
    for key in ("writer_id", "seq", "created_ns"):
        if key in header and not isinstance(header[key], str if key == "writer_id" else int):
            raise ChunkFormatError(f"header key {key!r} has a bad value {header[key]!r}")


def _decode_arrays(footer: bytes, trailer: Trailer, header: dict[str, Any]) -> Footer:
    n = int(header["n"])
    arrays: dict[str, np.ndarray] = {}
    for key, dtype, shape, rel, nbytes in header["fields"]:
        count = int(np.prod(shape))
        if count < 0 or rel < 0 or rel + count * np.dtype(dtype).itemsize > len(footer):
            raise ChunkFormatError(f"field {key!r} lies outside the metadata")
        arr = np.frombuffer(footer, dtype=np.dtype(dtype), count=count, offset=rel)
        if arr.nbytes != nbytes:
            raise ChunkFormatError(f"field {key!r} has the wrong size")
        arrays[key] = arr.reshape(shape)
    for key, dtype, shape in META_FIELDS:
        got = arrays.get(key)
        if got is None and key in OPTIONAL_DEFAULTS:  # a chunk written before the key existed
            got = np.full((n, *shape), OPTIONAL_DEFAULTS[key], dtype)
        if got is None or got.shape != (n, *shape):
            raise ChunkFormatError(f"field {key!r} missing or of the wrong shape")
        arrays[key] = got.astype(dtype)  # native byte order, owns its memory
    result = Footer(header, arrays)
    for frame in ("hood", "cinematic") if result.has_cinematic else ("hood",):
        offsets = arrays.get(f"{frame}_offsets")
        if offsets is None or offsets.shape != (n + 1,) or arrays.get(f"{frame}_crc") is None:
            raise ChunkFormatError(f"{frame} frame table missing")
        if n and (
            offsets[0] < len(HEAD_MAGIC)
            or offsets[-1] > trailer.meta_offset
            or np.any(np.diff(offsets.astype(np.int64)) < 0)
        ):
            raise ChunkFormatError(f"{frame} frame offsets out of range")
    return result


def check_payload(payload: bytes, footer: Footer) -> None:
    """Check the frame bytes (``trailer.payload_span``) against the header's CRC.

    Raises:
        ChunkFormatError: If the frame data is corrupt.
    """
    if zlib.crc32(payload) != int(footer.header["frames_crc32"]):
        raise ChunkFormatError("frame data checksum mismatch (corrupt frames)")


def decode_chunk(data: bytes, *, verify_payload: bool = True) -> tuple[Trailer, Footer]:
    """Check a whole chunk held in memory: trailer, metadata and (if asked) the frame CRC.

    Raises:
        ChunkFormatError: With a short reason when the bytes are not a valid chunk.
    """
    size = len(data)
    head = data[: len(HEAD_MAGIC)]
    tail = data[-TRAILER.size :] if size >= TRAILER.size else b""
    trailer = parse_trailer(head, tail, size)
    start, stop = trailer.footer_span
    footer = decode_footer(data[start:stop], trailer)
    if verify_payload:
        p_start, p_stop = trailer.payload_span
        check_payload(data[p_start:p_stop], footer)
    return trailer, footer
