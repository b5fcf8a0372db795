"""Evaluation on held-out towns: route completion, infractions and a driving score.

Every agent drives every town seed for the same number of game minutes, starting from the same
place toward the same first purpose point (``env.reset(seed=s, options={"town_seed": s})``), so
the same seeds give the same numbers.

Definitions (per seed; totals are sums of counts and means of ratios over seeds):

* **route progress** (m): metres gained along the planned road route toward the chain of
  purpose points: the decrease of ``info["route_remaining"]`` while driving (fade frames of an
  unstuck excluded), plus the remaining distance of each purpose point reached. Driving away
  counts negative.
* **route completion**: route progress divided by the expert's route progress on the same seed
  in the same time (the reference route an expert completes), clipped to [0, 1].
* **infractions**: collisions with vehicles (traffic and parked cars), collisions with static
  objects (buildings, poles, trees, kerbs), off-road excursions (entries of the car's centre
  off the road) and off-road frames.
* **collisions per km** of distance driven; **mean speed** over the frames driven; **autonomy**
  = ``1 - unstucks * 6 s / elapsed`` (PilotNet's measure, an intervention counted as 6 s).
* **driving score** = route completion × ``PENALTY_VEHICLE ** vehicle collisions`` ×
  ``PENALTY_STATIC ** static collisions`` × ``PENALTY_UNSTUCK ** unstucks`` × (1 − off-road
  fraction), as CARLA's leaderboard multiplies route completion by one factor per infraction
  (0.60 per collision with a vehicle, 0.65 with a static object). CARLA ends a route when the
  agent is blocked; here an unstuck teleports the car instead, so it costs 0.70. CARLA removes
  the off-road share of the route from the completion; here the score is multiplied by the
  fraction of frames on the road.

The total driving score of an agent is the mean of its per-seed scores (CARLA averages routes).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from agents.base import Agent
from gta_env.fields import parse_seeds as parse_seeds  # re-exported: the one seed-list parser

PENALTY_VEHICLE = 0.60
"""Driving-score factor per collision with a vehicle (CARLA leaderboard)."""
PENALTY_STATIC = 0.65
"""Driving-score factor per collision with a static object (CARLA leaderboard)."""
PENALTY_UNSTUCK = 0.70
"""Driving-score factor per unstuck (the car was stuck and had to be teleported)."""
INTERVENTION_S = 6.0
"""Seconds one intervention (unstuck) costs in the autonomy measure (PilotNet)."""

AgentFactory = Callable[[gym.Env, int], Agent]
"""Makes an agent for an env and a town seed (a fresh agent per seed keeps runs independent)."""


@dataclass(frozen=True, kw_only=True)
class EvalConfig:
    """What an evaluation runs.

    Attributes:
        seeds: town seeds (held out from training).
        minutes: game minutes per agent and seed.
        traffic: traffic cars per town.
        env_kwargs: more `GTA5Drive-v0` settings (``backend`` defaults to ``"sim"``).
    """

    seeds: tuple[int, ...] = (1000, 1001, 1002)
    minutes: float = 1.0
    traffic: int = 0
    env_kwargs: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "seeds", tuple(int(s) for s in self.seeds))
        if not self.seeds:
            raise ValueError("EvalConfig.seeds must name at least one town seed")
        if any(s < 0 for s in self.seeds):
            raise ValueError(f"EvalConfig.seeds must be >= 0, got {self.seeds}")
        if not self.minutes > 0:
            raise ValueError(f"EvalConfig.minutes must be > 0, got {self.minutes}")
        if self.traffic < 0:
            raise ValueError(f"EvalConfig.traffic must be >= 0, got {self.traffic}")

    @property
    def steps(self) -> int:
        """Env steps per run (30 per game second at frame_skip 1)."""
        skip = int(self.env_kwargs.get("frame_skip", 1))
        return max(1, round(self.minutes * 60 * 30 / skip))

    def make_env(self) -> gym.Env:
        """The evaluation environment."""
        import gta_env  # noqa: F401  (registers GTA5Drive-v0)

        kwargs = {"backend": "sim", "traffic": self.traffic, **dict(self.env_kwargs)}
        return gym.make("GTA5Drive-v0", max_episode_steps=self.steps + 1, **kwargs)


@dataclass(frozen=True, kw_only=True)
class RunStats:
    """Raw counts of one agent on one seed."""

    agent: str
    seed: int
    steps: int
    game_s: float
    distance_m: float
    route_progress_m: float
    collisions_vehicle: int
    collisions_static: int
    off_road_events: int
    off_road_frames: int
    driving_frames: int
    unstucks: int
    purposes_reached: int
    mean_speed_kmh: float


@dataclass(frozen=True, kw_only=True)
class SeedResult:
    """Scores of one agent on one seed."""

    stats: RunStats
    reference_progress_m: float
    route_completion: float
    collisions_per_km: float
    autonomy: float
    off_road_fraction: float
    driving_score: float

    def as_dict(self) -> dict[str, Any]:
        """Flat JSON-ready dict."""
        d = asdict(self.stats)
        d.update({k: v for k, v in asdict(self).items() if k != "stats"})
        return d


def run_stats(
    env: gym.Env, agent: Agent, *, seed: int, steps: int, on_step: Callable[[], None] | None = None
) -> RunStats:
    """Drive ``agent`` for ``steps`` steps on town ``seed`` and count what happened."""
    obs, info = env.reset(seed=seed, options={"town_seed": seed})
    agent.reset()
    progress = 0.0
    vehicle = static = off_events = off_frames = driving = 0
    speeds: list[float] = []
    prev = info
    was_off = False
    for _ in range(steps):
        action = agent.act(obs, info)
        obs, _, terminated, truncated, info = env.step(action)
        progress += route_progress(prev, info)
        for e in info["events"]:
            if e["kind"] == "collision":
                if e["category"] == "vehicle":
                    vehicle += 1
                else:
                    static += 1
        if info["unstuck_phase"] is None:
            driving += 1
            speeds.append(float(info["speed"]))
            off = not info["on_road"]
            if off:
                off_frames += 1
                if not was_off:
                    off_events += 1
            was_off = off
        prev = info
        if on_step is not None:
            on_step()
        if terminated or truncated:
            break
    skip = env.unwrapped.config.frame_skip  # type: ignore[attr-defined]
    return RunStats(
        agent=agent.name,
        seed=seed,
        steps=steps,
        game_s=steps * skip / 30.0,
        distance_m=float(info["distance"]),
        route_progress_m=progress,
        collisions_vehicle=vehicle,
        collisions_static=static,
        off_road_events=off_events,
        off_road_frames=off_frames,
        driving_frames=driving,
        unstucks=int(info["unstucks"]),
        purposes_reached=int(info["purposes_reached"]),
        mean_speed_kmh=float(np.mean(speeds) * 3.6) if speeds else 0.0,
    )


def route_progress(prev: Mapping[str, Any], info: Mapping[str, Any]) -> float:
    """Metres gained along the planned route by one step (``prev`` → ``info``, env infos).

    The decrease of ``route_remaining``; when a purpose point was reached, the rest of that
    leg; nothing while an unstuck fades or teleports (the car did not drive there).
    """
    fading = info["unstuck_phase"] is not None or prev["unstuck_phase"] is not None
    if info["unstucks"] != prev["unstucks"]:
        fading = True
    if info["purposes_reached"] > prev["purposes_reached"]:
        return float(prev["route_remaining"])  # reached: the rest of that leg was driven
    if fading:
        return 0.0
    return float(prev["route_remaining"]) - float(info["route_remaining"])


def score(stats: RunStats, reference_progress_m: float) -> SeedResult:
    """Turn raw counts into route completion, rates and the driving score."""
    completion = (
        float(np.clip(stats.route_progress_m / reference_progress_m, 0.0, 1.0))
        if reference_progress_m > 0
        else 0.0
    )
    collisions = stats.collisions_vehicle + stats.collisions_static
    km = stats.distance_m / 1000.0
    off_fraction = stats.off_road_frames / max(stats.driving_frames, 1)
    dscore = (
        completion
        * PENALTY_VEHICLE**stats.collisions_vehicle
        * PENALTY_STATIC**stats.collisions_static
        * PENALTY_UNSTUCK**stats.unstucks
        * (1.0 - off_fraction)
    )
    return SeedResult(
        stats=stats,
        reference_progress_m=reference_progress_m,
        route_completion=completion,
        collisions_per_km=collisions / km if km > 0.01 else float(collisions > 0) * 100.0,
        autonomy=float(max(0.0, 1.0 - stats.unstucks * INTERVENTION_S / stats.game_s)),
        off_road_fraction=off_fraction,
        driving_score=float(dscore),
    )


TOTAL_KEYS = (
    "driving_score",
    "route_completion",
    "route_progress_m",
    "distance_m",
    "collisions_vehicle",
    "collisions_static",
    "off_road_events",
    "off_road_fraction",
    "unstucks",
    "collisions_per_km",
    "mean_speed_kmh",
    "autonomy",
)
"""Columns of the total table, in order."""


def totals(results: Sequence[SeedResult]) -> dict[str, float]:
    """An agent's totals: counts summed, ratios averaged over seeds (rates over all km)."""
    rows = [r.as_dict() for r in results]
    out: dict[str, float] = {}
    for key in TOTAL_KEYS:
        values = [float(r[key]) for r in rows]
        summed = key in (
            "route_progress_m",
            "distance_m",
            "collisions_vehicle",
            "collisions_static",
            "off_road_events",
            "unstucks",
        )
        out[key] = float(np.sum(values)) if summed else float(np.mean(values))
    km = out["distance_m"] / 1000.0
    collisions = out["collisions_vehicle"] + out["collisions_static"]
    out["collisions_per_km"] = collisions / km if km > 0.01 else float(collisions > 0) * 100.0
    game_s = sum(r.stats.game_s for r in results)
    out["autonomy"] = max(0.0, 1.0 - out["unstucks"] * INTERVENTION_S / game_s)
    return out


