"""The embedded world: towns, pictures, physics and the autopilot expert."""

from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import pytest

from gta_env.game import Controls
from gta_env.purpose import purpose_vector
from gta_env.sim.game import SimConfig, SimGame
from gta_env.sim.scene import ASPHALT, CENTRE_LINE, EDGE_LINE, Lighting
from gta_env.sim.town import TownConfig, generate_town
from gta_env.unstuck import StuckDetector


def test_towns_are_deterministic_and_differ_by_seed():
    a, b, c = generate_town(11), generate_town(11), generate_town(12)
    assert np.array_equal(a.nodes, b.nodes)
    assert [r.points.tobytes() for r in a.roads] == [r.points.tobytes() for r in b.roads]
    assert a.props == b.props
    assert not np.allclose(a.nodes, c.nodes)


def test_town_has_the_ingredients_and_no_dead_ends():
    town = generate_town(3)
    kinds = {p.kind for p in town.props}
    assert {"building", "pole", "tree", "parked_car"} <= kinds
    degrees = [len(town.adjacency[i]) for i in range(len(town.nodes))]
    assert min(degrees) >= 2 and max(degrees) >= 3  # intersections, never a dead end
    # Straight roads and curves of varied radius: total turning differs between roads.
    bends = []
    for road in town.roads:
        d = np.diff(road.points, axis=0)
        theta = np.unwrap(np.arctan2(d[:, 1], d[:, 0]))
        bends.append(np.abs(np.diff(theta)).sum())
    assert min(bends) < 0.05 and max(bends) > 0.5
    # Nothing solid stands on the road.
    for p in town.props:
        if p.kind in {"building", "pole", "tree", "parked_car"}:
            assert not town.on_road(p.x, p.y), p


def test_town_config_validation():
    with pytest.raises(ValueError, match="grid"):
        TownConfig(grid=(1, 3))


def test_routes_never_make_u_turns():
    town = generate_town(5)
    for target in range(len(town.nodes)):
        path = town.shortest_route(0, True, target)
        for (r1, f1), (r2, _) in zip(path, path[1:], strict=False):
            head = town.roads[r1].b if f1 else town.roads[r1].a
            assert head in (town.roads[r2].a, town.roads[r2].b)
            assert r1 != r2


def _color(rgb, town):
    return Lighting(town.sun, town.sun_color, town.ambient).shade(rgb, np.array([0, 0, 1.0]))[:3]


def _near(img, color, tol=2):
    return np.all(np.abs(img.astype(int) - np.asarray(color, int)) <= tol, axis=-1)


