"""Evaluation protocols: fixed routes in the living town, infractions and a driving score.

Modelled on the CARLA leaderboard. Every agent drives the same **fixed route** per town seed
(``env.reset(seed=s, options={"town_seed": s})`` with ``route_length`` set: the same seed gives
the same town, route, traffic, walkers and weather), and is scored the same way, the expert
included:

* **route completion**: metres of the route covered, in order, divided by its length
  (absolute; the expert need not reach 1.0);
* **infractions** by kind, each multiplying the score by its CARLA penalty factor:
  pedestrian 0.50, vehicle 0.60, static object 0.65, red light 0.70; off-road driving
  multiplies it by the share of frames on the road. Contacts count as collisions by CARLA's
  rule (:class:`CollisionCounter`): not again with the same car or walker within 5 s, nor
  within 3 m of where a counted one happened, so a car pressed against a walker has one
  collision, not one per touch;
* **driving score** = completion × penalties, per route; an agent's total is the mean over
  routes.

A route ends when it is completed, at its **timeout** (route length at ``timeout_kmh``), when
the agent is **blocked** (less than ``blocked_speed`` × ``blocked_s`` of progress along the
route over the last ``blocked_s`` of game time, 0.1 m/s over 90 s by default: CARLA's
``AgentBlockedTest`` speed, as route progress; waiting at a red light or for a walker counts
too, as in CARLA) or when it **deviates** more than
``deviation_m`` from the route for ``deviation_s``. Nothing teleports an agent back.

Protocols (``EvalConfig.protocol``):

* ``town`` (default): routes of at least 2 km through at least 6 intersections, with 8 traffic
  cars, 24 pedestrians, traffic lights and weather drawn per route (clear, overcast, fog, dusk,
  night, rain);
* ``empty``: the same routes with no traffic, no pedestrians, no lights and clear weather, for
  comparison with the project's earlier results.

Also reported: collisions and red lights per km, mean speed, the end reason and where the route
ended (``end_light``: the light ahead then, if its stop line was within 15 m; ``end_expert_go``:
whether the expert would have driven on from there, which tells a learner that stood still for no
reason from one that waited), autonomy (the
share of the route's game time driven without an unstuck teleport: 1.0 under these
protocols, which end a route instead), game and wall time, and route-km evaluated per
wall-minute.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from agents.base import Agent
from gta_env.fields import parse_seeds as parse_seeds  # re-exported: the one seed-list parser

PENALTIES: dict[str, float] = {
    "pedestrian": 0.50,
    "vehicle": 0.60,
    "static": 0.65,
    "red_light": 0.70,
}
"""Driving-score factor per infraction of each kind (CARLA leaderboard)."""
PENALTY_PEDESTRIAN = PENALTIES["pedestrian"]
PENALTY_VEHICLE = PENALTIES["vehicle"]
PENALTY_STATIC = PENALTIES["static"]
PENALTY_RED_LIGHT = PENALTIES["red_light"]
INTERVENTION_S = 6.0
"""Seconds one intervention (unstuck) costs in the autonomy measure (PilotNet)."""

PROTOCOLS: dict[str, dict[str, Any]] = {
    "town": {"traffic": 8, "pedestrians": 24, "traffic_lights": True, "weather": "random"},
    "empty": {"traffic": 0, "pedestrians": 0, "traffic_lights": False, "weather": "clear"},
}
"""The living-town settings of each protocol."""

END_REASONS = ("completed", "timeout", "blocked", "deviated")

COLLISION_SAME_ACTOR_S = 5.0
"""The last car or walker hit is not counted again for this many game seconds (CARLA's
``MAX_ID_TIME``)."""
COLLISION_SAME_PLACE_M = 3.0
"""A contact this close to where a counted collision happened is the same collision (CARLA's
``MIN_AREA_OF_COLLISION``)."""
COLLISION_FORGET_M = 5.0
"""A counted collision's place is forgotten once the car is further from it (CARLA's
``MAX_AREA_OF_COLLISION``)."""


class CollisionCounter:
    """Which contacts count as collisions: the CARLA leaderboard's rule.

    The env reports every contact that starts (a car touching the same kind of body again after
    half a second is a new one); a learner that presses against the car in front, or nudges a
    walker while creeping, touches it many times. CARLA's ``CollisionTest`` counts a contact
    unless it is with the same actor as the last counted one within
    :data:`COLLISION_SAME_ACTOR_S`, or the car is within :data:`COLLISION_SAME_PLACE_M` of a
    counted collision's place (places are forgotten beyond :data:`COLLISION_FORGET_M`). Static
    bodies have no identity (CARLA's id 0), so only the place rule applies to them.
    """

    def __init__(self) -> None:
        self._places: list[tuple[float, float]] = []
        self._last_actor: tuple[str, int] | None = None
        self._last_t = -np.inf

    def step(self, position: Sequence[float], t: float) -> None:
        """Forget what is far or long ago; call once per step before :meth:`counts`."""
        x, y = float(position[0]), float(position[1])
        self._places = [
            p for p in self._places if np.hypot(x - p[0], y - p[1]) <= COLLISION_FORGET_M
        ]
        if t - self._last_t > COLLISION_SAME_ACTOR_S:
            self._last_actor = None

    def counts(self, event: Mapping[str, Any], position: Sequence[float], t: float) -> bool:
        """Whether the contact ``event`` (an ``info["events"]`` collision) is a new collision."""
        actor = int(event.get("actor", -1))
        key = (str(event.get("other", "")), actor)
        if actor >= 0 and key == self._last_actor:
            return False
        x, y = float(position[0]), float(position[1])
        if any(np.hypot(x - p[0], y - p[1]) <= COLLISION_SAME_PLACE_M for p in self._places):
            return False
        self._places.append((x, y))
        self._last_t = t
        if actor >= 0:
            self._last_actor = key
        return True


AgentFactory = Callable[[gym.Env, int], Agent]
"""Makes an agent for an env and a town seed (a fresh agent per seed keeps runs independent)."""


@dataclass(frozen=True, kw_only=True)
class EvalConfig:
    """What an evaluation runs.

    Attributes:
        protocol: ``town`` (living town: traffic, pedestrians, lights, weather per route) or
            ``empty`` (no traffic, no pedestrians, no lights, clear).
        seeds: town seeds, one fixed route each (held out from training).
        route_m: a route's least length, metres (the protocols use 2,000).
        intersections: the least number of intersections a route passes.
        timeout_kmh: a route times out after its length at this speed.
        blocked_s: less than ``blocked_speed`` × this many metres of progress along the route
            over the last this many game seconds ends it ...
        blocked_speed: ... m/s (CARLA's blocked threshold, 0.1 m/s).
        deviation_m: further than this from the route ...
        deviation_s: ... for this many game seconds ends it.
        env_kwargs: more `GTA5Drive-v0` settings (``backend`` defaults to ``"sim"``); they
            override the protocol's.
    """

    protocol: str = "town"
    seeds: tuple[int, ...] = (1000, 1001, 1002)
    route_m: float = 2000.0
    intersections: int = 6
    timeout_kmh: float = 10.0
    blocked_s: float = 90.0
    blocked_speed: float = 0.1
    deviation_m: float = 30.0
    deviation_s: float = 3.0
    env_kwargs: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"unknown protocol {self.protocol!r}; choose from {sorted(PROTOCOLS)}")
        object.__setattr__(self, "seeds", tuple(int(s) for s in self.seeds))
        if not self.seeds:
            raise ValueError("EvalConfig.seeds must name at least one town seed")
        if any(s < 0 for s in self.seeds):
            raise ValueError(f"EvalConfig.seeds must be >= 0, got {self.seeds}")
        for name in (
            "route_m",
            "timeout_kmh",
            "blocked_s",
            "blocked_speed",
            "deviation_m",
            "deviation_s",
        ):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and np.isfinite(value) and value > 0):
                raise ValueError(f"EvalConfig.{name} must be a number > 0, got {value!r}")
        if not isinstance(self.intersections, int) or self.intersections < 0:
            raise ValueError(
                f"EvalConfig.intersections must be an integer >= 0, got {self.intersections!r}"
            )

    def env_settings(self) -> dict[str, Any]:
        """The `GTA5Drive-v0` keyword arguments of this protocol."""
        return {
            "backend": "sim",
            **PROTOCOLS[self.protocol],
            "route_length": float(self.route_m),
            "route_intersections": self.intersections,
            "on_stuck": "truncate",
            "stuck_window": float(self.blocked_s),
            **dict(self.env_kwargs),
        }

    def make_env(self, **overrides: Any) -> gym.Env:
        """The evaluation environment (no time limit: routes end by the protocol's rules)."""
        import gta_env  # noqa: F401  (registers GTA5Drive-v0)

        kwargs = {**self.env_settings(), **overrides}
        return gym.make("GTA5Drive-v0", max_episode_steps=10**9, **kwargs)


@dataclass(frozen=True, kw_only=True)
class RunStats:
    """What happened to one agent on one route."""

    agent: str
    seed: int
    weather: str
    route_m: float
    covered_m: float
    end: str
    steps: int
    game_s: float
    wall_s: float
    distance_m: float
    collisions_pedestrian: int
    collisions_vehicle: int
    collisions_static: int
    red_lights: int
    off_road_events: int
    off_road_frames: int
    driving_frames: int
    unstucks: int
    mean_speed_kmh: float
    end_light: str = "none"
    end_expert_go: bool = False


@dataclass(frozen=True, kw_only=True)
class SeedResult:
    """Scores of one agent on one route."""

    stats: RunStats
    route_completion: float
    off_road_fraction: float
    infraction_penalty: float
    driving_score: float
    collisions_per_km: float
    red_lights_per_km: float
    autonomy: float

    def as_dict(self) -> dict[str, Any]:
        """Flat JSON-ready dict."""
        d = asdict(self.stats)
        d.update({k: v for k, v in asdict(self).items() if k != "stats"})
        return d


def run_route(
    env: gym.Env,
    agent: Agent,
    *,
    seed: int,
    config: EvalConfig,
    on_step: Callable[[], None] | None = None,
) -> RunStats:
    """Drive ``agent`` along the fixed route of town ``seed`` until the route ends."""
    t_wall = time.perf_counter()
    obs, info = env.reset(seed=seed, options={"town_seed": seed})
    agent.reset()
    route_m = float(info["route_length"])
    if route_m <= 0:
        raise ValueError("the env planned no fixed route: set route_length > 0 (EvalConfig does)")
    skip = env.unwrapped.config.frame_skip  # type: ignore[attr-defined]
    dt = skip / 30.0
    timeout_steps = int(np.ceil(route_m / (config.timeout_kmh / 3.6) / dt))
    blocked_steps = int(np.ceil(config.blocked_s / dt))
    deviation_steps = int(np.ceil(config.deviation_s / dt))
    counts = dict.fromkeys(("pedestrian", "vehicle", "static", "red_light"), 0)
    off_events = off_frames = driving = 0
    speeds: list[float] = []
    best, deviating = 0.0, 0
    blocked_m = config.blocked_speed * config.blocked_s
    window: deque[float] = deque(maxlen=blocked_steps)  # best progress, the last blocked_s
    was_off = False
    collisions = CollisionCounter()
    end = "timeout"
    steps = 0
    while steps < timeout_steps:
        steps += 1
        action = agent.act(obs, info)
        obs, _, terminated, truncated, info = env.step(action)
        position = info["position"]
        collisions.step(position, steps * dt)
        for e in info["events"]:
            if e["kind"] == "collision":
                if collisions.counts(e, position, steps * dt):
                    counts[e["category"] if e["category"] in counts else "static"] += 1
            elif e["kind"] == "red_light":
                counts["red_light"] += 1
        if info["unstuck_phase"] is None:
            driving += 1
            speeds.append(float(info["speed"]))
            off = not info["on_road"]
            off_frames += off
            off_events += off and not was_off
            was_off = off
        covered = float(info["route_covered"])
        window.append(best)
        best = max(best, covered)
        deviating = deviating + 1 if info["route_deviation"] > config.deviation_m else 0
        if on_step is not None:
            on_step()
        if covered >= route_m - 0.5:
            end = "completed"
            break
        if (len(window) == blocked_steps and best - window[0] < blocked_m) or truncated:
            end = "blocked"
            break
        if deviating >= deviation_steps:
            end = "deviated"
            break
        if terminated:
            end = "blocked"
            break
    return RunStats(
        agent=agent.name,
        seed=seed,
        weather=str(info["weather"]),
        route_m=route_m,
        covered_m=route_m if end == "completed" else min(best, route_m),
        end=end,
        steps=steps,
        game_s=steps * dt,
        wall_s=time.perf_counter() - t_wall,
        distance_m=float(info["distance"]),
        collisions_pedestrian=counts["pedestrian"],
        collisions_vehicle=counts["vehicle"],
        collisions_static=counts["static"],
        red_lights=counts["red_light"],
        off_road_events=off_events,
        off_road_frames=off_frames,
        driving_frames=driving,
        unstucks=int(info["unstucks"]),
        mean_speed_kmh=float(np.mean(speeds) * 3.6) if speeds else 0.0,
        **where_it_ended(info),
    )


END_LIGHT_M = 15.0
"""A light counts as where a route ended when its stop line is this close ahead."""


def where_it_ended(info: Mapping[str, Any]) -> dict[str, Any]:
    """``end_light`` and ``end_expert_go`` of the last step's ``info`` (see the module doc)."""
    light, distance = info.get("traffic_light"), info.get("stop_line_distance")
    near = light is not None and distance is not None and float(distance) < END_LIGHT_M
    expert = info.get("expert_action")
    return {
        "end_light": str(light) if near else "none",
        "end_expert_go": bool(expert is not None and float(expert[0]) > 0.2),
    }


def route_progress(prev: Mapping[str, Any], info: Mapping[str, Any]) -> float:
    """Metres gained along the planned route by one step (``prev`` → ``info``, env infos).

    For chained random purpose points (the live player's segments): the decrease of
    ``route_remaining``; when a purpose point was reached, the rest of that leg; nothing while
    an unstuck fades or teleports (the car did not drive there).
    """
    fading = info["unstuck_phase"] is not None or prev["unstuck_phase"] is not None
    if info["unstucks"] != prev["unstucks"]:
        fading = True
    if info["purposes_reached"] > prev["purposes_reached"]:
        return float(prev["route_remaining"])  # reached: the rest of that leg was driven
    if fading:
        return 0.0
    return float(prev["route_remaining"]) - float(info["route_remaining"])


def _per_km(count: float, km: float) -> float:
    return count / km if km > 0.01 else float(count > 0) * 100.0


def score(stats: RunStats) -> SeedResult:
    """Route completion, infraction penalties, the driving score and rates of one route."""
    completion = float(np.clip(stats.covered_m / stats.route_m, 0.0, 1.0))
    off_fraction = stats.off_road_frames / max(stats.driving_frames, 1)
    penalty = (
        PENALTY_PEDESTRIAN**stats.collisions_pedestrian
        * PENALTY_VEHICLE**stats.collisions_vehicle
        * PENALTY_STATIC**stats.collisions_static
        * PENALTY_RED_LIGHT**stats.red_lights
        * (1.0 - off_fraction)
    )
    km = stats.distance_m / 1000.0
    collisions = stats.collisions_pedestrian + stats.collisions_vehicle + stats.collisions_static
    return SeedResult(
        stats=stats,
        route_completion=completion,
        off_road_fraction=off_fraction,
        infraction_penalty=float(penalty),
        driving_score=float(completion * penalty),
        collisions_per_km=_per_km(collisions, km),
        red_lights_per_km=_per_km(stats.red_lights, km),
        autonomy=float(max(0.0, 1.0 - stats.unstucks * INTERVENTION_S / max(stats.game_s, 1e-9))),
    )


TOTAL_KEYS = (
    "driving_score",
    "route_completion",
    "infraction_penalty",
    "covered_m",
    "route_m",
    "distance_m",
    "collisions_pedestrian",
    "collisions_vehicle",
    "collisions_static",
    "red_lights",
    "collisions_per_km",
    "red_lights_per_km",
    "off_road_events",
    "off_road_fraction",
    "mean_speed_kmh",
    "autonomy",
    "game_s",
    "wall_s",
)
"""Columns of the total table, in order."""
_SUMMED = {
    "covered_m",
    "route_m",
    "distance_m",
    "collisions_pedestrian",
    "collisions_vehicle",
    "collisions_static",
    "red_lights",
    "off_road_events",
    "game_s",
    "wall_s",
}


def totals(results: Sequence[SeedResult]) -> dict[str, float]:
    """An agent's totals: scores averaged over routes, counts summed, rates over all km."""
    rows = [r.as_dict() for r in results]
    out: dict[str, float] = {}
    for key in TOTAL_KEYS:
        values = [float(r[key]) for r in rows]
        out[key] = float(np.sum(values)) if key in _SUMMED else float(np.mean(values))
    km = out["distance_m"] / 1000.0
    collisions = out["collisions_pedestrian"] + out["collisions_vehicle"] + out["collisions_static"]
    out["collisions_per_km"] = _per_km(collisions, km)
    out["red_lights_per_km"] = _per_km(out["red_lights"], km)
    out["route_km_per_wall_min"] = (
        out["covered_m"] / 1000.0 / (out["wall_s"] / 60.0) if out["wall_s"] > 0 else 0.0
    )
    out["routes_completed"] = float(sum(r.stats.end == "completed" for r in results))
    return out


@dataclass
class EvalReport:
    """Results of every agent on every route."""

    config: EvalConfig
    results: dict[str, list[SeedResult]]
    wall_s: float = 0.0

    def total(self, agent: str) -> dict[str, float]:
        """Totals of one agent."""
        return totals(self.results[agent])

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready report (``agents.<name>.total`` and ``agents.<name>.seeds``)."""
        return {
            "protocol": self.config.protocol,
            "seeds": list(self.config.seeds),
            "settings": {k: v for k, v in self.config.env_settings().items()},
            "route_m": self.config.route_m,
            "intersections": self.config.intersections,
            "timeout_kmh": self.config.timeout_kmh,
            "blocked_s": self.config.blocked_s,
            "blocked_speed": self.config.blocked_speed,
            "penalties": {**PENALTIES, "off_road": "x (1 - off-road fraction)"},
            "wall_s": self.wall_s,
            "agents": {
                name: {"total": self.total(name), "seeds": [r.as_dict() for r in rs]}
                for name, rs in self.results.items()
            },
        }

    def markdown(self) -> str:
        """``report.md``: a side-by-side total table and one table per agent and route."""
        names = list(self.results)
        cfg = self.config
        lines = [
            "# Evaluation",
            "",
            f"Protocol `{cfg.protocol}`: town seeds {list(cfg.seeds)}, one fixed route each "
            f"(≥ {cfg.route_m:g} m, ≥ {cfg.intersections} intersections), "
            f"{PROTOCOLS[cfg.protocol]}. A route ends when completed, at its timeout "
            f"(length at {cfg.timeout_kmh:g} km/h), when blocked (less than "
            f"{cfg.blocked_speed * cfg.blocked_s:g} m of progress in {cfg.blocked_s:g} s) "
            f"or when the car deviates > {cfg.deviation_m:g} m. Driving score = "
            "route completion × "
            + " × ".join(f"{v}^{k}" for k, v in PENALTIES.items())
            + " × on-road fraction (see `agents/evaluate.py`).",
            "",
            "| metric | " + " | ".join(names) + " |",
            "|---|" + "---|" * len(names),
        ]
        tot = {n: self.total(n) for n in names}
        for key in (*TOTAL_KEYS, "routes_completed", "route_km_per_wall_min"):
            lines.append(f"| {key} | " + " | ".join(_fmt(tot[n][key]) for n in names) + " |")
        cols: tuple[str, ...] = (
            "seed",
            "weather",
            "end",
            "end_light",
            "end_expert_go",
            "driving_score",
            "route_completion",
            "covered_m",
            "route_m",
            "collisions_pedestrian",
            "collisions_vehicle",
            "collisions_static",
            "red_lights",
            "off_road_fraction",
            "mean_speed_kmh",
            "game_s",
        )
        for name in names:
            lines += ["", f"## {name}", "", "| " + " | ".join(cols) + " |"]
            lines.append("|---" * len(cols) + "|")
            for r in self.results[name]:
                d = r.as_dict()
                lines.append("| " + " | ".join(_fmt(d[c]) for c in cols) + " |")
        return "\n".join(lines) + "\n"

    def write(self, out_dir: str | Path) -> dict[str, Path]:
        """Write ``report.json``, ``report.md`` and PNG plots; returns their paths."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {"json": out / "report.json", "md": out / "report.md"}
        paths["json"].write_text(json.dumps(self.as_dict(), indent=2))
        paths["md"].write_text(self.markdown())
        paths.update(self.plot(out))
        return paths

    def plot(self, out_dir: Path) -> dict[str, Path]:
        """Driving score per route, totals, and infractions by kind, with value labels."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        names = list(self.results)
        colours = _colours(len(names))
        tot = {n: self.total(n) for n in names}
        paths: dict[str, Path] = {}

        fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(self.config.seeds) + 3), 3.8))
        width = 0.8 / max(len(names), 1)
        xs = np.arange(len(self.config.seeds))
        for i, (n, c) in enumerate(zip(names, colours, strict=True)):
            bars = ax.bar(
                xs + i * width, [r.driving_score for r in self.results[n]], width, label=n, color=c
            )
            ax.bar_label(bars, fmt="%.2f", fontsize=7)
        ax.set_xticks(xs + width * (len(names) - 1) / 2, [str(s) for s in self.config.seeds])
        ax.set_xlabel("town seed (one fixed route each)")
        ax.set_ylabel("driving score")
        ax.set_ylim(0, 1.12)
        ax.legend(fontsize=8)
        ax.set_title(f"driving score per route ({self.config.protocol} protocol)")
        fig.tight_layout()
        paths["seeds_png"] = out_dir / "driving_score_per_seed.png"
        fig.savefig(paths["seeds_png"], dpi=90)
        plt.close(fig)

        keys = ("driving_score", "route_completion", "collisions_per_km", "mean_speed_kmh")
        fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3.6))
        for ax, key in zip(axes, keys, strict=True):
            bars = ax.bar(names, [max(tot[n][key], 0.0) for n in names], color=colours)
            ax.bar_label(bars, fmt="%.2f", fontsize=8)
            ax.set_ylim(bottom=0)
            ax.set_title(key)
            ax.tick_params(axis="x", rotation=20)
        fig.tight_layout()
        paths["totals_png"] = out_dir / "totals.png"
        fig.savefig(paths["totals_png"], dpi=90)
        plt.close(fig)

        kinds = ("collisions_pedestrian", "collisions_vehicle", "collisions_static", "red_lights")
        fig, ax = plt.subplots(figsize=(8, 3.6))
        xs = np.arange(len(kinds))
        for i, (n, c) in enumerate(zip(names, colours, strict=True)):
            bars = ax.bar(xs + i * width, [tot[n][k] for k in kinds], width, label=n, color=c)
            ax.bar_label(bars, fmt="%d", fontsize=7)
        ax.set_xticks(
            xs + width * (len(names) - 1) / 2, ["pedestrian", "vehicle", "static", "red light"]
        )
        ax.set_ylim(bottom=0)
        ax.set_ylabel("infractions (all routes)")
        ax.legend(fontsize=8)
        fig.tight_layout()
        paths["infractions_png"] = out_dir / "infractions.png"
        fig.savefig(paths["infractions_png"], dpi=90)
        plt.close(fig)
        return paths


def _colours(n: int) -> list[str]:
    base = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860"]
    return [base[i % len(base)] for i in range(n)]


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def evaluate(
    agents: Mapping[str, AgentFactory],
    *,
    config: EvalConfig,
    progress: bool = True,
    cameras: Sequence[str] = ("hood",),
) -> EvalReport:
    """Run every agent along every seed's route and score it.

    Args:
        agents: agent factories by display name.
        config: protocol, seeds, route and ending rules.
        progress: show a progress bar (route metres).
        cameras: cameras the agents need (``"cinematic"`` for dual-backbone models).
    """
    from tqdm import tqdm

    if not agents:
        raise ValueError("evaluate needs at least one agent")
    env = config.make_env(cinematic="cinematic" in cameras)
    bar = tqdm(
        total=len(agents) * len(config.seeds), disable=not progress, unit="route", desc="eval"
    )
    t0 = time.perf_counter()
    results: dict[str, list[SeedResult]] = {}
    try:
        for name, factory in agents.items():
            for seed in config.seeds:
                bar.set_description(f"eval {name} seed {seed}")
                stats = run_route(env, factory(env, seed), seed=seed, config=config)
                results.setdefault(name, []).append(score(stats))
                bar.set_postfix(score=f"{results[name][-1].driving_score:.2f}", end=stats.end)
                bar.update()
    finally:
        bar.close()
        env.close()
    return EvalReport(config=config, results=results, wall_s=time.perf_counter() - t0)


_WORKER: dict[str, Any] = {}
"""Per worker process: its env and its agents, made once and reused for every route."""


def _route_in_worker(job: tuple[EvalConfig, tuple[str, ...], str, int]) -> SeedResult:
    config, cameras, spec, seed = job
    import torch

    torch.set_num_threads(1)
    if _WORKER.get("config") != (config, cameras):
        if "env" in _WORKER:
            _WORKER["env"].close()
        _WORKER.clear()
        _WORKER["config"] = (config, cameras)
        _WORKER["env"] = config.make_env(cinematic="cinematic" in cameras)
    agents = _WORKER.setdefault("agents", {})
    if spec not in agents:
        agents[spec] = agent_factory(spec)
    name, factory = agents[spec]
    env = _WORKER["env"]
    return score(run_route(env, factory(env, seed), seed=seed, config=config))


def evaluate_specs(
    specs: Sequence[str], *, config: EvalConfig, workers: int = 1, progress: bool = True
) -> EvalReport:
    """:func:`evaluate` for agents named by spec (``expert``, ``random``, a checkpoint), with
    the routes shared out over ``workers`` processes.

    Every route is independent (its own reset from its seed), so the report is the same for
    any number of workers.
    """
    factories = dict(agent_factory(spec) for spec in specs)  # fail early, with the names
    if workers <= 1:
        return evaluate(factories, config=config, progress=progress, cameras=cameras_for(factories))
    import multiprocessing as mp

    from tqdm import tqdm

    names = dict(zip(specs, factories, strict=True))
    cameras = cameras_for(factories)
    jobs = [(config, cameras, spec, seed) for spec in specs for seed in config.seeds]
    t0 = time.perf_counter()
    results: dict[str, list[SeedResult]] = {names[spec]: [] for spec in specs}
    with mp.get_context("spawn").Pool(min(workers, len(jobs))) as pool:
        bar = tqdm(total=len(jobs), disable=not progress, unit="route", desc="eval")
        done = pool.imap(_route_in_worker, jobs)  # in job order: deterministic assembly
        for (_, _, spec, _), result in zip(jobs, done, strict=True):
            results[names[spec]].append(result)
            bar.set_postfix(score=f"{result.driving_score:.2f}", end=result.stats.end)
            bar.update()
        bar.close()
    return EvalReport(config=config, results=results, wall_s=time.perf_counter() - t0)


def agent_factory(spec: str, *, device: str = "cpu") -> tuple[str, AgentFactory]:
    """A display name and factory for ``expert``, ``random`` or a checkpoint path / run folder.

    Raises:
        ValueError: ``spec`` is none of these, or the checkpoint does not load (the message
            says why).
    """
    from agents.expert import ExpertAgent
    from agents.random_agent import RandomAgent

    if spec == "expert":
        return "expert", lambda env, seed: ExpertAgent()
    if spec == "random":
        return "random", lambda env, seed: RandomAgent(env.action_space, seed=seed)
    path = Path(spec)
    if not path.exists():
        raise ValueError(
            f"--agent {spec!r} is neither 'expert', 'random' nor an existing checkpoint file or "
            "run folder"
        )
    from agents.bc import BCAgent

    try:
        agent = BCAgent.from_checkpoint(path, device=device)
    except Exception as exc:  # any load failure becomes one clear line for the CLI
        raise ValueError(f"--agent {spec!r}: the checkpoint does not load: {exc}") from None
    name = f"bc:{path.name}"

    def make(env: gym.Env, seed: int) -> Agent:
        agent.reset()
        return agent

    make.cameras = tuple(agent.pre.camera_keys)  # type: ignore[attr-defined]
    return name, make


def cameras_for(factories: Mapping[str, AgentFactory]) -> tuple[str, ...]:
    """The cameras every agent of ``factories`` needs (the hood at least)."""
    needed = {"hood"}
    for factory in factories.values():
        needed |= set(getattr(factory, "cameras", ()))
    return tuple(sorted(needed, key=("hood", "cinematic").index))
