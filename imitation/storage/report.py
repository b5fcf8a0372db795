"""What a store holds and what went wrong: :class:`StoreReport` and :class:`ChunkProblem`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["ChunkProblem", "StoreReport"]


def _count(name: str) -> int:
    from imitation.storage.format import chunk_count_from_name

    return chunk_count_from_name(name) or 0


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
        corrupt: Skipped chunk files (corrupt, truncated, duplicated, of another layout,
            not regular files), each with the reason.
        missing: Chunks the store's journal lists whose files are gone (samples lost).
        notes: Other findings, e.g. a ``store.json`` that disagreed with the chunks.
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
    missing: tuple[ChunkProblem, ...] = ()
    notes: tuple[str, ...] = ()
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
        """True when no chunk was skipped or missing."""
        return not self.corrupt and not self.missing

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
        lines += [f"  note: {note}" for note in self.notes]
        if self.corrupt:
            lines.append(f"  {len(self.corrupt)} corrupt chunk(s) skipped:")
            lines += [f"    {p.name}: {p.reason}" for p in self.corrupt]
        else:
            lines.append("  no corrupt chunks")
        if self.missing:
            lost = sum(_count(p.name) for p in self.missing)
            lines.append(f"  {len(self.missing)} missing chunk(s), {lost} samples lost:")
            lines += [f"    {p.name}: {p.reason}" for p in self.missing]
        return "\n".join(lines)
