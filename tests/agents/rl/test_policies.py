"""BC checkpoint → SB3 policy: the deterministic actions are the BC policy's."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

import gta_env  # noqa: F401
from agents.rl.policies import bc_to_sb3, check_convertible, export_driving_model
from imitation.checkpoint import save_checkpoint
from imitation.models import ModelConfig, build_model, default_outputs
from imitation.policy import BCPolicy


def _observations(env: gym.Env, n: int) -> list[dict[str, np.ndarray]]:
    obs, _ = env.reset(seed=0)
    out = [obs]
    rng = np.random.default_rng(0)
    for _ in range(n - 1):
        obs, *_ = env.step(rng.uniform(-1, 1, 2).astype(np.float32))
        out.append(obs)
    return out


@pytest.mark.parametrize("measurements", [0, 16], ids=["raw-measurements", "encoder"])
@pytest.mark.parametrize("algo", ["ppo", "sac"])
def test_converted_policy_acts_like_bc(
    algo: str, measurements: int, bc_checkpoint: Path, tmp_path: Path
) -> None:
    if measurements:  # purpose and speed through a measurement encoder
        torch.manual_seed(2)
        model = build_model("pilotnet", image_size=(36, 64), dense=32, measurements=measurements)
        bc_checkpoint = save_checkpoint(tmp_path / "step-1", model=model, step=1)
    policy = BCPolicy.load(bc_checkpoint)
    env = policy.wrap_env(gym.make("GTA5Drive-v0", backend="sim"))
    kwargs = {"n_steps": 16, "batch_size": 16} if algo == "ppo" else {"buffer_size": 64}
    agent = bc_to_sb3(bc_checkpoint, env, algo=algo, device="cpu", **kwargs)  # type: ignore[arg-type]
    observations = _observations(env, 8)
    for obs in observations:
        want = policy.predict(obs)
        got, _ = agent.predict(obs, deterministic=True)
        np.testing.assert_allclose(got, want, atol=1e-5)
    batch = {k: np.stack([o[k] for o in observations]) for k in observations[0]}
    got, _ = agent.predict(batch, deterministic=True)
    np.testing.assert_allclose(got, policy.predict(batch), atol=1e-5)
    # Exporting the (untouched) actor gives the BC model back.
    exported = export_driving_model(agent.policy)
    for key, value in policy.model.state_dict().items():
        torch.testing.assert_close(exported.state_dict()[key], value, msg=key)
    env.close()


def test_greyscale_stacked_frames_convert(tmp_path: Path) -> None:
    torch.manual_seed(1)
    model = build_model("pilotnet", image_size=(36, 64), greyscale=True, frame_stack=2, dense=32)
    path = save_checkpoint(tmp_path / "step-1", model=model, step=1)
    policy = BCPolicy.load(path)
    env = policy.wrap_env(gym.make("GTA5Drive-v0", backend="sim"))
    agent = bc_to_sb3(path, env, algo="ppo", device="cpu", n_steps=16, batch_size=16)
    for obs in _observations(env, 4):
        got, _ = agent.predict(obs, deterministic=True)
        np.testing.assert_allclose(got, policy.predict(obs), atol=1e-5)
    env.close()


def test_unconvertible_models_are_refused() -> None:
    with pytest.raises(ValueError, match="history"):
        check_convertible(ModelConfig(history=10))
    with pytest.raises(ValueError, match="non-regression"):
        check_convertible(ModelConfig(outputs=default_outputs(("regression", "classification"))))