@dataclass
class EvalReport:
    """Results of every agent on every seed."""

    config: EvalConfig
    results: dict[str, list[SeedResult]]
    wall_s: float = 0.0

    def total(self, agent: str) -> dict[str, float]:
        """Totals of one agent."""
        return totals(self.results[agent])

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready report."""
        return {
            "seeds": list(self.config.seeds),
            "minutes": self.config.minutes,
            "traffic": self.config.traffic,
            "penalties": {
                "vehicle": PENALTY_VEHICLE,
                "static": PENALTY_STATIC,
                "unstuck": PENALTY_UNSTUCK,
                "off_road": "x (1 - off-road fraction)",
            },
            "wall_s": self.wall_s,
            "agents": {
                name: {"total": self.total(name), "seeds": [r.as_dict() for r in rs]}
                for name, rs in self.results.items()
            },
        }

    def markdown(self) -> str:
        """``report.md``: a side-by-side total table and one table per agent and seed."""
        names = list(self.results)
        lines = [
            "# Evaluation",
            "",
            f"Town seeds {list(self.config.seeds)}, {self.config.minutes:g} game minutes each, "
            f"traffic {self.config.traffic}. Driving score = route completion × "
            f"{PENALTY_VEHICLE}^vehicle collisions × {PENALTY_STATIC}^static collisions × "
            f"{PENALTY_UNSTUCK}^unstucks × on-road fraction (see `agents/evaluate.py`).",
            "",
            "| metric | " + " | ".join(names) + " |",
            "|---|" + "---|" * len(names),
        ]
        tot = {n: self.total(n) for n in names}
        for key in TOTAL_KEYS:
            lines.append(f"| {key} | " + " | ".join(_fmt(tot[n][key]) for n in names) + " |")
        cols: tuple[str, ...] = (
            "seed",
            "driving_score",
            "route_completion",
            "route_progress_m",
            "distance_m",
            "collisions_vehicle",
            "collisions_static",
            "off_road_events",
            "unstucks",
            "mean_speed_kmh",
            "autonomy",
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
        """Bar charts of the totals and of the driving score per seed."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        names = list(self.results)
        tot = {n: self.total(n) for n in names}
        fig, axes = plt.subplots(1, 4, figsize=(16, 3.6))
        for ax, key in zip(
            axes,
            ("driving_score", "route_completion", "collisions_per_km", "mean_speed_kmh"),
            strict=True,
        ):
            ax.bar(names, [tot[n][key] for n in names], color=_colours(len(names)))
            ax.set_title(key)
            ax.tick_params(axis="x", rotation=20)
        fig.tight_layout()
        totals_png = out_dir / "totals.png"
        fig.savefig(totals_png, dpi=90)
        plt.close(fig)
        fig, ax = plt.subplots(figsize=(8, 3.6))
        width = 0.8 / max(len(names), 1)
        xs = np.arange(len(self.config.seeds))
        for i, (n, c) in enumerate(zip(names, _colours(len(names)), strict=True)):
            ax.bar(
                xs + i * width, [r.driving_score for r in self.results[n]], width, label=n, color=c
            )
        ax.set_xticks(xs + width * (len(names) - 1) / 2, [str(s) for s in self.config.seeds])
        ax.set_xlabel("town seed")
        ax.set_ylabel("driving score")
        ax.legend()
        fig.tight_layout()
        seeds_png = out_dir / "driving_score_per_seed.png"
        fig.savefig(seeds_png, dpi=90)
        plt.close(fig)
        return {"totals_png": totals_png, "seeds_png": seeds_png}


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
    env: gym.Env | None = None,
) -> EvalReport:
    """Run every agent on every seed and score it against the expert's route progress.

    The expert's reference progress per seed comes from the ``"expert"`` entry when present,
    otherwise the expert is run as well (and not reported).

    Args:
        agents: agent factories by display name.
        config: seeds, minutes, env settings.
        progress: show a progress bar (env steps).
        env: an env to use instead of ``config.make_env()`` (closed by the caller).
    """
    from tqdm import tqdm

    from agents.expert import ExpertAgent

    if not agents:
        raise ValueError("evaluate needs at least one agent")
    own_env = env is None
    env = env if env is not None else config.make_env()
    runs = dict(agents)
    expert_name = "expert" if "expert" in runs else None
    order = ([expert_name] if expert_name else []) + [n for n in runs if n != expert_name]
    total = config.steps * len(config.seeds) * (len(order) + (0 if expert_name else 1))
    bar = tqdm(total=total, disable=not progress, unit="step", desc="eval")
    t0 = time.perf_counter()
    stats: dict[str, list[RunStats]] = {}
    try:
        reference: list[float] = []
        for seed in config.seeds:
            if expert_name is None:
                bar.set_description(f"eval reference expert seed {seed}")
                ref = run_stats(
                    env, ExpertAgent(), seed=seed, steps=config.steps, on_step=lambda: bar.update()
                )
                reference.append(ref.route_progress_m)
        for name in order:
            for seed in config.seeds:
                bar.set_description(f"eval {name} seed {seed}")
                agent = runs[name](env, seed)
                s = run_stats(
                    env, agent, seed=seed, steps=config.steps, on_step=lambda: bar.update()
                )
                stats.setdefault(name, []).append(s)
            if name == expert_name:
                reference = [s.route_progress_m for s in stats[name]]
    finally:
        bar.close()
        if own_env:
            env.close()
    results = {
        name: [score(s, ref) for s, ref in zip(stats[name], reference, strict=True)]
        for name in runs
    }
    return EvalReport(config=config, results=results, wall_s=time.perf_counter() - t0)


def agent_factory(spec: str, *, device: str = "cpu") -> tuple[str, AgentFactory]:
    """A display name and factory for ``expert``, ``random`` or a checkpoint path / run folder."""
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

    agent = BCAgent.from_checkpoint(path, device=device)
    name = f"bc:{path.name}"

    def make(env: gym.Env, seed: int) -> Agent:
        agent.reset()
        return agent

    return name, make