def test_cameras_show_sky_road_and_markings(tmp_path):
    game = SimGame(SimConfig(cameras=("hood", "cinematic")))
    try:
        game.load(2)
        game.new_purpose(np.random.default_rng(0))
        for _ in range(60):  # drive a little so the view is a typical one
            game.step(game.expert_action())
        frames = game.render(("hood", "cinematic"))
        town = game.town
        for name, img in frames.items():
            iio.imwrite(tmp_path / f"{name}.png", img)
            assert (tmp_path / f"{name}.png").stat().st_size > 1000
        hood, chase = frames["hood"], frames["cinematic"]
        h, w, _ = hood.shape
        sky = np.round(np.array(town.sky) * 255)
        road = _color(ASPHALT, town)
        yellow = _color(CENTRE_LINE, town)
        white = _color(EDGE_LINE, town)
        # Sky fills a good part of the top rows, never the bottom ones.
        assert _near(hood[: h // 6], sky).mean() > 0.2
        assert _near(hood[h // 2 :], sky).mean() == 0.0
        # Asphalt right ahead of the bonnet, in the lower-middle of the picture.
        band = hood[int(h * 0.6) : int(h * 0.75), w // 3 : 2 * w // 3]
        assert _near(band, road).mean() > 0.5
        # The car drives in the right lane: the yellow centre line is left of the middle,
        # white edge lines are on both sides; no markings in the sky.
        lower = hood[h // 2 :]
        ys, xs = np.nonzero(_near(lower, yellow, tol=6))
        assert len(xs) > 0 and np.median(xs) < w / 2
        _, wx = np.nonzero(_near(lower, white, tol=6))
        assert (wx < w / 2).any() and (wx > w / 2).any()
        assert not _near(hood[: h // 3], yellow, tol=6).any()
        # The chase camera sees the (red) player car in its lower middle, and sky on top.
        ch, cw, _ = chase.shape
        car = chase[int(ch * 0.55) : int(ch * 0.95), int(cw * 0.35) : int(cw * 0.65)].astype(int)
        assert ((car[..., 0] > car[..., 1] + 60) & (car[..., 0] > car[..., 2] + 60)).mean() > 0.3
        assert _near(chase[: ch // 6], sky).mean() > 0.2
        assert hood.std() > 20 and chase.std() > 20  # not blank, not all grey
    finally:
        game.close()


def test_fade_darkens_the_picture():
    game = SimGame(SimConfig())
    try:
        game.load(0)
        game.new_purpose(np.random.default_rng(0))
        normal = game.render(("hood",))["hood"].astype(float).mean()
        game.set_fade(0.5)
        half = game.render(("hood",))["hood"].astype(float).mean()
        game.set_fade(1.0)
        black = game.render(("hood",))["hood"]
        assert half == pytest.approx(normal / 2, rel=0.05)
        assert black.max() == 0
    finally:
        game.close()


def test_collisions_say_what_was_hit():
    game = SimGame(SimConfig(cameras=()))
    try:
        game.load(3)
        game.new_purpose(np.random.default_rng(0))
        town = game.town
        x0, y0, x1, y1 = town.bounds

        def clear_approach(b):  # nothing else within 3 m of the 9 m run-up south of b
            start = b.y - b.depth / 2 - 9.0
            return start > y0 + 5 and not any(
                q is not b and abs(q.x - b.x) < 3 + q.width and start - 3 < q.y < b.y
                for q in town.props
            )

        building = next(p for p in town.props if p.kind == "building" and clear_approach(p))
        # Park the car 8 m south of a building facing north, then accelerate into it.
        game.car.place(building.x, building.y - building.depth / 2 - 8.0, 0.0)
        hits = []
        for _ in range(150):
            hits += game.step(Controls(1.0, 0.0, 0.0)).collisions
        assert [(h.kind, h.other) for h in hits][:1] == [("static", "building")]
        assert len(hits) == 1  # pressing against it is one collision, not one per frame
    finally:
        game.close()


def test_purpose_vector_geometry():
    ahead = purpose_vector((0, 0), 0.0, (0, 30), 300.0)
    right = purpose_vector((0, 0), 0.0, (30, 0), 300.0)
    behind_far = purpose_vector((0, 0), 0.0, (0, -900), 300.0)
    assert np.allclose(ahead, [0.1, 0, 1], atol=1e-6)
    assert np.allclose(right, [0.1, 1, 0], atol=1e-6)
    assert np.allclose(behind_far, [1.0, 0, -1], atol=1e-6)
    # Heading pi/2 faces -x: a point at -x is straight ahead.
    assert np.allclose(purpose_vector((0, 0), np.pi / 2, (-10, 0), 100.0), [0.1, 0, 1], atol=1e-6)


def test_stuck_detector_needs_a_full_window():
    det = StuckDetector(window=5, min_distance=2.0)
    assert not any(det.update((0.0, 0.0)) for _ in range(4))
    assert det.update((0.0, 0.0))
    det.reset()
    assert not det.update((0.0, 0.0))
    moving = StuckDetector(window=5, min_distance=2.0)
    assert not any(moving.update((float(i), 0.0)) for i in range(20))
    with pytest.raises(ValueError):
        StuckDetector(window=1, min_distance=1.0)


def test_the_autopilot_sensor_never_sees_its_own_car():
    game = SimGame(SimConfig(cameras=()))
    try:
        game.load(102)
        game.new_purpose(np.random.default_rng(0))
        game.step(Controls(0.0, 1.0, 0.0))
        x, y = game.car.position
        # A ray straight through the player's car (as the look-ahead rays pass through its
        # front corner in a tight turn) sees nothing ...
        assert game.physics.ray_hit((x - 5, y, 0.7), (x + 5, y, 0.7)) == ""
        assert game.physics.ray_hit((x, y - 5, 0.7), (x, y + 5, 0.7)) == ""
        # ... while a ray through a building does.
        b = next(p for p in game.town.props if p.kind == "building")
        assert game.physics.ray_hit((b.x, b.y - 30, 1.0), (b.x, b.y, 1.0)) != ""
    finally:
        game.close()


def test_the_pruned_ray_sweep_finds_what_the_full_sweep_finds(monkeypatch):
    """The expert's look-ahead casts only the pieces a conservative test says could be blocked
    (static solids from a grid, traffic and walkers by distance); along a drive through traffic,
    walkers and queues it returns the same distance as casting every ray, and it does skip."""
    game = SimGame(SimConfig(cameras=(), traffic=8, pedestrians=24))
    try:
        game.load(3)
        game.new_purpose(np.random.default_rng(0))
        pruning = game._may_block
        pieces = {"all": 0, "skipped": 0}

        def counted(a, b):
            maybe = pruning(a, b)
            pieces["all"] += len(maybe)
            pieces["skipped"] += int((~maybe).sum())
            return maybe

        def cast(may_block, route, s, reach):
            monkeypatch.setattr(game, "_may_block", may_block, raising=False)
            return game._cast_rays(route, s, reach)

        compared = hits = 0
        for frame in range(1200):
            monkeypatch.setattr(game, "_may_block", pruning, raising=False)
            game.step(game.expert_action())
            if frame % 3:
                continue
            route, s = game.route, game._s
            for reach in (12.0, 40.0):
                pruned = cast(counted, route, s, reach)
                everything = cast(lambda a, b: np.ones(len(a), bool), route, s, reach)
                assert pruned == everything, (frame, reach, pruned, everything)
                compared += 1
                hits += np.isfinite(everything)
        assert hits > 10  # the drive met cars, walkers or solids ahead
        assert pieces["skipped"] > pieces["all"] / 2  # most pieces were not cast
    finally:
        game.close()


def _expert_underway(config: SimConfig, *, steps: int) -> SimGame:
    """Town 3 with the expert ``steps`` frames into its drive."""
    game = SimGame(config)
    game.load(3)
    game.new_purpose(np.random.default_rng(0))
    for _ in range(steps):
        game.step(game.expert_action())
    return game


def test_the_expert_brakes_for_a_car_touching_its_bumper():
    """A car standing right against the front bumper (the rays from 3 m ahead would start
    inside it) is seen: the look-ahead reports it, and the expert brakes instead of pushing."""
    game = _expert_underway(SimConfig(cameras=(), traffic=1), steps=60)
    try:
        route, s = game.route, game._s
        # The traffic car 4.4 m ahead along the route (its rear 0.05 m from our bumper).
        p, q = route.points_lerp(np.array([s + 4.4, s + 5.4]))
        heading = float(np.arctan2(-(q[0] - p[0]), q[1] - p[1]))
        traffic = game.traffic
        traffic._positions[0] = p
        traffic._headings[0] = heading
        traffic.nodes[0].setPosHpr(float(p[0]), float(p[1]), 0.0, float(np.degrees(heading)), 0, 0)
        game.physics.world.doPhysics(1e-4, 1, 1e-4)  # the broadphase learns the new pose
        seen = game._cast_rays(route, s, 30.0)
        assert seen < 3.0
        game._ray_memo = ((None,), float("inf"))
        assert game.expert_action().brake > 0.5
    finally:
        game.close()


@pytest.mark.parametrize("offset", [-1.2, -0.95, -0.45, 0.0, 0.45, 0.95, 1.2])
def test_the_expert_sees_a_walker_anywhere_across_its_path(offset):
    """A walker (0.6 × 0.5 m) standing 8 m ahead is seen wherever it stands across the car's
    width and a little beyond it: the sweep's rays lie closer together than a walker is wide
    (with three rays 0.9 m apart, one at 0.45 m stood between them, and the expert drove into
    a walker crossing in front of it)."""
    game = _expert_underway(SimConfig(cameras=(), pedestrians=1), steps=30)
    try:
        route, s = game.route, game._s
        p, q = route.points_lerp(np.array([s + 8.0, s + 9.0]))
        d = (q - p) / np.linalg.norm(q - p)
        right = np.array([d[1], -d[0]])
        xy = p + right * offset
        walkers = game.pedestrians
        walkers._positions[0] = xy
        heading = float(np.degrees(np.arctan2(-d[0], d[1])))  # facing along the path: 0.5 m across
        walkers.nodes[0].setPosHpr(float(xy[0]), float(xy[1]), 0.0, heading, 0, 0)
        game.physics.world.doPhysics(1e-4, 1, 1e-4)
        assert game._cast_rays(route, s, 30.0) < 9.0, offset
    finally:
        game.close()
