"""The live system across Ray nodes: a 2-node cluster on this machine, every port on loopback.

Collectors and the player ask for a custom resource only the worker node has, the trainer for
one only the head has, so weights and samples cross nodes through the object store. Killing the
worker node's raylet with SIGKILL takes its actors with it; once a replacement node joins, Ray
restarts them there and samples flow again, while the trainer keeps its process and goes on
publishing versions.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("ray")

from agents.live.config import RoleResources  # noqa: E402
from agents.live.system import LiveSystem, RayOptions, pin_ray_to_loopback  # noqa: E402
from tests.agents.live.helpers import tiny_config  # noqa: E402
from tests.agents.live.test_live_ray import _ray_listen_addresses, wait_for  # noqa: E402

pytestmark = pytest.mark.slow

LOOPBACK = ("127.0.0.1", "::1", "::ffff:127.0.0.1")


def _raylet_pid(node: Any) -> int:
    return int(node.all_processes["raylet"][0].process.pid)


def _node_of(pid: int | None, raylets: dict[str, int]) -> str | None:
    """Which node a Ray worker process runs on: the one whose raylet started it."""
    psutil = pytest.importorskip("psutil")
    if pid is None:
        return None
    try:
        parent = psutil.Process(pid).ppid()
    except psutil.Error:
        return None
    return next((name for name, raylet in raylets.items() if raylet == parent), None)


def test_collectors_and_trainer_on_different_nodes_survive_a_killed_raylet(
    tmp_path: Path,
) -> None:
    from ray.cluster_utils import Cluster

    pin_ray_to_loopback()
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 2, "resources": {"train": 1}, "node_ip_address": "127.0.0.1"},
    )
    system = None
    try:
        worker = cluster.add_node(num_cpus=2, resources={"collect": 1}, node_ip_address="127.0.0.1")
        config = tiny_config(
            tmp_path / "run",
            collector_resources=RoleResources(num_cpus=0.5, resources=(("collect", 0.5),)),
            player_resources=RoleResources(num_cpus=0.5, resources=(("collect", 0.25),)),
            trainer_resources=RoleResources(num_cpus=0.5, resources=(("train", 0.5),)),
        )
        # A throwaway local cluster has no token: joining it needs the explicit opt-in.
        system = LiveSystem(
            config=config,
            ray_options=RayOptions(address=cluster.address, allow_unauthenticated=True),
        ).start()
        raylets = {"head": _raylet_pid(cluster.head_node), "worker": _raylet_pid(worker)}

        # 1. versions cross from the trainer (head) to the player (worker), which swaps
        def swapped() -> Any:
            snap = system.snapshot()
            t, p = snap.trainer, snap.players[0]
            return t and p and t["version"] >= 2 and (p.get("swaps") or 0) >= 1 and snap

        snap = wait_for("two versions and a swap", swapped, 300, system.snapshot)
        assert snap.collectors[0]["sent_samples"] > 0
        pids = system.pids()
        assert _node_of(pids["trainer"], raylets) == "head"
        assert _node_of(pids["collector0"], raylets) == "worker"
        assert _node_of(pids["player0"], raylets) == "worker"
        listening = _ray_listen_addresses()
        assert listening and all(ip in LOOPBACK for ip in listening), listening

        # 2. kill -9 the worker node's raylet: its actors die with it
        version_before = snap.trainer["version"]
        os.kill(raylets["worker"], signal.SIGKILL)
        replacement = cluster.add_node(
            num_cpus=2, resources={"collect": 1}, node_ip_address="127.0.0.1"
        )
        raylets["replacement"] = _raylet_pid(replacement)

        # 3. Ray restarts the collector on the replacement node and samples flow again; the
        # trainer never stopped
        def collector_back() -> Any:
            c = system.snapshot().collectors[0]
            return (
                c
                and c["pid"] != pids["collector0"]
                and c["sent_samples"] > 0
                and _node_of(c["pid"], raylets) == "replacement"
                and c
            )

        wait_for("the collector on the replacement node", collector_back, 300, system.snapshot)

        def trainer_went_on() -> Any:
            t = system.snapshot().trainer
            return t and t["version"] > version_before and t

        t = wait_for("a newer version after the kill", trainer_went_on, 300, system.snapshot)
        assert t["pid"] == pids["trainer"] and t["error"] is None
        time.sleep(1.0)
    finally:
        summary = system.stop() if system is not None else None
        import ray

        ray.shutdown()
        cluster.shutdown()
    assert summary is not None
    assert summary["restarts"].get("collector0", 0) >= 1
    assert summary["restarts"].get("trainer", 0) == 0
    samples = summary["samples"]
    assert samples["sent"] == samples["durable"] + samples["lost"], samples
