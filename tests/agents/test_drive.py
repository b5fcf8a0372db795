"""`gta5drive drive` and the expert/random agents."""

from __future__ import annotations

import json

import gymnasium as gym
import imageio.v3 as iio
import numpy as np
import pytest

import gta_env  # noqa: F401
from agents.cli import main
from agents.drive import inset_frame
from agents.expert import ExpertAgent
from agents.random_agent import RandomAgent


def test_drive_command_writes_video_and_summary(tmp_path, capsys):
    out = tmp_path / "drive"
    code = main(
        [
            "drive",
            "--agent",
            "expert",
            "--steps",
            "45",
            "--seed",
            "3",
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "expert:" in printed and "collisions" in printed and "unstucks" in printed
    assert str(out / "drive.mp4") in printed
    frames = iio.imread(out / "drive.mp4")
    assert frames.shape == (45, 180, 320, 3)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 45 and summary["collisions"] == 0
    assert summary["distance_m"] > 0


def test_drive_command_random_without_video(tmp_path, capsys):
    out = tmp_path / "rand"
    assert (
        main(
            [
                "drive",
                "--agent",
                "random",
                "--steps",
                "20",
                "--no-video",
                "--out",
                str(out),
                "--no-progress",
            ]
        )
        == 0
    )
    assert not (out / "drive.mp4").exists()
    assert json.loads((out / "summary.json").read_text())["steps"] == 20


def test_inset_puts_the_hood_camera_top_right():
    chase = np.zeros((180, 320, 3), np.uint8)
    hood = np.full((90, 160, 3), 200, np.uint8)
    out = inset_frame(chase, hood)
    assert out[10, 300].tolist() == [200, 200, 200]  # inside the inset
    assert out[150, 20].tolist() == [0, 0, 0]  # the chase camera elsewhere


def test_expert_needs_the_expert_action():
    with pytest.raises(ValueError, match="expert_action"):
        ExpertAgent().act({}, {})
    assert ExpertAgent().act({}, {"expert_action": [0.5, -0.1]}).tolist() == pytest.approx(
        [0.5, -0.1]
    )


def test_random_agent_is_seeded_and_in_bounds():
    space = gym.spaces.Box(-1, 1, (2,), np.float32)
    a = [RandomAgent(space, seed=1).act({}) for _ in range(2)]
    assert np.array_equal(a[0], a[1])
    acts = np.array([RandomAgent(space, seed=2).act({}) for _ in range(50)])
    assert acts.min() >= -1 and acts.max() <= 1


def test_random_agent_holds_each_sample_for_hold_steps():
    space = gym.spaces.Box(-1, 1, (2,), np.float32)
    every_step = RandomAgent(space, seed=3)
    fresh = [every_step.act({}) for _ in range(3)]
    held = RandomAgent(space, seed=3, hold=4)
    acts = [held.act({}) for _ in range(9)]
    # Samples 1, 2, 3 of the same stream, each held for 4 steps (hold=1 is today's agent).
    for i, a in enumerate(acts):
        assert np.array_equal(a, fresh[i // 4])
    held.reset()  # a new episode starts with a fresh sample
    assert not np.array_equal(held.act({}), fresh[2])
    with pytest.raises(ValueError, match="hold"):
        RandomAgent(space, hold=0)
