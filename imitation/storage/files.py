"""File-system helpers the store's writer and reader share: atomic writes, listings, the layout.

These are the only places that know the store directory's names (``store.json``,
``index.json``, ``chunks.log``, ``*.g5c``, ``.tmp-*``); the bytes inside a chunk are
:mod:`.format`'s business.

``chunks.log`` is the store's journal of its chunks: a writer appends ``+<name>`` after it
commits a chunk and ``-<name>`` before it rotates one away, each line with one ``write`` in
append mode (atomic for lines this short, also with several writers). A chunk the journal
lists but the directory lacks was deleted by something else: the reader reports it as missing
instead of losing its samples silently. A chunk present but not in the journal (a store older
than the journal, or a kill between the rename and the journal line) is still read: chunk
files are the truth about what exists; the journal only tells what should.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import stat
from pathlib import Path
from typing import Any

from imitation.storage.format import CHUNK_SUFFIX, FORMAT_VERSION
from imitation.storage.format import is_shape as _is_shape

__all__ = [
    "INDEX_FILE",
    "JOURNAL_FILE",
    "STORE_FILE",
    "StoreWriteError",
    "append_journal",
    "atomic_write",
    "chunk_names",
    "fsync_dir",
    "open_regular",
    "read_journal",
    "read_layout",
    "temp_names",
    "write_error",
]

STORE_FILE = "store.json"
INDEX_FILE = "index.json"
JOURNAL_FILE = "chunks.log"


class StoreWriteError(OSError):
    """A store cannot be written (read-only, disk full, ...); the message says which and why."""


def write_error(root: Path, exc: OSError, what: str) -> StoreWriteError:
    """A :class:`StoreWriteError` for ``exc`` that names the cause in plain words."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        cause = "disk full"
        advice = "free space (or set StorageConfig.max_bytes) and run again"
    elif exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        cause = "read-only or not writable"
        advice = "write to a folder you may write to (reading this store still works)"
    else:
        cause = os.strerror(exc.errno) if exc.errno else str(exc)
        advice = "check the folder"
    err = StoreWriteError(
        exc.errno or 0,
        f"cannot {what} in the store at {root}: {cause}; "
        f"every chunk committed before is kept; {advice}",
    )
    return err


def open_regular(path: Path) -> int:
    """Open ``path`` for reading only if it is a regular file (a FIFO or device never blocks).

    Returns:
        A file descriptor.

    Raises:
        OSError: If the file cannot be opened or is not a regular file.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file (a FIFO, device or folder?)")
    except BaseException:
        os.close(fd)
        raise
    return fd


def append_journal(root: Path, lines: list[str], *, fsync: bool) -> None:
    """Append ``+name`` / ``-name`` lines to the store's journal (one write, append mode)."""
    fd = os.open(root / JOURNAL_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, "".join(f"{line}\n" for line in lines).encode())
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)


def read_journal(root: Path) -> dict[str, bool] | None:
    """Chunk name -> whether the journal says it should exist; None when there is no journal.

    Unreadable lines (a torn last line) are ignored.
    """
    try:
        fd = open_regular(root / JOURNAL_FILE)
    except FileNotFoundError:
        return None
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        text = f.read().decode("utf-8", "replace")
    state: dict[str, bool] = {}
    for line in text.splitlines():
        if len(line) > 1 and line[0] in "+-" and line.endswith(CHUNK_SUFFIX):
            state[line[1:]] = line[0] == "+"
    return state


def fsync_dir(path: Path) -> None:
    """fsync a directory so a rename inside it survives a power cut (no-op where unsupported)."""
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


def atomic_write(path: Path, data: bytes, *, fsync: bool) -> None:
    """Write ``data`` to ``path`` through a hidden temporary file and an atomic rename."""
    tmp = path.with_name(f".tmp-{os.getpid()}-{secrets.token_hex(4)}-{path.name}")
    try:
        with open(tmp, "xb") as f:
            f.write(data)
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):  # a full disk must not keep the partial file
            tmp.unlink(missing_ok=True)
        raise
    if fsync:
        fsync_dir(path.parent)


def chunk_names(root: Path) -> list[str]:
    """Chunk file names in ``root``, oldest first (empty if the directory is gone)."""
    try:
        names = os.listdir(root)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if n.endswith(CHUNK_SUFFIX) and not n.startswith("."))


def temp_names(root: Path) -> list[str]:
    """Temporary files in ``root``: chunks in flight, or left by killed writers."""
    try:
        return sorted(n for n in os.listdir(root) if n.startswith(".tmp-"))
    except FileNotFoundError:
        return []


def read_layout(root: Path) -> dict[str, Any] | None:
    """The store's ``store.json`` layout, or None if missing, unreadable or malformed.

    Malformed means anything but ``{"format": 1, "hood_shape": [H, W, 3],
    "cinematic_shape": [H, W, 3] or null}``; the chunks describe themselves, so a reader or
    writer rebuilds the layout from them.
    """
    try:
        fd = open_regular(root / STORE_FILE)
        with os.fdopen(fd, "rb") as f:
            layout = json.loads(f.read(65536))
    except (OSError, ValueError):
        return None
    if not isinstance(layout, dict):
        return None
    hood, cin = layout.get("hood_shape"), layout.get("cinematic_shape", "missing")
    if layout.get("format") != FORMAT_VERSION or not _is_shape(hood):
        return None
    if cin is not None and not _is_shape(cin):
        return None
    return layout
