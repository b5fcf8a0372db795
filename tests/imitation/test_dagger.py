"""DAgger recording: the learner drives, the expert labels; the expert takes over when stuck."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from imitation.dagger import PolicyDriver, TakeoverConfig
from imitation.record import Recorder
from imitation.storage import SampleStore, SampleWriter, StorageConfig
from tests.imitation.test_record import ScriptedEnv

FAST = StorageConfig(chunk_samples=32, fsync=False)
GO = np.array([1.0, 0.0], np.float32)
BRAKE = np.array([-1.0, 0.0], np.float32)


class StubbornLearner:
    """Always brakes; remembers what it was told was executed."""

    def __init__(self) -> None:
        self.resets = 0
        self.seen = 0
        self.executed_actions: list[np.ndarray] = []

    def reset(self) -> None:
        self.resets += 1

    def act(self, obs: Any, info: Any) -> np.ndarray:
        self.seen += 1
        return BRAKE.copy()

    def executed(self, action: np.ndarray) -> None:
        self.executed_actions.append(np.asarray(action).copy())


def _drive(driver: PolicyDriver, infos: list[dict[str, Any]], label: np.ndarray) -> list[str]:
    who = []
    for info in infos:
        a = driver({}, info, label)
        who.append(
            "expert" if np.array_equal(a, label) and not np.array_equal(label, BRAKE) else "learner"
        )
    return who


def test_the_expert_takes_over_after_standing_still_while_it_says_go() -> None:
    learner = StubbornLearner()
    driver = PolicyDriver(learner, TakeoverConfig(patience=5, steps=3))
    driver.reset()
    who = _drive(driver, [{"speed": 0.0}] * 12, GO)
    # 4 steps of the learner braking, then 3 of the expert, then the learner again (the
    # standing-still count starts afresh after a takeover).
    assert who[:4] == ["learner"] * 4
    assert who[4:7] == ["expert"] * 3
    assert who[7:11] == ["learner"] * 4 and who[11] == "expert"
    assert driver.takeovers == 2 and driver.learner_steps + driver.expert_steps == 12
    assert learner.seen == 12  # the learner sees every frame, also while the expert drives
    np.testing.assert_array_equal(learner.executed_actions[4], GO)  # told what was applied
    np.testing.assert_array_equal(learner.executed_actions[0], BRAKE)
    assert learner.resets == 1


def test_waiting_where_the_expert_waits_is_not_stuck() -> None:
    driver = PolicyDriver(StubbornLearner(), TakeoverConfig(patience=5, steps=3))
    who = _drive(driver, [{"speed": 0.0}] * 20, BRAKE)  # the expert brakes too: a red light
    assert driver.takeovers == 0 and driver.learner_steps == 20 and set(who) == {"learner"}


@pytest.mark.parametrize(
    "info",
    [
        {"speed": 8.0, "route_deviation": 5.0},
        {"speed": 8.0, "events": [{"kind": "collision", "category": "vehicle"}]},
    ],
)
def test_the_expert_takes_over_off_the_route_and_after_a_collision(info: dict[str, Any]) -> None:
    driver = PolicyDriver(StubbornLearner(), TakeoverConfig(deviation_m=4.0, steps=3))
    calm = {"speed": 8.0, "route_deviation": 0.5}
    who = _drive(driver, [calm, info, calm, calm, calm, calm], GO)
    assert who == ["learner", "expert", "expert", "expert", "learner", "learner"]
    assert driver.takeovers == 1


def test_bad_takeover_settings_name_the_field() -> None:
    with pytest.raises(ValueError, match="TakeoverConfig.patience"):
        TakeoverConfig(patience=0)
    with pytest.raises(ValueError, match="TakeoverConfig.deviation_m"):
        TakeoverConfig(deviation_m=-1.0)
    with pytest.raises(ValueError, match="TakeoverConfig.go"):
        TakeoverConfig(go=2.0)


def test_recorder_with_a_driver_labels_with_the_expert_and_stores_what_was_applied(
    tmp_path: Path,
) -> None:
    expert = np.tile(GO, (50, 1))
    env = ScriptedEnv(expert)
    learner = StubbornLearner()
    driver = PolicyDriver(learner, TakeoverConfig(patience=1000))  # never takes over
    with SampleWriter(tmp_path, config=FAST) as writer:
        stats = Recorder(env, writer=writer, driver=driver).record_episode(
            town_seed=1, episode_id=0, max_steps=40
        )
    store = SampleStore(tmp_path)
    assert len(store) == 40 and stats.perturbed == 40
    np.testing.assert_array_equal(store.column("action"), np.tile(GO, (40, 1)))
    np.testing.assert_array_equal(store.column("executed_action"), np.tile(BRAKE, (40, 1)))
    np.testing.assert_array_equal(np.stack(env.applied), np.tile(BRAKE, (40, 1)))
    assert learner.resets == 1


def _untrained_checkpoint(path: Path) -> Path:
    import torch

    from imitation.checkpoint import save_checkpoint
    from imitation.models import ModelConfig, model_from_config

    torch.manual_seed(0)  # the same untrained weights whatever ran before

    config = ModelConfig(backbone="pilotnet", image_size=(45, 80), dense=32, measurements=16)
    return save_checkpoint(path / "untrained.safetensors", model=model_from_config(config), step=0)


def test_collect_with_a_learner_driving_the_embedded_world(tmp_path: Path) -> None:
    """A real checkpoint drives real towns in worker processes; the expert labels every state."""
    from agents.bc import BCAgent
    from imitation.collect import CollectConfig, collect
    from imitation.noise import NoiseConfig

    ckpt = _untrained_checkpoint(tmp_path)
    result = collect(
        CollectConfig(
            out=tmp_path / "data",
            samples=2 * 120,
            workers=2,
            noise=NoiseConfig.off(),
            driver=functools.partial(BCAgent.from_checkpoint, ckpt),
            # An untrained model soon leaves its line by more than 0.3 m: the expert takes over.
            takeover=TakeoverConfig(patience=15, steps=20, deviation_m=0.3),
            seed=300,
            traffic=2,
            episode_steps=120,
            storage=FAST,
        ),
        progress=False,
    )
    assert result.ok and result.added == 240
    learner = sum(w.learner_steps for w in result.workers)
    assert 0 < learner < sum(w.steps for w in result.workers)  # both drove
    assert "the learner drove" in result.line()
    store = SampleStore(tmp_path / "data")
    labels, executed = store.column("action"), store.column("executed_action")
    assert np.any(np.abs(labels - executed).max(axis=1) > 1e-3)  # the learner's own actions
    assert np.all(np.abs(labels) <= 1.0)


def test_a_driver_that_is_not_callable_fails_early(tmp_path: Path) -> None:
    from imitation.collect import CollectConfig

    with pytest.raises(ValueError, match="CollectConfig.driver"):
        CollectConfig(out=tmp_path, samples=10, driver="runs/bc")  # type: ignore[arg-type]
