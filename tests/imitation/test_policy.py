"""BCPolicy: loads in one call, wraps the env like training did, predicts deterministically."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch

from imitation.checkpoint import save_checkpoint
from imitation.convcam import convcam
from imitation.models import OutputSpec, build_model
from imitation.policy import BCPolicy


def _fakes() -> ModuleType:
    path = Path(__file__).resolve().parents[1] / "wrappers" / "conftest.py"
    spec = importlib.util.spec_from_file_location("wrapper_fakes", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    model = build_model(
        "pilotnet",
        image_size=(9, 16),
        cinematic_size=(9, 16),
        greyscale=True,
        frame_stack=2,
        history=5,
        dense=32,
        outputs=(OutputSpec(name="throttle_brake", kind="delta"), OutputSpec(name="steering")),
    )
    return save_checkpoint(tmp_path / "step-00000001", model=model, step=1)


def test_policy_acts_on_wrapped_env(checkpoint: Path) -> None:
    policy = BCPolicy.load(checkpoint.parent)
    env = policy.wrap_env(_fakes().FakeDriveEnv(hood=(18, 32), cinematic=(18, 32)))
    obs, _ = env.reset(seed=0)
    assert obs["hood"].shape == (9, 16, 2) and obs["history"].shape == (5, 6)
    for _ in range(3):
        action = policy.predict(obs)
        assert action.shape == (2,) and action.dtype == np.float32 and np.all(np.abs(action) <= 1)
        np.testing.assert_array_equal(action, policy.predict(obs))  # deterministic
        obs, *_ = env.step(action)
    batch = {k: np.stack([v, v]) for k, v in obs.items()}
    np.testing.assert_allclose(
        policy.predict(batch), np.stack([policy.predict(obs)] * 2), atol=1e-6
    )
    image = convcam(policy.model, obs)
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3


def test_unwrapped_observation_gets_a_clear_error(checkpoint: Path) -> None:
    policy = BCPolicy.load(checkpoint)
    obs, _ = _fakes().FakeDriveEnv(hood=(18, 32), cinematic=(18, 32)).reset(seed=0)
    with pytest.raises(ValueError, match="policy.wrap_env"):
        policy.predict(obs)
