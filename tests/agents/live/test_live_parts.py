"""The live system's parts without Ray: config, inbox, weights, console, the swapping player."""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

import gta_env  # noqa: F401
from agents.live import require_ray
from agents.live.config import LiveConfig
from agents.live.console import RateMeter, Snapshot, add_rates, render
from agents.live.messages import CollectorStatus, PlayerStatus, TrainerStatus
from agents.live.player import LivePlayer
from agents.live.system import check_auth_not_disabled
from agents.live.trainer import Inbox, TrainerStopped
from agents.live.weights import WeightsBundle
from agents.player import PlayerConfig
from imitation.balance import BinFill
from imitation.models import model_from_config
from tests.agents.live.helpers import HOOD, tiny_config

EXPERT = Path(__file__).parents[2] / "imitation" / "data" / "expert_actions.npz"


def test_ray_missing_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ImportError, match=r"gta5drive\[live\]"):
        require_ray()


def test_auth_disabled_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    with pytest.raises(RuntimeError, match="RAY_AUTH_MODE"):
        check_auth_not_disabled()
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    check_auth_not_disabled()


def test_config_rejects_models_that_need_neighbours(tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path)
    model = replace(cfg.train.model, frame_stack=3)
    with pytest.raises(ValueError, match="frame stacking"):
        LiveConfig(out=tmp_path, train=replace(cfg.train, model=model))
    with pytest.raises(ValueError, match="collectors"):
        tiny_config(tmp_path, collectors=-1)
    # v2 gets one buffer per v2 output, mapped onto the model's throttle_brake and steering.
    v2 = tiny_config(tmp_path, balance="v2").train.buffer
    assert v2.per_output and v2.outputs == ("accel", "brake", "steering")


def test_live_v2_sets_fill_per_output_buffers_and_train(tmp_path: Path) -> None:
    """The live trainer takes v2's per-output sets (no KeyError: accel) and trains on them."""
    from agents.live.trainer import TrainerWorker
    from imitation.balance import make_balancer
    from imitation.sample import Sample

    config = tiny_config(tmp_path / "run", balance="v2")
    config = replace(
        config,
        train=replace(config.train, buffer=replace(config.train.buffer, capacity=64)),
        inbox_samples=5000,
    )
    worker = TrainerWorker(config=config, start=False)
    balancer = make_balancer("v2", rng=np.random.default_rng(0), require="seen", warmup=0)
    actions = np.load(EXPERT)["action"][:3000]
    sets = []
    for i, a in enumerate(actions):
        sample = Sample(
            hood=np.full((*HOOD, 3), i % 255, np.uint8),
            action=a,
            executed_action=a,
            speed=5.0,
            purpose=np.array([0.5, 0.0, 1.0]),
            time=i / 30,
            step=i,
            episode_id=0,
            town_id=0,
        )
        sets += [(s.output, s.items) for s in balancer.add(sample)]
    assert {o for o, _ in sets} == {"accel", "brake", "steering"}
    worker.push(0, sets)
    buffers = worker.trainer.buffers
    assert set(buffers.buffers) == {"accel", "brake", "steering"}
    assert buffers.columns == {"accel": 0, "brake": 0, "steering": 1}
    worker.trainer.train(steps=3)
    assert worker.trainer.step == 3
    _, mask = buffers.draw(6)
    assert mask.shape == (6, 2) and mask.sum() == 6  # each row trains the output its set balances
    worker.stop()


def test_inbox_is_bounded_and_restartable_and_stops() -> None:
    inbox = Inbox(limit=10)
    for i in range(4):
        inbox.put(None, [i] * 4)
    assert len(inbox) == 8 and inbox.dropped == 8  # the two oldest sets left
    assert list(inbox) == [[2] * 4, [3] * 4]
    assert list(inbox) == []  # empty now, but not finished
    inbox.put(None, [9])
    assert list(inbox) == [[9]]
    inbox.stop()
    with pytest.raises(TrainerStopped):
        next(inbox)


def _bundle(version: int, seed: int) -> WeightsBundle:
    torch.manual_seed(seed)
    cfg = tiny_config(Path("unused")).train.model
    return WeightsBundle.from_model(model_from_config(cfg), version=version, step=version * 10)


def test_weights_bundle_round_trip() -> None:
    bundle = _bundle(3, seed=1)
    model = bundle.build_model()
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), bundle.arrays[k])
    policy = bundle.policy()
    assert policy.meta["version"] == 3
    obs = {
        "hood": np.zeros((*HOOD, 3), np.uint8),
        "purpose": np.zeros(3, np.float32),
        "speed": np.zeros(1, np.float32),
    }
    assert policy.predict(obs).shape == (2,)


def test_live_player_swaps_only_when_an_unstuck_starts() -> None:
    env = gym.make(
        "GTA5Drive-v0",
        backend="sim",
        hood_size=HOOD,
        traffic=0,
        stuck_window=0.5,
        town_seed=7,
        max_episode_steps=10**9,
    )
    offers = iter([None, _bundle(2, seed=2), None, _bundle(3, seed=3)])

    def fetch(known: int) -> WeightsBundle | None:
        return next(offers, None)

    player = LivePlayer(
        env=env,
        bundle=_bundle(1, seed=1),
        fetch=fetch,
        config=PlayerConfig(fast=True, console=False, check_every=3),
    )
    obs, player.info = env.reset(seed=0)
    phases = []
    while player.swaps < 2 and player.step_count < 600:
        obs, _ = player.step(obs)
        phases.append(player.info.get("unstuck_phase"))
    env.close()
    swaps = [e for e in player.log if e["event"] == "swap"]
    seen = [e for e in player.log if e["event"] == "new_weights_seen"]
    assert [s["version"] for s in swaps][:1] == [3] or [s["version"] for s in swaps] == [2, 3]
    for s in swaps:
        assert s["unstuck_phase"] == "fade_out"
        # the step before the swap was driving: the unstuck had just started
        assert phases[s["step"] - 2] is None and phases[s["step"] - 1] == "fade_out"
        assert any(e["step"] <= s["step"] and e["version"] == s["version"] for e in seen)
    assert player.version == swaps[-1]["version"]
    assert [seg["version"] for seg in player.segments] == [1, *[s["version"] for s in swaps[:-1]]]
    assert "weights    v" in player.console_lines()[-1]


