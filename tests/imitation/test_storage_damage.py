"""Deliberate damage to a store, as a tester would try it: a seeded, bounded fuzz loop.

Every case damages a copy of one small store (6 chunks of 50 samples) and then checks, through
``gta5drive dataset-info --verify``: a clear message naming what was damaged, exactly the
damaged chunk's samples lost, no traceback, no hang, and that appending still works.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import warnings
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from agents.cli import main as cli
from imitation.storage import (
    CorruptChunkWarning,
    SampleStore,
    SampleWriter,
    StorageConfig,
    StoreWriteError,
)
from imitation.storage.format import TRAILER, decode_chunk
from tests.imitation.test_storage import make_sample

ROOT = Path(__file__).resolve().parents[2]
CFG = StorageConfig(chunk_samples=50, fsync=False)
N = 300


@pytest.fixture(scope="module")
def base_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("base") / "store"
    with SampleWriter(root, config=CFG, writer_id="base") as w:
        for g in range(N):
            w.append(make_sample(g))
    return root


def _copy(base: Path, tmp_path: Path) -> tuple[Path, list[Path]]:
    root = tmp_path / "store"
    shutil.copytree(base, root)
    return root, sorted(root.glob("*.g5c"))


def _info(root: Path, tmp_path: Path) -> tuple[int, str]:
    """Run ``dataset-info --verify``; any exception (a traceback) fails the test."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing may leak besides the report
        warnings.simplefilter("ignore", DeprecationWarning)
        code = cli(["dataset-info", str(root), "--verify", "--out", str(tmp_path / "info")])
    return code, out.getvalue()


def _samples(text: str) -> int:
    return int(text.split(": ", 1)[1].split(" samples", 1)[0])


