"""Evaluation: deterministic per seed, catches the infractions it is shown, ranks agents."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from agents.cli import main
from agents.evaluate import (
    PENALTY_STATIC,
    PENALTY_VEHICLE,
    EvalConfig,
    agent_factory,
    evaluate,
    parse_seeds,
    run_stats,
    score,
)
from tests.agents.helpers import ScriptedAgent, ScriptedInfoEnv

CONFIG = EvalConfig(seeds=(1000,), minutes=0.12)


@pytest.fixture(scope="module")
def report():
    return evaluate(
        dict([agent_factory("expert"), agent_factory("random")]), config=CONFIG, progress=False
    )


def test_expert_scores_high_random_low(report):
    expert, random = report.total("expert"), report.total("random")
    assert expert["driving_score"] > 0.9 and expert["route_completion"] == 1.0
    assert expert["collisions_per_km"] == 0 and expert["autonomy"] == 1.0
    assert random["driving_score"] < 0.1
    assert random["route_completion"] < 0.1


def test_same_seeds_same_numbers(report):
    again = evaluate(
        dict([agent_factory("expert"), agent_factory("random")]), config=CONFIG, progress=False
    )
    a = {k: v for k, v in report.as_dict().items() if k != "wall_s"}
    b = {k: v for k, v in again.as_dict().items() if k != "wall_s"}
    assert a == b


def test_scripted_infractions_are_counted_and_penalised():
    env = ScriptedInfoEnv(
        events={
            10: [{"kind": "collision", "category": "vehicle", "other": "parked_car"}],
            20: [{"kind": "collision", "category": "static", "other": "building"}],
            21: [{"kind": "collision", "category": "static", "other": "pole"}],
        },
        off_road=[30, 31, 32, 50],
    )
    stats = run_stats(env, ScriptedAgent([[0.5, 0.0]]), seed=0, steps=100)
    assert (stats.collisions_vehicle, stats.collisions_static) == (1, 2)
    assert stats.off_road_events == 2 and stats.off_road_frames == 4
    assert stats.route_progress_m == pytest.approx(50.0)
    result = score(stats, reference_progress_m=100.0)
    assert result.route_completion == pytest.approx(0.5)
    expected = 0.5 * PENALTY_VEHICLE * PENALTY_STATIC**2 * (1 - 4 / 100)
    assert result.driving_score == pytest.approx(expected)
    assert result.collisions_per_km == pytest.approx(3 / 0.05)


def test_driving_off_road_in_the_real_world_is_caught():
    """Full lock to the right leaves the road; the score drops below route completion."""
    env = CONFIG.make_env()
    try:
        stats = run_stats(env, ScriptedAgent([[0.6, 1.0]]), seed=1000, steps=240)
    finally:
        env.close()
    assert stats.off_road_events >= 1 and stats.off_road_frames > 0
    result = score(stats, reference_progress_m=100.0)
    assert result.off_road_fraction > 0
    assert result.driving_score < max(result.route_completion, 1e-9) or result.route_completion == 0


def test_eval_command_writes_report(tmp_path: Path, capsys):
    out = tmp_path / "eval"
    code = main(
        [
            "eval",
            "--agent",
            "random",
            "--seeds",
            "1000",
            "--minutes",
            "0.05",
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    assert code == 0
    data = json.loads((out / "report.json").read_text())
    assert set(data["agents"]) == {"random"} and data["seeds"] == [1000]
    assert (out / "report.md").read_text().startswith("# Evaluation")
    assert (out / "totals.png").stat().st_size > 0
    assert "driving_score" in capsys.readouterr().out


def test_parse_seeds_and_bad_agent():
    assert parse_seeds("3-5") == (3, 4, 5)
    assert parse_seeds("1,7") == (1, 7)
    with pytest.raises(ValueError, match="seeds"):
        parse_seeds("5-3")
    with pytest.raises(ValueError, match="neither"):
        agent_factory("no/such/checkpoint")
    assert np.isfinite(PENALTY_VEHICLE)
