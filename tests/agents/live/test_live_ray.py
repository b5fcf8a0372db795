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


def _ray_listen_addresses() -> list[str]:
    """Addresses that Ray's own processes (GCS, raylet, workers) listen on."""
    psutil = pytest.importorskip("psutil")
    ips = []
    for conn in psutil.net_connections("inet"):
        if conn.status != psutil.CONN_LISTEN or conn.pid is None:
            continue
        try:
            name = " ".join(psutil.Process(conn.pid).cmdline())
        except psutil.Error:
            continue
        if "ray" in name and ("gcs_server" in name or "raylet" in name or "default_worker" in name):
            ips.append(conn.laddr.ip)
    return ips


def test_live_run_trains_swaps_at_unstuck_and_survives_kills(tmp_path: Path) -> None:
    config = tiny_config(tmp_path / "run")
    system = LiveSystem(config=config).start()
    listening = _ray_listen_addresses()
    try:
        # 0. a local run binds Ray to loopback only
        assert system.ray._private.worker._global_node.node_ip_address == "127.0.0.1"
        assert listening and all(
            ip in ("127.0.0.1", "::1", "::ffff:127.0.0.1") for ip in listening
        ), listening

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

    # the kill -9 of the trainer while the collector sent: every send answered is durable or
    # counted lost; re-sent sets are skipped, not stored twice
    samples = summary["samples"]
    assert samples["sent"] == samples["durable"] + samples["lost"], samples
    store = SampleStore(config.storage_dir)
    keys = list(
        zip(store.column("episode_id").tolist(), store.column("step").tolist(), strict=True)
    )
    assert len(keys) == len(set(keys)) == samples["stored"], samples
    assert samples["stored"] >= samples["durable"] - samples["duplicates_skipped"], samples
    print("sample accounting after kill -9 of the trainer:", samples)

    # storage and checkpoints are usable
    report_store = SampleStore(config.storage_dir).verify()
    assert report_store.ok and report_store.samples > 0
    ckpt = load_checkpoint(latest_checkpoint(config.trainer_dir))
    assert ckpt.step >= t["step"] - config.publish_every
