"""DART-style noise: seeded, held perturbations on executed actions; labels stay clean."""

from __future__ import annotations

import numpy as np
import pytest

from imitation.noise import ActionNoise, NoiseConfig, OutputNoise


def run(noise: ActionNoise, actions: np.ndarray) -> np.ndarray:
    return np.stack([noise(a) for a in actions])


def test_off_is_identity_and_draws_nothing() -> None:
    rng = np.random.default_rng(0)
    noise = ActionNoise(config=NoiseConfig.off(), rng=rng)
    actions = np.random.default_rng(1).uniform(-1, 1, (500, 2)).astype(np.float32)
    np.testing.assert_array_equal(run(noise, actions), actions)
    assert noise.perturbations == 0
    assert rng.random() == np.random.default_rng(0).random()  # no randomness consumed


def test_perturbations_are_held_offsets_within_magnitude() -> None:
    config = NoiseConfig(steering=OutputNoise(probability=0.05, magnitude=0.4, duration=(5, 8)))
    noise = ActionNoise(config=config, rng=np.random.default_rng(3))
    clean = np.zeros((3000, 2), np.float32)
    executed = run(noise, clean)
    offset = executed - clean
    assert np.all(offset[:, 0] == 0.0)  # throttle_brake has no noise
    steer = offset[:, 1]
    nonzero = np.abs(steer[steer != 0])
    assert nonzero.size and nonzero.min() >= 0.2 - 1e-6 and nonzero.max() <= 0.4 + 1e-6
    # Runs of one constant offset last 5..8 steps (a run may be followed at once by another).
    runs, start = [], 0
    for i in range(1, len(steer) + 1):
        if i == len(steer) or steer[i] != steer[start]:
            if steer[start] != 0 and start > 0 and i < len(steer):
                runs.append(i - start)
            start = i
    assert runs and min(runs) >= 5 and max(runs) <= 8
    # Long-run share of perturbed steps ~ p*d / (1 + p*d) with d = 6.5 -> ~0.25.
    assert 0.15 < np.mean(steer != 0) < 0.35
    assert noise.perturbations >= len(runs)


def test_clipped_to_bounds_and_seeded() -> None:
    config = NoiseConfig(
        throttle_brake=OutputNoise(probability=0.5, magnitude=1.0, duration=(1, 3)),
        steering=OutputNoise(probability=0.5, magnitude=1.0, duration=(1, 3)),
    )
    actions = np.full((400, 2), 0.9, np.float32)
    one = run(ActionNoise(config=config, rng=np.random.default_rng(5)), actions)
    two = run(ActionNoise(config=config, rng=np.random.default_rng(5)), actions)
    np.testing.assert_array_equal(one, two)
    assert one.max() == 1.0 and one.min() >= -1.0
    assert not np.array_equal(
        one, run(ActionNoise(config=config, rng=np.random.default_rng(6)), actions)
    )


def test_reset_ends_a_perturbation() -> None:
    config = NoiseConfig(steering=OutputNoise(probability=1.0, magnitude=0.5, duration=(50, 50)))
    noise = ActionNoise(config=config, rng=np.random.default_rng(0))
    assert noise(np.zeros(2))[1] != 0
    noise.reset()
    assert np.all(noise.offset == 0)


def test_parse_and_describe_round_trip() -> None:
    assert NoiseConfig.parse("off") == NoiseConfig.off()
    assert NoiseConfig.parse("default") == NoiseConfig.default()
    text = "steering=0.03/0.3/5-20,throttle_brake=0.01/0.5/10"
    config = NoiseConfig.parse(text)
    assert config.steering == OutputNoise(probability=0.03, magnitude=0.3, duration=(5, 20))
    assert config.throttle_brake.duration == (10, 10)
    assert NoiseConfig.parse(config.describe()) == config
    for bad in [
        "loud",
        "steer=0.1/0.1/1",
        "steering=0.1/0.1",
        "steering=2/0.1/1",
        "steering=0.1/0.1/9-3",
    ]:
        with pytest.raises(ValueError, match="noise"):
            NoiseConfig.parse(bad)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="probability"):
        OutputNoise(probability=1.5)
    with pytest.raises(ValueError, match="Generator"):
        ActionNoise(config=NoiseConfig.off(), rng=0)  # type: ignore[arg-type]
    noise = ActionNoise(config=NoiseConfig.default(), rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="finite"):
        noise(np.array([np.nan, 0.0]))
