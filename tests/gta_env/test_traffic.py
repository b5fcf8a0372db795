"""Traffic cars: no overlap at spawn, they drive on the road, and the expert avoids them."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from gta_env.game import Controls
from gta_env.sim.game import SimConfig, SimGame
from gta_env.sim.traffic import CAR_HALF

# A car's box fits in a circle of this radius: centres further apart than twice it never overlap.
_CAR_RADIUS = float(np.hypot(CAR_HALF[0], CAR_HALF[1]))


@pytest.fixture
def game():
    made: list[SimGame] = []

    def factory(traffic: int) -> SimGame:
        g = SimGame(SimConfig(hood_size=(36, 64), traffic=traffic))
        made.append(g)
        return g

    yield factory
    for g in made:
        g.close()


def test_traffic_cars_never_overlap_at_spawn(game) -> None:
    g = game(12)
    spawned = 0
    for seed in range(5):
        g.load(seed)
        assert g.traffic is not None and g.town is not None
        pos = g.traffic.positions()
        spawned += len(pos)
        for (ax, ay), (bx, by) in itertools.combinations(pos, 2):
            assert np.hypot(ax - bx, ay - by) > 2 * _CAR_RADIUS, f"town {seed}: cars overlap"
        px, py = g.car.position  # type: ignore[union-attr]
        assert np.all(np.hypot(pos[:, 0] - px, pos[:, 1] - py) > 2 * _CAR_RADIUS)
        assert all(g.town.on_road(x, y) for x, y in pos)
    assert spawned >= 5 * 8  # most towns fit all 12; none is left nearly empty


def test_traffic_cars_move_along_the_road(game) -> None:
    g = game(8)
    for seed in (3,):
        g.load(seed)
        assert g.traffic is not None and g.town is not None
        start = g.traffic.positions()
        travelled = np.zeros(len(start))
        prev = start
        for _ in range(450):  # 15 s; the player's car stands braking
            g.step(Controls(0.0, 1.0, 0.0))
            pos = g.traffic.positions()
            travelled += np.hypot(*(pos - prev).T)
            prev = pos
            off = [(x, y) for x, y in pos if not g.town.on_road(x, y)]
            assert not off, f"town {seed}: traffic off the road at {off}"
        # Most cars drove on (one may wait behind the braking player).
        assert np.median(travelled) > 45.0, travelled
        assert travelled.max() < 15 * 12.0  # never faster than ~cruise speed


@pytest.mark.slow
def test_expert_drives_ten_towns_with_traffic(make_env) -> None:
    """The issue asks for 0 collisions; the number is printed either way."""
    env = make_env(hood_size=(36, 64), traffic=8)
    totals = {"collisions": 0, "unstucks": 0, "off_road_frames": 0, "distance": 0.0}
    per_town = {}
    for town in range(100, 110):
        _, info = env.reset(seed=town, options={"town_seed": town})
        for _ in range(3600):  # two minutes of game time
            _, _, term, trunc, info = env.step(info["expert_action"])
            if term or trunc:
                break
        per_town[town] = int(info["collisions"])
        for key in totals:
            totals[key] += info[key]
    print(
        f"\nexpert with traffic=8 over 10 towns x 2 min: {totals}; collisions per town {per_town}"
    )
    assert totals["distance"] > 10 * 500.0
    assert totals["collisions"] == 0, f"collisions per town: {per_town}"
