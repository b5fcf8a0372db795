"""Evaluation protocols: fixed routes, deterministic, honest endings, CARLA's penalties."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from agents.cli import main
from agents.evaluate import (
    PENALTIES,
    PENALTY_PEDESTRIAN,
    PENALTY_RED_LIGHT,
    PENALTY_STATIC,
    PENALTY_VEHICLE,
    CollisionCounter,
    EvalConfig,
    agent_factory,
    evaluate,
    parse_seeds,
    run_route,
    score,
    where_it_ended,
)
from tests.agents.helpers import ScriptedAgent, ScriptedInfoEnv

# Short routes and a short "blocked" rule keep the module fast; the rules are the protocol's.
CONFIG = EvalConfig(seeds=(1000,), route_m=300.0, intersections=1, blocked_s=20.0)


@pytest.fixture(scope="module")
def report():
    return evaluate(
        dict([agent_factory("expert"), agent_factory("random")]), config=CONFIG, progress=False
    )


def _no_wall_clock(d):
    if isinstance(d, dict):
        return {k: _no_wall_clock(v) for k, v in d.items() if "wall" not in k}
    if isinstance(d, list):
        return [_no_wall_clock(v) for v in d]
    return d


def test_expert_completes_the_route_random_is_blocked(report):
    expert, random = report.total("expert"), report.total("random")
    (row,) = report.results["expert"]
    assert row.stats.end == "completed" and row.route_completion == 1.0
    assert expert["driving_score"] > 0.9 and expert["collisions_per_km"] == 0
    assert expert["red_lights"] == 0
    (rrow,) = report.results["random"]
    assert rrow.stats.end in ("blocked", "timeout")
    assert random["driving_score"] < 0.1 and random["route_completion"] < 0.1
    # Both drove the same route of the protocol's length.
    assert row.stats.route_m == rrow.stats.route_m >= CONFIG.route_m


def test_same_seeds_same_report(report):
    again = evaluate(
        dict([agent_factory("expert"), agent_factory("random")]), config=CONFIG, progress=False
    )
    assert _no_wall_clock(report.as_dict()) == _no_wall_clock(again.as_dict())


def test_town_protocol_is_the_living_town_and_empty_is_not():
    town = EvalConfig().env_settings()
    assert town["traffic"] == 8 and town["pedestrians"] > 0 and town["traffic_lights"]
    assert town["weather"] == "random" and town["route_length"] == 2000.0
    assert town["route_intersections"] == 6
    empty = EvalConfig(protocol="empty").env_settings()
    assert empty["traffic"] == 0 and empty["pedestrians"] == 0
    assert not empty["traffic_lights"] and empty["weather"] == "clear"


def test_a_protocol_route_is_long_and_passes_intersections():
    env = EvalConfig(seeds=(1002,)).make_env(hood_size=(36, 64))
    try:
        _, info = env.reset(seed=1002, options={"town_seed": 1002})
        game = env.unwrapped.game  # type: ignore[attr-defined]
        route = game.fixed_route
        assert info["route_length"] >= 2000.0
        town = game.town
        heads = [town.roads[r].b if f else town.roads[r].a for r, f in route.directed]
        assert sum(len(town.adjacency[n]) >= 3 for n in heads[:-1]) >= 6
    finally:
        env.close()


def test_scripted_infractions_are_counted_and_penalised():
    env = ScriptedInfoEnv(
        events={
            10: [{"kind": "collision", "category": "vehicle", "other": "traffic_car"}],
            20: [{"kind": "collision", "category": "static", "other": "building"}],
            60: [{"kind": "collision", "category": "static", "other": "pole"}],
            30: [{"kind": "collision", "category": "pedestrian", "other": "pedestrian"}],
            40: [{"kind": "red_light"}],
        },
        off_road=[30, 31, 32, 50],
        route_m=100.0,
    )
    stats = run_route(env, ScriptedAgent([[0.5, 0.0]]), seed=0, config=EvalConfig(seeds=(0,)))
    assert stats.end == "completed" and stats.covered_m == pytest.approx(100.0)
    assert (stats.collisions_vehicle, stats.collisions_static) == (1, 2)
    assert (stats.collisions_pedestrian, stats.red_lights) == (1, 1)
    assert stats.off_road_events == 2 and stats.off_road_frames == 4
    result = score(stats)
    assert result.route_completion == pytest.approx(1.0)
    expected = (
        PENALTY_VEHICLE
        * PENALTY_STATIC**2
        * PENALTY_PEDESTRIAN
        * PENALTY_RED_LIGHT
        * (1 - 4 / stats.driving_frames)
    )
    assert result.driving_score == pytest.approx(expected)
    km = stats.distance_m / 1000.0
    assert result.collisions_per_km == pytest.approx(4 / km)
    assert result.red_lights_per_km == pytest.approx(1 / km)
    assert PENALTIES == {"pedestrian": 0.5, "vehicle": 0.6, "static": 0.65, "red_light": 0.7}


def test_collisions_count_by_carlas_rule():
    """A contact is not counted again with the same actor within 5 s, nor within 3 m of a
    counted collision's place, whatever the env reports."""
    c = CollisionCounter()
    walker = {"kind": "collision", "category": "pedestrian", "other": "pedestrian", "actor": 3}
    car = {"kind": "collision", "category": "vehicle", "other": "traffic_car", "actor": 1}
    wall = {"kind": "collision", "category": "static", "other": "wall", "actor": -1}

    def counts(event, x, t):
        c.step((x, 0.0), t)
        return c.counts(event, (x, 0.0), t)

    assert counts(walker, 0.0, 0.0)
    assert not counts(walker, 0.5, 1.0)  # the same walker, 1 s later: not again
    assert not counts(car, 2.0, 2.0)  # another actor, but within 3 m of that place
    assert not counts(walker, 20.0, 3.0)  # the walker again, elsewhere, but only 3 s later...
    assert counts(walker, 20.0, 5.5)  # ... and 5.5 s later: a new collision
    assert counts(car, 30.0, 6.0)  # another actor, elsewhere
    assert counts(walker, 40.0, 7.0)  # the last one hit was the car
    assert counts(wall, 60.0, 10.0) and not counts(wall, 61.0, 11.0)  # statics: place only
    assert counts(wall, 70.0, 12.0)
    assert counts(wall, 60.0, 13.0)  # the car went > 5 m away, the place was forgotten


