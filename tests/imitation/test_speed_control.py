"""The speed controller of target-speed models, and the models that use it."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from imitation.models import ModelConfig, OutputSpec, build_model, default_outputs
from imitation.models.speed import SpeedControl, scale_target, unscale_target


def test_the_controller_stops_holds_and_follows() -> None:
    c = SpeedControl()
    pedal = c.pedal(
        torch.tensor([0.0, 0.0, 10.0, 10.0, 10.0]), torch.tensor([5.0, 0.0, 0.0, 10.0, 14.0])
    )
    assert pedal[0] == -1.0  # moving, told to stop: full brake
    assert pedal[1] == -0.6  # at rest, told to stop: a held brake
    assert pedal[2] == 1.0  # at rest, told to go: full throttle
    assert 0.0 < pedal[3] < 0.2  # at the target: just enough throttle to hold it
    assert pedal[4] < -0.5  # too fast: brake
    # A fuzzy "stop" (a regression head rarely says exactly 0) is a stop, not a creep.
    assert c.pedal(torch.tensor([c.stop_below * 0.9]), torch.tensor([0.0]))[0] < 0


def test_the_controller_matches_the_simulated_car() -> None:
    from gta_env.sim.physics import CarSpec

    spec, c = CarSpec(), SpeedControl()
    assert (c.drag, c.rolling, c.engine_force) == (spec.drag, spec.rolling, spec.engine_force)


def test_on_the_experts_own_target_speed_the_controller_drives_its_route() -> None:
    """Given perfect predictions, a target-speed model drives as the expert does: the pedal it
    lacks (the expert's feed-forward brake before a stop point) does not cost a collision."""
    import gta_env  # noqa: F401

    c = SpeedControl()
    finals = {}
    for mode in ("expert", "controller"):
        env = gym.make("GTA5Drive-v0", backend="sim", hood_size=(36, 64), traffic=8, pedestrians=12)
        try:
            _, info = env.reset(seed=5)
            for _ in range(900):
                action = np.array(info["expert_action"], np.float32)
                if mode == "controller":
                    target = torch.tensor([info["expert_target_speed"]])
                    action[0] = float(c.pedal(target, torch.tensor([info["speed"]]))[0])
                _, _, term, trunc, info = env.step(action)
                assert not (term or trunc)
            finals[mode] = info
        finally:
            env.close()
    assert finals["controller"]["collisions"] == finals["expert"]["collisions"] == 0
    assert finals["controller"]["red_lights"] == 0
    assert finals["controller"]["distance"] > 0.9 * finals["expert"]["distance"] > 100


def test_target_scaling_round_trips_and_clips() -> None:
    v = torch.tensor([0.0, 7.5, 15.0, 30.0])
    np.testing.assert_allclose(scale_target(v, 15.0), [-1.0, 0.0, 1.0, 1.0])
    np.testing.assert_allclose(unscale_target(scale_target(v[:3], 15.0), 15.0), v[:3], atol=1e-6)


def test_decode_turns_the_target_into_a_pedal_only_given_the_speed() -> None:
    model = build_model("pilotnet", image_size=(24, 48), dense=32, speed=False, speed_target=15.0)
    raw = {
        "throttle_brake": torch.tensor([[0.0], [-1.0]]),
        "steering": torch.tensor([[0.3], [0.0]]),
    }
    labels = model.decode(raw)
    np.testing.assert_allclose(labels[:, 0], [0.0, -1.0])  # the scaled targets, as trained
    actions = model.decode(raw, speed=torch.tensor([[0.0], [6.0]]))
    assert actions[0, 0] == 1.0  # 7.5 m/s wanted, standing: full throttle
    assert actions[1, 0] == -1.0  # 0 m/s wanted, moving: full brake
    np.testing.assert_allclose(actions[:, 1], [0.3, 0.0])  # steering is untouched


def test_speed_target_config_is_checked_and_round_trips() -> None:
    config = ModelConfig(speed_target=12.0, speed=False)
    assert ModelConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="speed_target must be a top speed"):
        ModelConfig(speed_target=-1.0)
    with pytest.raises(ValueError, match="needs a regression output named 'throttle_brake'"):
        ModelConfig(speed_target=12.0, outputs=default_outputs(("classification", "regression")))
    with pytest.raises(ValueError, match="overshoot must be > 0"):
        OutputSpec(name="throttle_brake", overshoot=0.0)


def test_overshoot_weighs_errors_above_the_label() -> None:
    spec = OutputSpec(name="throttle_brake", overshoot=3.0)
    per = spec.loss_fn(torch.tensor([[0.5], [-0.5]]), torch.tensor([0.0, 0.0]), None)
    np.testing.assert_allclose(per, [0.75, 0.25])
    symmetric = OutputSpec(name="throttle_brake").loss_fn(
        torch.tensor([[0.5], [-0.5]]), torch.zeros(2), None
    )
    np.testing.assert_allclose(symmetric, [0.25, 0.25])


def test_rl_refuses_a_target_speed_model() -> None:
    from agents.rl.policies import check_convertible

    with pytest.raises(ValueError, match="target-speed output"):
        check_convertible(ModelConfig(speed_target=15.0, speed=False))


def test_a_policy_of_a_target_speed_model_needs_the_measured_speed() -> None:
    from imitation.policy import BCPolicy

    model = build_model("pilotnet", image_size=(24, 48), dense=32, speed=False, speed_target=15.0)
    policy = BCPolicy(model=model, trace=False)
    obs = {"hood": np.zeros((24, 48, 3), np.uint8), "purpose": np.zeros(3, np.float32)}
    with pytest.raises(KeyError, match="'speed'"):
        policy.predict(obs)
    action = policy.predict({**obs, "speed": np.zeros(1, np.float32)})
    assert action.shape == (2,) and -1 <= action[0] <= 1
