"""The player: dead-zone translation at the edges, hot swap at the next unstuck, BC agent."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import gta_env  # noqa: F401
from agents.bc import BCAgent
from agents.player import Player, PlayerConfig
from tests.agents.helpers import RecordActions, ScriptedAgent, write_checkpoint


@pytest.fixture(scope="module")
def env():
    e = gym.make("GTA5Drive-v0", backend="sim", town_seed=5, max_episode_steps=10_000)
    yield e
    e.close()


@pytest.mark.parametrize("dz", [0.0, 0.25])
def test_dead_zone_edges_through_the_player(env, dz):
    raw = [
        [0.0, 0.0],
        [dz, -dz],
        [-dz, dz],
        [1.0, -1.0],
        [-1.0, 1.0],
        [0.5, -0.5],
    ]
    rec = RecordActions(env)
    player = Player(
        env=rec,
        agent=ScriptedAgent(raw),
        config=PlayerConfig(fast=True, console=False, dead_zone=dz),
    )
    player.run(steps=len(raw), seed=0)
    got = np.stack(rec.received)
    a = np.asarray(raw, np.float32)
    expected = np.sign(a) * (dz + (1 - dz) * np.abs(a))
    np.testing.assert_allclose(got, expected, atol=1e-6)
    np.testing.assert_array_equal(got[0], [0.0, 0.0])  # zero stays zero
    np.testing.assert_allclose(got[3], [1.0, -1.0])  # ±1 stays ±1
    if dz == 0.0:
        np.testing.assert_allclose(got, a)  # identity
    else:
        assert abs(got[1, 0] - (dz + (1 - dz) * dz)) < 1e-6  # ±dz lands outside the dead zone
    assert player.predictions == len(raw)
    lines = player.console_lines()
    assert any(line.startswith("translated") for line in lines)


def test_hot_swap_waits_for_the_next_unstuck(tmp_path: Path):
    run = tmp_path / "run"
    write_checkpoint(run / "checkpoints" / "step-00000010.safetensors", step=10, seed=1)
    # stuck after 1 s whatever the model does: the car must cover 100 m per second
    env = gym.make(
        "GTA5Drive-v0",
        backend="sim",
        town_seed=7,
        stuck_window=1.0,
        stuck_distance=100.0,
        fade_frames=3,
        max_episode_steps=10_000,
    )
    phases: list[str | None] = []

    def on_step(player: Player, info) -> None:
        phases.append(info["unstuck_phase"])
        if player.step_count == 5:
            write_checkpoint(run / "checkpoints" / "step-00000020.safetensors", step=20, seed=2)

    player = Player(
        env=env,
        checkpoint=run,
        config=PlayerConfig(fast=True, console=False, check_every=1),
        on_step=on_step,
    )
    assert player.log[0]["event"] == "load" and player.log[0]["model_step"] == 10
    try:
        player.run(steps=45, seed=0)
    finally:
        env.close()
    first_fade = phases.index("fade_out") + 1  # step count at which the unstuck started
    assert first_fade > 10
    events = {e["event"]: e for e in player.log}
    assert events["new_checkpoint_seen"]["step"] == 6  # written after step 5, seen at the next
    swap = events["swap"]
    assert swap["step"] == first_fade, (swap, first_fade)  # at the unstuck, not before
    assert swap["model_step"] == 20 and swap["previous"].endswith("step-00000010.safetensors")
    assert player.swaps == 1
    assert isinstance(player.agent, BCAgent) and player.agent.meta["step"] == 20
    # the player does not predict while the picture fades
    assert player.predictions == 45 - sum(p is not None for p in phases[:-1])


def test_no_swap_when_disabled(tmp_path: Path, env):
    run = tmp_path / "run"
    write_checkpoint(run / "step-00000001.safetensors", step=1)
    player = Player(
        env=env, checkpoint=run, config=PlayerConfig(fast=True, console=False, swap=False)
    )
    write_checkpoint(run / "step-00000002.safetensors", step=2)
    player.run(steps=3, seed=0)
    assert [e["event"] for e in player.log] == ["load"]


class RawTap(gym.Wrapper):
    """Keeps the raw observation under the preprocessing wrappers."""

    def reset(self, **kwargs):
        self.raw, info = self.env.reset(**kwargs)
        return self.raw, info

    def step(self, action):
        self.raw, *rest = self.env.step(action)
        return (self.raw, *rest)


def test_bc_agent_acts_on_raw_observations_like_the_wrapped_env(tmp_path: Path, env):
    """The agent's own preprocessing equals the policy's wrappers (frame stack + history)."""
    from dataclasses import replace

    from tests.agents.helpers import TINY

    cfg = replace(TINY, frame_stack=3, history=5)
    agent = BCAgent.from_checkpoint(write_checkpoint(tmp_path / "c", step=1, config=cfg))
    tap = RawTap(env)
    wrapped = agent.policy.wrap_env(tap)
    obs_w, _ = wrapped.reset(seed=1)
    agent.reset()
    for _ in range(6):
        action = agent.act(tap.raw)
        assert agent.last_inputs is not None
        for key in ("hood", "history", "purpose", "speed"):
            np.testing.assert_array_equal(agent.last_inputs[key], obs_w[key], err_msg=key)
        np.testing.assert_array_equal(action, np.clip(agent.policy.predict(obs_w), -1, 1))
        obs_w, *_ = wrapped.step(action)


def test_player_skips_a_junk_checkpoint_and_keeps_driving(tmp_path: Path) -> None:
    run = tmp_path / "run"
    write_checkpoint(run / "checkpoints" / "step-00000010.safetensors", step=10, seed=1)
    env = gym.make(
        "GTA5Drive-v0",
        backend="sim",
        town_seed=7,
        stuck_window=1.0,
        stuck_distance=100.0,
        fade_frames=3,
        max_episode_steps=10_000,
    )

    def on_step(player: Player, info) -> None:
        if player.step_count == 5:  # a half-copied newer file appears
            (run / "checkpoints" / "step-00000020.safetensors").write_bytes(b"\0" * 100)

    player = Player(
        env=env,
        checkpoint=run,
        config=PlayerConfig(fast=True, console=False, check_every=1),
        on_step=on_step,
    )
    try:
        player.run(steps=80, seed=0)  # two unstucks at least: the junk is tried only once
    finally:
        env.close()
    events = [e["event"] for e in player.log]
    assert events.count("skip_checkpoint") == 1, events
    assert "swap" not in events and player.swaps == 0
    assert player.step_count == 80 and player.agent.meta["step"] == 10
