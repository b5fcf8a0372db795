"""The live system on a local Ray instance: training, versions, swaps at unstucks, crashes."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("ray")

from agents.live.system import LiveSystem  # noqa: E402
from imitation.checkpoint import latest_checkpoint, load_checkpoint  # noqa: E402
from imitation.storage import SampleStore  # noqa: E402
from tests.agents.live.helpers import tiny_config  # noqa: E402

pytestmark = pytest.mark.slow


def wait_for(
    what: str, check: Callable[[], Any], timeout: float, state: Callable[[], Any] = lambda: None
) -> Any:
    # Generous limits: a warm-restarted trainer refills its buffer before it trains again, which
    # takes minutes on a busy 2-CPU machine. The test checks that things happen, not how fast.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; last: {state()}")


def test_live_run_trains_swaps_at_unstuck_and_survives_kills(tmp_path: Path) -> None:
    config = tiny_config(tmp_path / "run")
    system = LiveSystem(config=config).start()
    try:
        # 1. training publishes versions; the player drives and swaps at an unstuck
        def swapped() -> Any:
            snap = system.snapshot()
            t, p = snap.trainer, snap.players[0]
            return t and p and t["version"] >= 2 and p.get("swaps", 0) >= 1 and snap

        snap = wait_for("two versions and a swap", swapped, 300, system.snapshot)
        assert snap.trainer["error"] is None and snap.collectors[0]["error"] is None

        # 2. kill -9 the collector: Ray restarts it and samples flow again
        pids = system.pids()
        os.kill(pids["collector0"], signal.SIGKILL)

        def collector_back() -> Any:
            c = system.snapshot().collectors[0]
            return c and c["pid"] != pids["collector0"] and c["sent_samples"] > 0

        wait_for("the collector to restart and send", collector_back, 240, system.snapshot)

        # 3. kill -9 the trainer: it resumes from its checkpoint and warms up from storage.
        # First let the storage hold a full buffer, so the new trainer can train from storage
        # alone, whatever the collector is doing while the trainer restarts.
        def storage_holds_a_buffer() -> Any:
            t = system.snapshot().trainer
            return t and t["committed_samples"] >= config.train.buffer.capacity and t

        before = wait_for(
            "a buffer's worth in storage", storage_holds_a_buffer, 240, system.snapshot
        )
        os.kill(pids["trainer"], signal.SIGKILL)

        def trainer_back() -> Any:
            t = system.snapshot().trainer
            return t and t["pid"] != pids["trainer"] and t["step"] > t["restored_step"] and t

        t = wait_for("the trainer to restart and train", trainer_back, 300, system.snapshot)
        published = (before["version"]) * config.publish_every
        assert t["restored_step"] >= published > 0
        assert t["warm_samples"] >= config.train.buffer.capacity * config.train.buffer.start_fill
        assert t["resumed_from"]
    finally:
        summary = system.stop()

    # the player's log: every swap happened as an unstuck began, after the weights were seen
    report = summary["players"][0]
    assert report is not None and report["error"] is None
    import json

    log = json.loads((config.players_dir / "player0.json").read_text())["log"]
    swaps = [e for e in log if e["event"] == "swap"]
    assert swaps
    for s in swaps:
        assert s["unstuck_phase"] == "fade_out"
        assert any(
            e["event"] == "new_weights_seen"
            and e["version"] == s["version"]
            and e["step"] <= s["step"]
            for e in log
        )
    versions = [s["version"] for s in swaps]
    assert versions == sorted(versions)
    assert summary["restarts"].get("collector0", 0) >= 1
    assert summary["restarts"].get("trainer", 0) >= 1

    # storage and checkpoints are usable
    report_store = SampleStore(config.storage_dir).verify()
    assert report_store.ok and report_store.samples > 0
    ckpt = load_checkpoint(latest_checkpoint(config.trainer_dir))
    assert ckpt.step >= t["step"] - config.publish_every