def test_pressing_against_a_walker_is_one_collision():
    """A learner that stands pressed against a walker touches it every few frames: one
    collision, not one per touch (the env still reports every touch)."""
    touch = [{"kind": "collision", "category": "pedestrian", "other": "pedestrian", "actor": 0}]
    env = ScriptedInfoEnv(events={t: touch for t in range(20, 400, 20)}, stall_at=20, route_m=100.0)
    stats = run_route(
        env, ScriptedAgent([[0.5, 0.0]]), seed=0, config=EvalConfig(seeds=(0,), blocked_s=15.0)
    )
    assert env.collisions > 1
    assert stats.collisions_pedestrian == 1


@pytest.mark.parametrize(
    ("env_kwargs", "end", "covered"),
    [
        ({"stall_at": 100}, "blocked", 50.0),  # stands still after 50 m
        ({"deviate_at": 60}, "deviated", 30.0),  # leaves the route after 30 m
    ],
)
def test_routes_that_cannot_be_finished_end_honestly(env_kwargs, end, covered):
    env = ScriptedInfoEnv(events={}, route_m=1000.0, **env_kwargs)
    config = EvalConfig(seeds=(0,), blocked_s=5.0)
    stats = run_route(env, ScriptedAgent([[0.5, 0.0]]), seed=0, config=config)
    assert stats.end == end
    assert stats.covered_m == pytest.approx(covered, abs=2.0)
    assert score(stats).route_completion == pytest.approx(covered / 1000.0, abs=0.002)


def test_a_slow_agent_times_out():
    # The scripted car covers 0.5 m a step (15 m/s); at a 100 km/h timeout a 1 km route allows
    # 36 s = 1,080 steps, in which it covers 540 m.
    env = ScriptedInfoEnv(events={}, route_m=1000.0)
    stats = run_route(
        env, ScriptedAgent([[0.5, 0.0]]), seed=0, config=EvalConfig(seeds=(0,), timeout_kmh=100.0)
    )
    assert stats.end == "timeout" and stats.steps == 1080
    assert score(stats).route_completion == pytest.approx(0.54)


def test_driving_off_road_in_the_real_world_is_caught():
    """Full lock to the right leaves the road; the score drops below route completion."""
    env = CONFIG.make_env(hood_size=(36, 64))
    try:
        stats = run_route(
            env, ScriptedAgent([[0.6, 1.0]]), seed=1000, config=EvalConfig(blocked_s=8.0)
        )
    finally:
        env.close()
    assert stats.off_road_events >= 1 and stats.off_road_frames > 0
    assert stats.end in ("blocked", "deviated")
    result = score(stats)
    assert result.off_road_fraction > 0
    assert result.driving_score < result.route_completion or result.route_completion == 0


def test_eval_command_writes_report(tmp_path: Path, capsys):
    out = tmp_path / "eval"
    code = main(
        [
            "eval",
            "--agent",
            "random",
            "--seeds",
            "1000",
            "--route-m",
            "200",
            "--intersections",
            "1",
            "--blocked-s",
            "5",
            "--weather",
            "night",
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    assert code == 0
    data = json.loads((out / "report.json").read_text())
    assert set(data["agents"]) == {"random"} and data["seeds"] == [1000]
    assert data["protocol"] == "town"
    assert data["agents"]["random"]["seeds"][0]["weather"] == "night"
    assert "driving_score" in data["agents"]["random"]["total"]
    assert (out / "report.md").read_text().startswith("# Evaluation")
    for png in ("totals.png", "driving_score_per_seed.png", "infractions.png"):
        assert (out / png).stat().st_size > 0
    assert "driving_score" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--protocol", "highway"], "unknown protocol"),
        (["--agent", "no/such/checkpoint"], "neither"),
    ],
)
def test_bad_eval_arguments_say_what_is_wrong(args, message, capsys):
    argv = ["eval", "--agent", "random", "--seeds", "1000", *args, "--no-progress"]
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert message in str(exc.value)


