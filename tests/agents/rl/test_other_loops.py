"""The env works unchanged in SB3's own MultiInputPolicy and in a CleanRL-style PPO loop."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np


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


def test_cleanrl_style_ppo_runs(tmp_path: Path) -> None:
    from agents.rl.cleanrl_ppo import parse_args, train

    args = parse_args(
        [
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
