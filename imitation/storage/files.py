"""File-system helpers the store's writer and reader share: atomic writes, listings, the layout.

These are the only places that know the store directory's names (``store.json``,
``index.json``, ``*.g5c``, ``.tmp-*``); the bytes inside a chunk are :mod:`.format`'s business.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

from imitation.storage.format import CHUNK_SUFFIX

__all__ = [
    "INDEX_FILE",
    "STORE_FILE",
    "atomic_write",
    "chunk_names",
    "fsync_dir",
    "read_layout",
    "temp_names",
]

STORE_FILE = "store.json"
INDEX_FILE = "index.json"


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
    with open(tmp, "xb") as f:
        f.write(data)
        f.flush()
        if fsync:
            os.fsync(f.fileno())
    os.replace(tmp, path)
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
    """The store's ``store.json`` layout, or None if missing or unreadable."""
    try:
        layout = json.loads((root / STORE_FILE).read_text())
    except (FileNotFoundError, ValueError):
        return None
    if not isinstance(layout, dict) or "hood_shape" not in layout:
        return None
    return layout