def test_empty_seed_list_and_junk_checkpoint_are_one_line(tmp_path: Path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["eval", "--agent", "random", "--seeds", ",", "--no-progress"])
    assert exc.value.code != 0
    assert "seeds" in capsys.readouterr().err
    junk = tmp_path / "step-00000001.safetensors"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(SystemExit) as exc:
        main(["eval", "--agent", str(junk), "--seeds", "1000", "--no-progress"])
    assert "does not load" in str(exc.value)


def test_parse_seeds_and_bad_config():
    assert parse_seeds("3-5") == (3, 4, 5)
    assert parse_seeds("1,7") == (1, 7)
    with pytest.raises(ValueError, match="seeds"):
        parse_seeds("5-3")
    with pytest.raises(ValueError, match="protocol"):
        EvalConfig(protocol="highway")
    with pytest.raises(ValueError, match="seeds"):
        EvalConfig(seeds=())
    with pytest.raises(ValueError, match="route_m"):
        EvalConfig(route_m=0)
    assert np.isfinite(PENALTY_VEHICLE)


def test_routes_shared_over_processes_give_the_same_report():
    from agents.evaluate import evaluate_specs

    config = EvalConfig(seeds=(1000, 1001), route_m=150.0, intersections=1, blocked_s=10.0)
    one = evaluate_specs(["expert", "random"], config=config, workers=1, progress=False)
    two = evaluate_specs(["expert", "random"], config=config, workers=2, progress=False)
    assert _no_wall_clock(one.as_dict()) == _no_wall_clock(two.as_dict())
    assert [r.stats.seed for r in two.results["expert"]] == [1000, 1001]


def test_a_dual_backbone_checkpoint_is_evaluated_with_the_chase_camera(tmp_path: Path):
    from agents.evaluate import cameras_for, evaluate_specs
    from imitation.models import ModelConfig
    from tests.agents.helpers import write_checkpoint

    dual = ModelConfig(backbone="pilotnet", image_size=(24, 48), dense=16, cinematic_size=(24, 48))
    path = write_checkpoint(tmp_path / "dual" / "step-00000001.safetensors", step=1, config=dual)
    name, factory = agent_factory(str(path))
    assert cameras_for({name: factory}) == ("hood", "cinematic")
    config = EvalConfig(seeds=(1000,), route_m=100.0, intersections=0, blocked_s=3.0)
    report = evaluate_specs([str(path)], config=config, progress=False)
    (row,) = report.results[name]
    assert row.stats.steps > 0 and row.stats.end in ("blocked", "completed", "deviated")


def test_a_checkpoint_gets_the_same_report_twice(tmp_path: Path):
    from tests.agents.helpers import write_checkpoint

    path = write_checkpoint(tmp_path / "run" / "step-00000003.safetensors", step=3, seed=4)
    config = EvalConfig(seeds=(1001,), route_m=100.0, intersections=0, blocked_s=4.0)
    reports = [
        evaluate(dict([agent_factory(str(path))]), config=config, progress=False) for _ in range(2)
    ]
    a, b = (_no_wall_clock(r.as_dict()) for r in reports)
    assert a == b
    assert a["agents"][f"bc:{path.name}"]["seeds"][0]["steps"] > 0


@pytest.mark.slow
def test_the_expert_completes_a_protocol_route_through_busy_intersections():
    """Town 1003's route once deadlocked: a car queued behind the waiting expert held the
    intersection, a third car yielded to it and the expert yielded to the third."""
    report = evaluate(dict([agent_factory("expert")]), config=EvalConfig(seeds=(1003,)))
    (row,) = report.results["expert"]
    assert row.stats.end == "completed" and row.driving_score == 1.0, row


def test_where_a_route_ended_is_told() -> None:
    waiting = {"traffic_light": "red", "stop_line_distance": 4.0, "expert_action": [-0.5, 0.0]}
    assert where_it_ended(waiting) == {"end_light": "red", "end_expert_go": False}
    go = {"traffic_light": "green", "stop_line_distance": 40.0, "expert_action": [1.0, 0.0]}
    assert where_it_ended(go) == {"end_light": "none", "end_expert_go": True}  # line far away
    assert where_it_ended({}) == {"end_light": "none", "end_expert_go": False}  # the game
    # A learner that stands at its start for no reason: blocked where the expert would drive.
    env = CONFIG.make_env()
    try:
        stats = run_route(env, ScriptedAgent([[-1.0, 0.0]]), seed=1000, config=CONFIG)
    finally:
        env.close()
    assert stats.end == "blocked" and stats.end_expert_go
