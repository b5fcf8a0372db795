"""A tiny live configuration: small hood, small buffers, quick unstucks for the player."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from agents.live.config import LiveConfig, RoleResources, default_train_config
from imitation.buffer import BufferConfig
from imitation.storage import StorageConfig

HOOD = (36, 64)


def tiny_config(out: Path, **changes: Any) -> LiveConfig:
    """1 collector, 1 player, a 36x64 PilotNet, buffers of 512, a version every 10 batches."""
    train = replace(
        default_train_config(HOOD),
        batch_size=16,
        buffer=BufferConfig(capacity=512, start_fill=0.5),
        log_every=5,
    )
    half = RoleResources(num_cpus=0.5)
    base: dict[str, Any] = {
        "out": out,
        "collectors": 1,
        "players": 1,
        "hood_size": HOOD,
        "traffic": 0,
        "weather": "clear",
        "warmup": 100,
        "train": train,
        "publish_every": 10,
        "storage": StorageConfig(max_bytes=64 * 2**20, chunk_samples=64, fsync=False),
        "player_fast": True,
        "player_stuck_window": 2.0,
        "check_every": 5,
        "collector_resources": half,
        "trainer_resources": half,
        "player_resources": half,
    }
    base.update(changes)
    return LiveConfig(**base)
