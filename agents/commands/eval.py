"""``gta5drive eval``: agents along fixed routes; driving score, infractions, report and plots."""

from __future__ import annotations

import argparse
from pathlib import Path

from agents.flags import add_config_flags, config_from_args


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``eval`` subcommand (settings from :class:`~agents.evaluate.EvalConfig`)."""
    from agents.evaluate import EvalConfig
    from gta_env.sim.weather import WEATHERS

    p = subparsers.add_parser(
        "eval",
        help="evaluate agents along fixed routes: driving score, infractions, report.md/json, plots",
        description=(
            "Drive each --agent (expert, random, or a checkpoint file / run folder) along one "
            "fixed route per town seed under an evaluation protocol (town: traffic, "
            "pedestrians, lights and weather per route; empty: none of them); same seeds give "
            "the same numbers."
        ),
    )
    p.add_argument(
        "--agent",
        action="append",
        required=True,
        help="expert | random | CHECKPOINT (repeat for a side-by-side table)",
    )
    add_config_flags(
        p,
        EvalConfig,
        only=(
            "protocol",
            "seeds",
            "route_m",
            "intersections",
            "timeout_kmh",
            "blocked_s",
            "blocked_speed",
        ),
    )
    p.add_argument(
        "--weather",
        choices=(*WEATHERS, "random"),
        default=None,
        help="override the protocol's weather (town: random per route; empty: clear)",
    )
    p.add_argument(
        "--workers", type=int, default=1, help="processes sharing the routes (same report)"
    )
    p.add_argument("--out", type=Path, default=Path("runs/eval"), help="report folder")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Evaluate and print the total table."""
    import torch

    from agents.evaluate import EvalConfig, agent_factory, evaluate_specs

    torch.set_num_threads(1)
    try:
        for spec in args.agent:
            agent_factory(spec)  # a checkpoint that does not load: one line, before any work
        extra = {"weather": args.weather} if args.weather else {}
        config = config_from_args(args, EvalConfig, env_kwargs=extra)
        if args.workers < 1:
            raise ValueError(f"--workers must be >= 1, got {args.workers}")
    except ValueError as exc:
        raise SystemExit(f"gta5drive eval: {exc}") from None
    report = evaluate_specs(
        args.agent, config=config, workers=args.workers, progress=not args.no_progress
    )
    paths = report.write(args.out)
    names = list(report.results)
    print(f"protocol {config.protocol}, seeds {list(config.seeds)}")
    print(f"{'':22s}" + "".join(f"{n[:16]:>18s}" for n in names))
    for key in (
        "driving_score",
        "route_completion",
        "collisions_per_km",
        "red_lights_per_km",
        "mean_speed_kmh",
        "routes_completed",
        "route_km_per_wall_min",
    ):
        print(f"{key:22s}" + "".join(f"{report.total(n)[key]:18.3f}" for n in names))
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0
