"""Recorder: one sample per step from obs + info, clean labels, fades skipped, into a store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

from imitation.balance import SIGNED_V2, BalancerV3
from imitation.noise import ActionNoise, NoiseConfig, OutputNoise
from imitation.record import Recorder
from imitation.sample import LIGHT_CLASSES, LIGHT_NONE
from imitation.storage import SampleStore, SampleWriter, StorageConfig

FAST = StorageConfig(chunk_samples=32, fsync=False)


class ScriptedEnv(gym.Env):
    """A tiny env whose expert action and unstuck phase follow a script (no rendering)."""

    def __init__(self, expert: np.ndarray, fades: set[int] = frozenset()) -> None:  # type: ignore[assignment]
        self.expert = expert.astype(np.float32)
        self.fades = fades
        self.observation_space = spaces.Dict(
            {
                "hood": spaces.Box(0, 255, (4, 6, 3), np.uint8),
                "purpose": spaces.Box(-1, 1, (3,), np.float32),
                "speed": spaces.Box(0, 50, (1,), np.float32),
            }
        )
        self.action_space = spaces.Box(-1, 1, (2,), np.float32)
        self.t = 0
        self.applied: list[np.ndarray] = []
        self.reported: list[np.ndarray] = []

    def _obs(self) -> dict[str, np.ndarray]:
        return {
            "hood": np.full((4, 6, 3), self.t % 256, np.uint8),
            "purpose": np.array([0.5, 0.0, 1.0], np.float32),
            "speed": np.array([float(self.t % 7)], np.float32),
        }

    def _info(self) -> dict[str, Any]:
        a = self.expert[self.t % len(self.expert)]
        self.reported.append(a.copy())
        return {
            "expert_action": a,
            "unstuck_phase": "fade_out" if self.t in self.fades else None,
            "frame": self.t,
            "collisions": 0,
        }

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), self._info()

    def step(self, action: np.ndarray):
        self.applied.append(np.asarray(action, np.float32).copy())
        self.t += 1
        return self._obs(), 0.0, False, self.t >= 10_000, self._info()


STEER_NOISE = NoiseConfig(steering=OutputNoise(probability=0.1, magnitude=0.3, duration=(3, 6)))


@pytest.mark.parametrize("noisy", [True, False])
def test_labels_are_the_clean_expert_action_and_executed_what_was_applied(
    tmp_path: Path, noisy: bool
) -> None:
    expert = np.random.default_rng(0).uniform(-0.5, 0.5, (300, 2))
    env = ScriptedEnv(expert, fades={50, 51, 52})
    noise = ActionNoise(
        config=STEER_NOISE if noisy else NoiseConfig.off(), rng=np.random.default_rng(1)
    )
    with SampleWriter(tmp_path, config=FAST) as writer:
        stats = Recorder(env, writer=writer, noise=noise).record_episode(
            town_seed=7, episode_id=3, max_steps=200
        )
    assert stats.steps == 200 and stats.skipped_fade == 3 and stats.recorded == 197
    store = SampleStore(tmp_path)
    assert len(store) == 197
    steps = store.column("step")
    assert 50 not in steps and 53 in steps
    # Label: the expert action reported with the observation; executed: what reached step().
    np.testing.assert_array_equal(store.column("action"), np.stack(env.reported)[steps])
    np.testing.assert_array_equal(store.column("executed_action"), np.stack(env.applied)[steps])
    differs = np.any(store.column("action") != store.column("executed_action"), axis=1)
    if noisy:
        assert differs.sum() > 20 and stats.perturbed >= differs.sum()
    else:
        assert not differs.any() and stats.perturbed == 0
    batch = store.read_batch(np.arange(len(store)))
    assert np.all(batch["hood"][:, 0, 0, 0] == steps % 256)  # frame matches its step
    assert set(store.column("town_id").tolist()) == {7}
    assert set(store.column("episode_id").tolist()) == {3}
    np.testing.assert_allclose(store.column("time"), steps / 30)


def test_balanced_recording_writes_only_complete_sets(tmp_path: Path) -> None:
    # Throttle cycles over 21 throttle_brake bins; steering fixed at 0.55.
    reps = [*(-0.95 + 0.1 * k for k in range(10)), 0.0, *(0.05 + 0.1 * k for k in range(10))]
    expert = np.array([[r, 0.55] for r in reps] * 5)
    env = ScriptedEnv(expert)
    balancer = BalancerV3(rng=np.random.default_rng(0), require="seen", warmup=21)
    with SampleWriter(tmp_path, config=FAST) as writer:
        stats = Recorder(env, writer=writer, balancer=balancer).record_episode(
            town_seed=1, episode_id=0, max_steps=len(expert)
        )
    store = SampleStore(tmp_path)
    # After the 21-sample warm-up the throttle set takes those 21 samples (one per bin); from
    # then on steering, whose only seen bin is [0.5, 0.6), completes a 1-sample set with every
    # sample, and throttle never again holds all 21 bins.
    assert stats.written == len(store) == len(expert) and balancer.pending == 0
    tb = SIGNED_V2.index(store.column("action")[:, 0])
    assert sorted(tb[:21].tolist()) == list(range(21))
    np.testing.assert_array_equal(store.column("step")[21:], np.arange(21, len(expert)))


def test_recorder_rejects_envs_it_cannot_record(tmp_path: Path) -> None:
    env = ScriptedEnv(np.zeros((3, 2)))
    with SampleWriter(tmp_path, config=FAST) as writer:
        with pytest.raises(ValueError, match="cinematic"):
            Recorder(env, writer=writer, record_cinematic=True)
        with pytest.raises(ValueError, match="output_writers"):
            Recorder(env, writer=writer, balancer=_v2())


def _v2():
    from imitation.balance import BalancerV2

    return BalancerV2(rng=np.random.default_rng(0))


def test_round_trip_from_the_embedded_world(tmp_path: Path) -> None:
    import gta_env  # noqa: F401

    env = gym.make("GTA5Drive-v0", backend="sim", hood_size=(36, 64), traffic=2, weather="fog")
    try:
        noise = ActionNoise(config=NoiseConfig.default(), rng=np.random.default_rng(0))
        with SampleWriter(tmp_path, config=FAST) as writer:
            stats = Recorder(env, writer=writer, noise=noise).record_episode(
                town_seed=11, episode_id=0, seed=0, max_steps=90
            )
    finally:
        env.close()
    store = SampleStore(tmp_path)
    assert store.verify().ok and len(store) == stats.recorded == 90
    assert store.hood_shape == (36, 64, 3)
    np.testing.assert_array_equal(store.column("step"), np.arange(90))
    assert store.column("speed").max() > 0.5  # the expert drove off


def test_the_light_ahead_is_recorded_as_a_label(tmp_path: Path) -> None:
    import gta_env  # noqa: F401

    env = gym.make(
        "GTA5Drive-v0", backend="sim", hood_size=(36, 64), traffic=2, pedestrians=4
    )  # traffic lights are on by default; town 6's route meets a red light early
    try:
        with SampleWriter(tmp_path, config=FAST) as writer:
            Recorder(env, writer=writer).record_episode(
                town_seed=6, episode_id=0, seed=0, max_steps=450
            )
    finally:
        env.close()
    light = SampleStore(tmp_path).column("light")
    counts = np.bincount(light, minlength=len(LIGHT_CLASSES))
    assert light.min() >= 0  # every sample has a label: the sim reports its lights
    assert counts[LIGHT_CLASSES.index("red")] > 50 and counts[LIGHT_NONE] > 50, counts
    target = SampleStore(tmp_path).column("target_speed")
    assert np.isfinite(target).all() and target.min() >= 0  # the sim's expert says it every step
    assert (target[light == LIGHT_CLASSES.index("red")] == 0).any() and target.max() > 5
