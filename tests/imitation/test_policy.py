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


@pytest.mark.parametrize("measurements", [0, 16])
def test_traced_model_predicts_what_the_model_predicts(
    checkpoint: Path, tmp_path: Path, measurements: int
) -> None:
    if measurements:
        torch.manual_seed(3)
        model = build_model("pilotnet", image_size=(9, 16), dense=32, measurements=measurements)
        checkpoint = save_checkpoint(tmp_path / "step-00000002", model=model, step=2)
    traced, eager = BCPolicy.load(checkpoint), BCPolicy.load(checkpoint)
    eager.trace = False
    assert traced.trace  # the default on the CPU
    env = traced.wrap_env(_fakes().FakeDriveEnv(hood=(18, 32), cinematic=(18, 32)))
    obs, _ = env.reset(seed=1)
    for _ in range(4):
        action = traced.predict(obs)
        np.testing.assert_allclose(action, eager.predict(obs), atol=1e-6)
        obs, *_ = env.step(action)
    batch = {k: np.stack([v] * 3) for k, v in obs.items()}
    np.testing.assert_allclose(traced.predict(batch), eager.predict(batch), atol=1e-6)
    assert len(traced._traced) == 2  # one trace per input shape (batch of 1, batch of 3)
    assert all(isinstance(f, torch.jit.ScriptModule) for f in traced._traced.values())