def _appends(root: Path, expected: int) -> None:
    with SampleWriter(root, config=CFG, writer_id="after") as w:
        w.extend([make_sample(1000 + g) for g in range(10)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CorruptChunkWarning)
        store = SampleStore(root, update_index=False)
    assert len(store) == expected + 10
    store.read_batch(np.arange(len(store)))  # every kept sample still decodes
    store.close()


def _rewrite_header(data: bytes, change: Callable[[dict], None]) -> bytes:
    """The chunk with its JSON header changed and every checksum made valid again."""
    trailer, footer = decode_chunk(data)
    header = dict(footer.header)
    change(header)
    meta = data[trailer.meta_offset : trailer.json_offset]
    js = json.dumps(header, sort_keys=True).encode()
    crc = zlib.crc32(js, zlib.crc32(meta))
    tail = TRAILER.pack(trailer.meta_offset, trailer.json_offset, len(js), crc, b"G5DCEND1")
    return data[: trailer.json_offset] + js + tail


# ------------------------------------------------------------------------------ damage kinds
# Each takes (root, chunks, rng) and returns (samples expected, text expected in the report).


def flip(root: Path, chunks: list[Path], rng: np.random.Generator) -> tuple[int, str]:
    victim = chunks[int(rng.integers(len(chunks)))]
    data = bytearray(victim.read_bytes())
    pos = int(rng.integers(len(data)))
    data[pos] ^= 1 << int(rng.integers(8))
    victim.write_bytes(bytes(data))
    return N - 50, victim.name


def truncate(root: Path, chunks: list[Path], rng: np.random.Generator) -> tuple[int, str]:
    victim = chunks[int(rng.integers(len(chunks)))]
    data = victim.read_bytes()
    victim.write_bytes(data[: int(rng.integers(len(data)))])
    return N - 50, victim.name


def delete(root: Path, chunks: list[Path], rng: np.random.Generator) -> tuple[int, str]:
    victim = chunks[int(rng.integers(len(chunks)))]
    victim.unlink()
    return N - 50, "missing"


def duplicate(root: Path, chunks: list[Path], rng: np.random.Generator) -> tuple[int, str]:
    src = chunks[int(rng.integers(len(chunks)))]
    t, rest = src.name.split("-", 1)
    copy = root / f"{int(t) + int(rng.integers(1, 10**9)):020d}-{rest}"
    shutil.copyfile(src, copy)
    return N, copy.name


def junk(root: Path, chunks: list[Path], rng: np.random.Generator) -> tuple[int, str]:
    name = f"{int(rng.integers(10**12)):020d}-junk-000000-n50.g5c"
    (root / name).write_bytes(rng.bytes(int(rng.integers(0, 4000))))
    (root / "notes.txt").write_text("not a chunk")  # other files are ignored
    return N, name


def fifo(root: Path, chunks: list[Path], rng: np.random.Generator) -> tuple[int, str]:
    name = f"{int(rng.integers(10**12)):020d}-fifo-000000-n50.g5c"
    os.mkfifo(root / name)
    return N, "not a regular file"


def bad_store_json(root: Path, chunks: list[Path], rng: np.random.Generator) -> tuple[int, str]:
    layout = json.loads((root / "store.json").read_text())
    kind = int(rng.integers(5))
    if kind == 0:
        layout["hood_shape"][1] += 1  # one changed digit: 16 -> 17
    elif kind == 1:
        del layout["cinematic_shape"]
    elif kind == 2:
        layout["hood_shape"] = None
    text = json.dumps(layout) if kind < 3 else ("{not json" if kind == 3 else "[1, 2]")
    (root / "store.json").write_text(text)
    return N, "rebuilt it from the chunks"


def bad_header(root: Path, chunks: list[Path], rng: np.random.Generator) -> tuple[int, str]:
    victim = chunks[int(rng.integers(len(chunks)))]
    key = ["codec", "hood_shape", "n", "fields", "frames_crc32", "cinematic_shape"][
        int(rng.integers(6))
    ]
    victim.write_bytes(_rewrite_header(victim.read_bytes(), lambda h: h.pop(key)))
    return N - 50, f"header key {key!r} missing"


DAMAGE = [flip, truncate, delete, duplicate, junk, fifo, bad_store_json, bad_header]


@pytest.mark.parametrize("seed", range(16))
def test_damage_is_reported_and_only_the_damaged_chunk_is_lost(
    base_store: Path, tmp_path: Path, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    damage = DAMAGE[seed % len(DAMAGE)]
    root, chunks = _copy(base_store, tmp_path)
    expected, text = damage(root, chunks, rng)
    code, out = _info(root, tmp_path)
    assert "Traceback" not in out
    assert _samples(out) == expected, out
    assert text in out, out
    assert code == (0 if damage is bad_store_json else 1), out
    for leftover in root.iterdir():  # the FIFO is never opened: remove it before appending
        if leftover.is_fifo():
            leftover.unlink()
    _appends(root, expected)


def test_fifo_named_like_a_chunk_does_not_hang_the_command(
    base_store: Path, tmp_path: Path
) -> None:
    root, _ = _copy(base_store, tmp_path)
    os.mkfifo(root / f"{1:020d}-fifo-000000-n50.g5c")
    os.mkfifo(root / "store.json.fifo")
    proc = subprocess.run(
        [sys.executable, "-m", "agents.cli", "dataset-info", str(root), "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    assert "not a regular file" in proc.stdout
    assert "Traceback" not in proc.stderr


def test_read_only_store_reads_and_writing_says_it_cannot(
    base_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    root, _ = _copy(base_store, tmp_path)
    (root / "index.json").unlink(missing_ok=True)
    (root / "store.json").write_text("{}")  # would be rebuilt if the store were writable

    # A read-only file system, also for root (who ignores permission bits): every change fails.
    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EROFS, "Read-only file system")

    real_open = os.open

    def open_ro(path: object, flags: int, *args: object) -> int:
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and str(root) in str(path):
            refuse()
        return real_open(path, flags, *args)  # type: ignore[arg-type]

    import builtins

    real_builtin_open = builtins.open

    def builtin_open_ro(file: object, mode: str = "r", *args: object, **kwargs: object) -> object:
        if any(c in mode for c in "wxa+") and str(root) in str(file):
            refuse()
        return real_builtin_open(file, mode, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(builtins, "open", builtin_open_ro)
    monkeypatch.setattr(os, "replace", refuse)
    monkeypatch.setattr(os, "unlink", refuse)
    monkeypatch.setattr(os, "open", open_ro)
    monkeypatch.setattr(os, "access", lambda path, mode: mode != os.W_OK)
    before = sorted(p.name for p in root.iterdir())
    code, out = _info(root, tmp_path)
    assert code == 0 and _samples(out) == N, out
    assert "could not rewrite it" in out
    assert sorted(p.name for p in root.iterdir()) == before
    with pytest.raises(StoreWriteError, match="read-only"):
        SampleWriter(root, config=CFG)


def test_disk_full_cleans_up_and_keeps_what_was_committed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    import imitation.storage.writer as writer_mod

    root = tmp_path / "store"
    w = SampleWriter(root, config=CFG, writer_id="full")
    w.extend([make_sample(g) for g in range(50)])  # one chunk committed
    real_replace = os.replace

    def full(src: object, dst: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(writer_mod.os, "replace", full)
    with pytest.raises(StoreWriteError, match="disk full"):
        w.extend([make_sample(50 + g) for g in range(50)])
    assert not [p for p in root.iterdir() if p.name.startswith(".tmp-")]
    assert w.pending == 50  # kept: a retry once there is space commits them
    monkeypatch.setattr(writer_mod.os, "replace", real_replace)
    w.close()
    assert len(SampleStore(root)) == 100


BOMB_SRC = """
import resource, sys, zlib
from pathlib import Path
import numpy as np
import zstandard
from imitation.storage import CorruptChunkError, SampleStore, SampleWriter, StorageConfig
from imitation.storage.format import encode_chunk, decode_chunk
from tests.imitation.test_storage import make_sample

root = Path(sys.argv[1])
codec = sys.argv[2]
with SampleWriter(root, config=StorageConfig(chunk_samples=5, fsync=False, codec=codec),
                  writer_id="ok") as w:
    w.extend([make_sample(g) for g in range(5)])
good = sorted(root.glob("*.g5c"))[0]
_, footer = decode_chunk(good.read_bytes())
huge = bytes(256 << 20)
bomb = (zstandard.ZstdCompressor(level=19).compress(huge) if codec == "zstd"
        else zlib.compress(huge, 9))
del huge
assert len(bomb) < 300_000, len(bomb)
meta = {k: footer.arrays[k] for k in ("action", "executed_action", "speed", "purpose", "time",
                                     "step", "episode_id", "town_id")}
header = {k: footer.header[k] for k in ("format", "codec", "hood_shape", "cinematic_shape")}
data = encode_chunk(hood_blobs=[bomb] * 5, cin_blobs=None, meta=meta, header=header)
(root / f"{1:020d}-bomb-000000-n5.g5c").write_bytes(data)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
store = SampleStore(root)
assert len(store) == 10, len(store)
try:
    store.read_batch(np.arange(5))
    print("DECODED")
except CorruptChunkError as exc:
    print("REJECTED", exc)
report = store.verify()
print("SAMPLES", report.samples)
print("GROWTH_MIB", (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024)
"""


@pytest.mark.parametrize("codec", ["zstd", "zlib"])
def test_compression_bomb_is_rejected_without_memory_growth(tmp_path: Path, codec: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", BOMB_SRC, str(tmp_path / "store"), codec],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    lines = dict(line.split(" ", 1) for line in proc.stdout.splitlines())
    assert "REJECTED" in lines and "more than" in lines["REJECTED"], proc.stdout
    assert int(lines["SAMPLES"]) == 5
    assert float(lines["GROWTH_MIB"]) < 64, proc.stdout
