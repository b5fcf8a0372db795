"""Behaviour of the observation/action wrappers on the fake GTA5Drive env."""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from tests.wrappers.conftest import FakeDriveEnv
from wrappers import (
    DeadZoneAction,
    FrameStackCameras,
    GreyscaleCameras,
    HistoryObservation,
    Preprocessing,
    PreviousAction,
    ResizeCameras,
    dead_zone_translate,
)

WRAPPERS: dict[str, Callable[[gym.Env], gym.Env]] = {
    "resize": lambda e: ResizeCameras(e, (9, 16)),
    "greyscale": GreyscaleCameras,
    "frame_stack": lambda e: FrameStackCameras(e, 3),
    "history": lambda e: HistoryObservation(e, 5),
    "prev_action": PreviousAction,
    "dead_zone": lambda e: DeadZoneAction(e, (0.1, 0.25)),
    "pipeline": Preprocessing(
        hood_size=(9, 16),
        cinematic=True,
        greyscale=True,
        frame_stack=2,
        history=4,
        prev_action=True,
    ).wrap,
}


@pytest.mark.filterwarnings("ignore:.*different from the unwrapped version")
@pytest.mark.parametrize("name", sorted(WRAPPERS))
def test_wrapper_passes_env_checker(name: str) -> None:
    env = WRAPPERS[name](FakeDriveEnv(cinematic=(12, 20)))
    check_env(env, skip_render_check=True)
    obs, _ = env.reset(seed=1)
    assert env.observation_space.contains(obs)


def test_resize_and_greyscale_shapes() -> None:
    env = GreyscaleCameras(ResizeCameras(FakeDriveEnv(cinematic=(12, 20)), (9, 16)))
    obs, _ = env.reset(seed=0)
    assert obs["hood"].shape == (9, 16, 1) and obs["cinematic"].shape == (9, 16, 1)
    assert obs["hood"].dtype == np.uint8
    np.testing.assert_array_equal(
        obs["speed"], FakeDriveEnv(cinematic=(12, 20)).reset(seed=0)[0]["speed"]
    )


def test_frame_stack_oldest_first_and_reset_padding() -> None:
    raw = FakeDriveEnv()
    env = FrameStackCameras(raw, 3)
    obs0, _ = env.reset(seed=3)
    first = obs0["hood"][..., :3]
    for k in range(3):  # reset repeats the first frame
        np.testing.assert_array_equal(obs0["hood"][..., 3 * k : 3 * k + 3], first)
    frames = [first]
    for _ in range(3):
        obs, *_ = env.step(np.zeros(2, np.float32))
        frames.append(obs["hood"][..., 6:9])  # newest last
    np.testing.assert_array_equal(obs["hood"], np.concatenate(frames[-3:], axis=-1))


def test_history_rows_oldest_to_newest() -> None:
    env = HistoryObservation(FakeDriveEnv(), 4)
    obs, _ = env.reset(seed=0)
    assert obs["history"].shape == (4, 6)
    assert not obs["history"].any()  # zeros before the episode starts
    expected = []
    for t in range(5):
        action = np.array([0.1 * t, -0.1 * t], np.float32)
        expected.append(np.concatenate([action, obs["speed"], obs["purpose"]]))
        obs, *_ = env.step(action)
    np.testing.assert_allclose(obs["history"], np.stack(expected[-4:]), rtol=0, atol=1e-7)


def test_previous_action() -> None:
    env = PreviousAction(FakeDriveEnv())
    obs, _ = env.reset(seed=0)
    np.testing.assert_array_equal(obs["prev_action"], [0, 0])
    obs, *_ = env.step(np.array([0.5, -0.25], np.float32))
    np.testing.assert_array_equal(obs["prev_action"], [0.5, -0.25])


def test_dead_zone_edges() -> None:
    dz = 0.2
    a = np.array([0.0, 1.0, -1.0, 1e-6, -1e-6, 0.5], np.float32)
    out = dead_zone_translate(a, dz)
    np.testing.assert_allclose(out[:3], [0.0, 1.0, -1.0])
    assert out[3] == pytest.approx(dz, abs=1e-5) and out[4] == pytest.approx(-dz, abs=1e-5)
    assert out[5] == pytest.approx(0.2 + 0.8 * 0.5)
    np.testing.assert_array_equal(dead_zone_translate(a, 0.0), a)  # identity at 0
    with pytest.raises(ValueError, match="dead zone"):
        dead_zone_translate(a, 1.0)


def test_dead_zone_wrapper_translates_per_component() -> None:
    raw = FakeDriveEnv()
    env = DeadZoneAction(raw, (0.0, 0.5))
    env.reset(seed=0)
    env.step(np.array([0.3, 0.5], np.float32))
    np.testing.assert_allclose(raw.last_action, [0.3, 0.75])


def test_preprocessing_frames_match_wrapped_env() -> None:
    pre = Preprocessing(hood_size=(9, 16), greyscale=True)
    raw_obs, _ = FakeDriveEnv().reset(seed=5)
    wrapped_obs, _ = pre.wrap(FakeDriveEnv()).reset(seed=5)
    np.testing.assert_array_equal(pre.frames(raw_obs["hood"]), wrapped_obs["hood"])
    assert Preprocessing.from_dict(pre.to_dict()) == pre