def test_console_renders_rates_restarts_and_bins() -> None:
    from rich.console import Console

    meter = RateMeter()
    fill = BinFill(("a", "b"), np.array([3, 1]), np.array([True, True]), 2)
    # The messages the actors send (agents.live.messages), with the fields the console reads.
    collector = CollectorStatus(
        index=0,
        pid=11,
        incarnation=0,
        time=0.0,
        started_at=0.0,
        first_sample_at=None,
        recorded=100,
        sent_samples=40,
        sent_sets=4,
        failed_sends=0,
        episodes=1,
        fill={"steering": fill},
    )
    trainer = TrainerStatus(
        pid=12,
        time=0.0,
        started_at=0.0,
        step=5,
        batch_size=16,
        restored_step=0,
        resumed_from=None,
        warm_samples=0,
        loss=0.25,
        buffer_fill=0.5,
        buffer_samples=256,
        buffer_ready=True,
        inbox=0,
        inbox_dropped=0,
        received_samples=40,
        received_sets=4,
        committed_samples=32,
        version=2,
    )
    player = PlayerStatus(
        index=0,
        pid=13,
        time=0.0,
        started_at=0.0,
        driving=True,
        pps=29.5,
        version=1,
        pending=2,
        swaps=0,
        distance_m=12.0,
        unstucks=1,
        collisions=0,
    )
    add_rates(Snapshot([collector], trainer, [player]), meter, now=0.0)
    later = Snapshot(
        [replace(collector, pid=21, recorded=50)],
        replace(trainer, step=15),
        [player],
        header=["gta5drive live"],
    )
    add_rates(later, meter, now=2.0)
    assert later.restarts == {"collector0": 1}
    assert later.rates["trainer/batches_per_s"] == pytest.approx(5.0)
    assert later.rates["collector0/samples_per_s"] == 0.0  # a new process starts a new series
    console = Console(record=True, width=200)
    console.print(render(later))
    text = console.export_text()
    for expected in ("Collectors", "Trainer", "Players", "v2", "v1 (v2 at next unstuck)", "29.5"):
        assert expected in text


def test_unbalanced_collector_sends_every_sample_in_sets_of_send_every(tmp_path: Path) -> None:
    from agents.live.collector import CollectorWorker

    config = tiny_config(tmp_path / "run", balance=None, send_every=8)
    sent: list[tuple[str | None, tuple]] = []
    worker = CollectorWorker(
        config=config, index=0, send=lambda i, sets: sent.extend(sets), start=True
    )
    deadline = time.monotonic() + 120
    while len(sent) < 3 and time.monotonic() < deadline:
        time.sleep(0.2)
    stats = worker.stop()
    assert stats["error"] is None and len(sent) >= 3
    assert all(output is None for output, _ in sent)
    sizes = [len(items) for _, items in sent]
    assert all(n == 8 for n in sizes[:-1]) and 0 < sizes[-1] <= 8
    assert sum(sizes) == stats["sent_samples"] == stats["recorded"]
    steps = [s.step for _, items in sent for s in items]
    assert steps == sorted(steps) and len(set(steps)) == len(steps)  # none dropped or repeated


def test_a_live_collector_records_v2_sets_without_writers() -> None:
    """`live --balance v2` crashed in every collector: the recorder asked for a writer per
    output, though a live collector sends its sets to the trainer instead of writing them."""
    from agents.live.collector import SetRecorder
    from imitation.balance import make_balancer

    env = gym.make("GTA5Drive-v0", backend="sim", hood_size=HOOD, max_episode_steps=400)
    try:
        balancer = make_balancer("v2", rng=np.random.default_rng(0), require="seen", warmup=50)
        recorder = SetRecorder(env, balancer=balancer)
        recorder.record_episode(town_seed=3, episode_id=0, seed=0, max_steps=300)
        outputs = {s.output for s in recorder.outbox}
        assert recorder.outbox and outputs <= {"accel", "brake", "steering"}, outputs
    finally:
        env.close()


def test_role_resources_carry_custom_ray_resources_for_placement() -> None:
    from agents.commands.live import _resources
    from agents.live.config import RoleResources

    role = RoleResources(num_cpus=0.5, resources={"collect": 1})  # type: ignore[arg-type]
    assert role.resources == (("collect", 1.0),)
    assert role.options() == {"num_cpus": 0.5, "num_gpus": 0.0, "resources": {"collect": 1.0}}
    assert "resources" not in RoleResources().options()
    with pytest.raises(ValueError, match="resources must be >= 0"):
        RoleResources(resources=(("collect", -1.0),))
    from agents.cli import build_parser

    args = build_parser().parse_args(
        [
            "live",
            "--out",
            "x",
            "--collector-resource",
            "collect=2",
            "--collector-resource",
            "gpu_box=0.5",
        ]
    )
    assert _resources(args, RoleResources, "collector").resources == (
        ("collect", 2.0),
        ("gpu_box", 0.5),
    )
    args.collector_resource = ["collect"]
    with pytest.raises(SystemExit, match=r"--collector-resource 'collect': expected NAME=AMOUNT"):
        _resources(args, RoleResources, "collector")
