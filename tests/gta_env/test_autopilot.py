"""The autopilot is a safe expert; a random driver is not."""

from __future__ import annotations

import numpy as np
import pytest

TOWNS = range(100, 110)
STEPS = 3600  # two minutes of game time per town


def _drive(make_env, policy, steps=STEPS):
    totals = {
        "collisions": 0,
        "unstucks": 0,
        "off_road_frames": 0,
        "distance": 0.0,
        "purposes_reached": 0,
        "reward": 0.0,
    }
    speeds = []
    env = make_env(hood_size=(36, 64), expert_in_info=True)
    rng = np.random.default_rng(0)
    for town in TOWNS:
        _, info = env.reset(seed=town, options={"town_seed": town})
        for _ in range(steps):
            _, reward, term, trunc, info = env.step(policy(info, rng))
            totals["reward"] += reward
            speeds.append(info["speed"])
            assert not term
            if trunc:
                break
        for key in ("collisions", "unstucks", "off_road_frames", "distance", "purposes_reached"):
            totals[key] += info[key]
    totals["mean_speed"] = float(np.mean(speeds))
    return totals


@pytest.mark.slow
def test_autopilot_drives_ten_towns_safely_and_random_does_much_worse(make_env):
    expert = _drive(make_env, lambda info, rng: info["expert_action"])
    print(f"\nautopilot over {len(TOWNS)} towns x 2 min: {expert}")
    assert expert["collisions"] == 0
    assert expert["unstucks"] == 0
    assert expert["off_road_frames"] == 0
    assert expert["mean_speed"] > 7.0  # m/s (~25 km/h average including intersections)
    assert expert["purposes_reached"] >= 2 * len(TOWNS)

    # Random gets half the time per town; it would not catch up with more.
    rand = _drive(make_env, lambda info, rng: rng.uniform(-1, 1, 2).astype(np.float32), STEPS // 2)
    print(f"random over {len(TOWNS)} towns x 1 min: {rand}")
    assert rand["reward"] < expert["reward"] / 20
    assert rand["distance"] < expert["distance"] / 20
    assert rand["purposes_reached"] < expert["purposes_reached"] / 5
    # Random dithers in place: stuck (and teleported) again and again in every town.
    assert rand["unstucks"] + rand["collisions"] + rand["off_road_frames"] >= 3 * len(TOWNS)
