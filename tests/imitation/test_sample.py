"""Sample validation and the batch format shared by storage, balancing and the trainer."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from imitation.sample import (
    BATCH_DTYPES,
    LIGHT_NONE,
    LIGHT_RANGE,
    LIGHT_UNKNOWN,
    Sample,
    batch_size,
    check_batch,
    light_label,
    stack_samples,
    target_speed_label,
    unstack_batch,
)


def make_sample(
    i: int = 0, *, hood_hw: tuple[int, int] = (6, 8), with_cinematic: bool = False, **kw: Any
) -> Sample:
    rng = np.random.default_rng(i)
    fields: dict[str, Any] = dict(
        hood=rng.integers(0, 256, (*hood_hw, 3), dtype=np.uint8),
        cinematic=rng.integers(0, 256, (4, 5, 3), dtype=np.uint8) if with_cinematic else None,
        action=np.array([0.5, -0.25]),
        executed_action=np.array([0.4, -0.3]),
        speed=12.5,
        purpose=np.array([0.3, 0.6, 0.8]),
        time=i / 30,
        step=i,
        episode_id=2,
        town_id=7,
    )
    fields.update(kw)
    return Sample(**fields)


def test_valid_sample_is_canonical_and_read_only() -> None:
    s = make_sample(3, action=[1, -1], speed=np.float64(0.1))
    assert s.action.dtype == np.float32 and s.action.tolist() == [1.0, -1.0]
    assert s.purpose.dtype == np.float32 and s.executed_action.dtype == np.float32
    assert s.speed == float(np.float32(0.1))
    with pytest.raises(ValueError):
        s.hood[0, 0, 0] = 1
    with pytest.raises(AttributeError):
        s.step = 4  # type: ignore[misc]


def test_equality_is_bitwise() -> None:
    assert make_sample(1) == make_sample(1)
    assert make_sample(1) != make_sample(2)
    assert make_sample(1, with_cinematic=True) != make_sample(1)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("hood", np.zeros((6, 8, 3), np.float32), "Sample.hood must be uint8"),
        ("hood", np.zeros((6, 8), np.uint8), "Sample.hood must be uint8 of shape"),
        ("hood", [[1]], "Sample.hood must be a numpy array"),
        ("cinematic", np.zeros((6, 8, 4), np.uint8), "Sample.cinematic"),
        ("action", [0.1, 0.2, 0.3], r"Sample.action must have shape \(2,\)"),
        ("action", [1.5, 0.0], r"Sample.action must lie in \[-1.0, 1.0\]"),
        ("action", [np.nan, 0.0], "Sample.action must be finite"),
        ("executed_action", [0.0, -1.01], "Sample.executed_action must lie"),
        ("purpose", [0.5, 0.0], r"Sample.purpose must have shape \(3,\)"),
        ("purpose", [-0.1, 0.0, 1.0], r"Sample.purpose\[0\]"),
        ("speed", -1.0, "Sample.speed must be >= 0"),
        ("speed", "fast", "Sample.speed must be a real number"),
        ("time", float("inf"), "Sample.time must be finite"),
        ("step", 1.5, "Sample.step must be an integer"),
        ("step", -1, "Sample.step must be >= 0"),
        ("episode_id", True, "Sample.episode_id must be an integer"),
        ("town_id", -3, "Sample.town_id must be >= 0"),
        ("light", 4, "Sample.light must be -1"),
        ("light", -2, "Sample.light must be >= -1"),
        ("light", "red", "Sample.light must be an integer"),
        ("target_speed", -1.0, "Sample.target_speed must be >= 0 m/s or NaN"),
        ("target_speed", float("inf"), "Sample.target_speed must be >= 0 m/s or NaN"),
    ],
)
def test_invalid_field_is_named(field: str, value: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_sample(**{field: value})


def test_stack_has_the_documented_dtypes_and_shapes() -> None:
    batch = stack_samples([make_sample(i) for i in range(5)])
    assert set(batch) == set(BATCH_DTYPES) - {"cinematic"}
    for key, arr in batch.items():
        assert arr.dtype == BATCH_DTYPES[key], key
    assert batch["hood"].shape == (5, 6, 8, 3)
    assert batch["action"].shape == (5, 2)
    assert batch["executed_action"].shape == (5, 2)
    assert batch["speed"].shape == (5, 1)
    assert batch["purpose"].shape == (5, 3)
    for key in ("time", "step", "episode_id", "town_id", "light", "target_speed"):
        assert batch[key].shape == (5,)
    assert batch_size(batch) == 5
    np.testing.assert_array_equal(batch["step"], np.arange(5))


def test_stack_unstack_round_trip_with_cinematic() -> None:
    samples = [make_sample(i, with_cinematic=True) for i in range(4)]
    batch = stack_samples(samples)
    assert batch["cinematic"].shape == (4, 4, 5, 3)
    assert unstack_batch(batch) == samples


def test_stack_rejects_mixed_frames() -> None:
    with pytest.raises(ValueError, match="at least one sample"):
        stack_samples([])
    with pytest.raises(ValueError, match=r"samples\[1\].hood has shape"):
        stack_samples([make_sample(0), make_sample(1, hood_hw=(7, 8))])
    with pytest.raises(ValueError, match=r"samples\[1\] has a cinematic frame"):
        stack_samples([make_sample(0), make_sample(1, with_cinematic=True)])


def test_check_batch_names_the_bad_key() -> None:
    batch = stack_samples([make_sample(i) for i in range(3)])
    bad = dict(batch, speed=batch["speed"][:, 0])
    with pytest.raises(ValueError, match=r"batch\['speed'\] must have shape \(B, 1\)"):
        check_batch(bad)
    bad = dict(batch, action=batch["action"].astype(np.float64))
    with pytest.raises(ValueError, match=r"batch\['action'\] must be float32"):
        check_batch(bad)
    missing = {k: v for k, v in batch.items() if k != "town_id"}
    with pytest.raises(ValueError, match="missing key 'town_id'"):
        check_batch(missing)
    with pytest.raises(ValueError, match="unknown keys"):
        check_batch(dict(batch, extra=batch["step"]))


def test_light_label_follows_the_env_info() -> None:
    assert light_label({}) == LIGHT_UNKNOWN  # an env without lights (the game)
    assert light_label({"traffic_light": None, "stop_line_distance": float("inf")}) == LIGHT_NONE
    assert light_label({"traffic_light": "red", "stop_line_distance": 12.0}) == 2
    assert light_label({"traffic_light": "green", "stop_line_distance": 0.5}) == 0
    assert light_label({"traffic_light": "amber", "stop_line_distance": 30.0}) == 1
    far = {"traffic_light": "red", "stop_line_distance": LIGHT_RANGE + 1.0}
    assert light_label(far) == LIGHT_NONE


def test_light_is_optional_in_batches_and_round_trips() -> None:
    samples = [make_sample(i, light=i % 4) for i in range(4)]
    batch = stack_samples(samples)
    assert batch["light"].tolist() == [0, 1, 2, 3]
    assert unstack_batch(batch) == samples
    del batch["light"]
    check_batch(batch)  # still a valid batch
    assert [s.light for s in unstack_batch(batch)] == [LIGHT_UNKNOWN] * 4
    assert make_sample(0, light=2) != make_sample(0)


def test_target_speed_is_optional_and_unknown_is_nan() -> None:
    assert target_speed_label({}) != target_speed_label({})  # NaN: the env did not say
    assert target_speed_label({"expert_target_speed": 7.25}) == 7.25
    samples = [make_sample(i, target_speed=float(i)) for i in range(3)] + [make_sample(3)]
    batch = stack_samples(samples)
    assert batch["target_speed"][:3].tolist() == [0.0, 1.0, 2.0]
    assert np.isnan(batch["target_speed"][3])
    assert unstack_batch(batch) == samples  # NaN equals NaN here: both unknown
    del batch["target_speed"]
    check_batch(batch)
    assert all(np.isnan(s.target_speed) for s in unstack_batch(batch))
    assert make_sample(0, target_speed=3.0) != make_sample(0)
