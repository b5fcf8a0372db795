"""The env works unchanged in SB3's own MultiInputPolicy and in a CleanRL-style PPO loop."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces


def test_sb3_multi_input_policy_from_scratch() -> None:
    from stable_baselines3 import PPO

    env = gym.make("gta_env:GTA5Drive-v0", backend="sim", hood_size=(45, 80))
    model = PPO(
        "MultiInputPolicy", env, n_steps=32, batch_size=32, n_epochs=1, seed=0, device="cpu"
    )
    model.learn(64)
    obs, _ = env.reset(seed=1)
    action, _ = model.predict(obs, deterministic=True)
    assert action.shape == (2,) and np.all(np.abs(action) <= 1)
    env.close()


@pytest.mark.parametrize("batched", [False, True])
def test_cleanrl_style_ppo_runs(tmp_path: Path, batched: bool) -> None:
    from agents.rl.cleanrl_ppo import parse_args, train

    args = parse_args(
        [
            *(["--batched"] if batched else []),
            "--max-episode-steps",
            "20",
            "--total-timesteps",
            "64",
            "--num-envs",
            "2",
            "--num-steps",
            "32",
            "--num-minibatches",
            "2",
            "--update-epochs",
            "1",
            "--out",
            str(tmp_path),
        ]
    )
    logged = train(args)
    assert np.isfinite(logged["losses/value_loss"])
    assert logged["charts/SPS"] > 0
    assert any(tmp_path.iterdir())


class CountingEnv(gym.Env):
    """Episodes of exactly ``length`` steps; obs["speed"] is the step index in the episode and
    every real step earns reward 1, so a stored transition shows where it came from."""

    observation_space = spaces.Dict(
        {
            "hood": spaces.Box(0, 255, (32, 32, 3), np.uint8),
            "purpose": spaces.Box(-1, 1, (3,), np.float32),
            "speed": spaces.Box(0, 100, (1,), np.float32),
        }
    )
    action_space = spaces.Box(-1, 1, (2,), np.float32)

    def __init__(self, length: int, *, truncate: bool) -> None:
        self.length, self.truncate, self.t = length, truncate, 0

    def _obs(self) -> dict[str, np.ndarray]:
        return {
            "hood": np.full((32, 32, 3), 10 * self.t, np.uint8),
            "purpose": np.zeros(3, np.float32),
            "speed": np.array([self.t], np.float32),
        }

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {}

    def step(self, action: np.ndarray) -> Any:
        self.t += 1
        end = self.t >= self.length
        return self._obs(), 1.0, end and not self.truncate, end and self.truncate, {}


@pytest.mark.parametrize("truncate", [False, True])
def test_cleanrl_ppo_stores_no_transition_across_an_episode_boundary(
    tmp_path: Path, truncate: bool
) -> None:
    """Every stored step is a real one: seen in its episode, rewarded by it, and each episode
    start is marked done. (With Gymnasium's NEXT_STEP autoreset the loop stored the terminal
    observation with reward 0 and an action the reset ignored, once per episode.)"""
    from agents.rl.cleanrl_ppo import Rollout, parse_args, train

    length, num_steps = 5, 12
    args = parse_args(
        ["--total-timesteps", str(2 * num_steps * 2), "--num-envs", "2", "--num-steps",
         str(num_steps), "--num-minibatches", "2", "--update-epochs", "1", "--out", str(tmp_path)]
    )  # fmt: skip
    rollouts: list[dict[str, np.ndarray]] = []

    def keep(ro: Rollout) -> None:
        rollouts.append(
            {
                "t": ro.obs["speed"][..., 0].numpy().copy(),
                "reward": ro.rewards.numpy().copy(),
                "done": ro.dones.numpy().copy(),
            }
        )

    train(
        args,
        env_fns=[lambda: CountingEnv(length, truncate=truncate) for _ in range(2)],
        on_rollout=keep,
    )
    assert len(rollouts) == 2
    t = np.concatenate([r["t"] for r in rollouts])  # (steps, envs): the step index seen
    reward = np.concatenate([r["reward"] for r in rollouts])
    done = np.concatenate([r["done"] for r in rollouts])
    expected_t = np.arange(len(t)) % length
    np.testing.assert_array_equal(t, np.stack([expected_t, expected_t], axis=1))
    # An observation starts an episode exactly when the one before ended one.
    np.testing.assert_array_equal(done[1:], (t[1:] == 0).astype(np.float32))
    last = t == length - 1  # the step that ends an episode
    if truncate:  # a time limit: the cut-off return is bootstrapped from V(final obs)
        assert np.all(reward[~last] == 1.0) and np.all(reward[last] != 1.0)
    else:
        assert np.all(reward == 1.0)
