"""The chunk format on bytes alone: encode, decode, and every check that rejects bad bytes."""

from __future__ import annotations

import numpy as np
import pytest

import imitation.storage.format as chunk_format
from imitation.sample import LIGHT_UNKNOWN
from imitation.storage.format import (
    META_FIELDS,
    TRAILER,
    ChunkFormatError,
    Codec,
    chunk_count_from_name,
    chunk_name,
    decode_chunk,
    encode_chunk,
)


def _chunk(n: int = 3, *, cinematic: bool = False) -> bytes:
    codec = Codec("zlib", 1)
    frames = [codec.compress(bytes([i]) * 48) for i in range(n)]
    meta = {key: np.zeros((n, *shape), dtype=dtype) for key, dtype, shape in META_FIELDS}
    meta["step"] = np.arange(n, dtype=meta["step"].dtype)
    header = {
        "format": 1,
        "codec": "zlib",
        "hood_shape": [4, 4, 3],
        "cinematic_shape": [4, 4, 3] if cinematic else None,
    }
    return encode_chunk(
        hood_blobs=frames, cin_blobs=frames if cinematic else None, meta=meta, header=header
    )


@pytest.mark.parametrize("cinematic", [False, True])
def test_round_trip_on_bytes(cinematic: bool) -> None:
    data = _chunk(3, cinematic=cinematic)
    trailer, footer = decode_chunk(data)
    assert trailer.size == len(data)
    assert footer.n == 3 and footer.has_cinematic is cinematic
    np.testing.assert_array_equal(footer.arrays["step"], [0, 1, 2])
    offsets = footer.arrays["hood_offsets"]
    blob = data[int(offsets[1]) : int(offsets[2])]
    assert Codec("zlib").decompress(blob, 48) == bytes([1]) * 48


def test_a_chunk_from_before_the_labels_reads_them_as_unknown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    old_fields = tuple(f for f in META_FIELDS if f[0] not in ("light", "target_speed"))
    monkeypatch.setattr(chunk_format, "META_FIELDS", old_fields)
    data = _chunk(3)  # written without the field, as stores recorded before it existed
    monkeypatch.undo()
    _, footer = decode_chunk(data)
    assert "light" not in [f[0] for f in footer.header["fields"]]
    assert footer.arrays["light"].tolist() == [LIGHT_UNKNOWN] * 3
    assert np.isnan(footer.arrays["target_speed"]).all()
    # Written by today's encoder, the label is stored, missing ones as unknown.
    meta = {key: np.zeros((2, *shape), dtype=dtype) for key, dtype, shape in old_fields}
    header = {"format": 1, "codec": "none", "hood_shape": [1, 1, 3], "cinematic_shape": None}
    _, footer = decode_chunk(
        encode_chunk(hood_blobs=[b"abc"] * 2, cin_blobs=None, meta=meta, header=header)
    )
    assert footer.arrays["light"].tolist() == [LIGHT_UNKNOWN] * 2
    assert np.isnan(footer.arrays["target_speed"]).all() and footer.n == 2


def test_empty_chunk_round_trips() -> None:
    _, footer = decode_chunk(_chunk(0))
    assert footer.n == 0


@pytest.mark.parametrize(
    ("mangle", "reason"),
    [
        (lambda d: d[:5], "truncated"),
        (lambda d: b"XXXXXXXX" + d[8:], "bad magic"),
        (lambda d: d[:-1] + b"?", "no valid trailer"),
        (lambda d: d[:20] + d[21:], "trailer offsets"),
        (lambda d: d[: -TRAILER.size - 3] + b"~~~" + d[-TRAILER.size :], "metadata checksum"),
        (lambda d: d[:10] + bytes([d[10] ^ 0xFF]) + d[11:], "frame data checksum"),
    ],
)
def test_bad_bytes_are_rejected_with_a_reason(mangle, reason: str) -> None:
    with pytest.raises(ChunkFormatError, match=reason):
        decode_chunk(mangle(_chunk(3)))


def test_payload_check_is_optional() -> None:
    data = _chunk(3)
    broken = data[:10] + bytes([data[10] ^ 0xFF]) + data[11:]
    _, footer = decode_chunk(broken, verify_payload=False)
    assert footer.n == 3


def test_names_carry_the_count() -> None:
    name = chunk_name(123, "w1", 7, 42)
    assert name == "00000000000000000123-w1-000007-n42.g5c"
    assert chunk_count_from_name(name) == 42
    assert chunk_count_from_name("other.g5c") is None
