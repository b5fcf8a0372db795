"""``gta5drive eval``: agents on held-out towns; driving score, infractions, report and plots."""

from __future__ import annotations

import argparse
from pathlib import Path

from agents.flags import add_config_flags, config_from_args


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``eval`` subcommand (settings from :class:`~agents.evaluate.EvalConfig`)."""
    from agents.evaluate import EvalConfig

    p = subparsers.add_parser(
        "eval",
        help="evaluate agents on town seeds: driving score, infractions, report.md/json, plots",
        description=(
            "Run each --agent (expert, random, or a checkpoint file / run folder) on each town "
            "seed for --minutes of game time; same seeds give the same numbers."
        ),
    )
    p.add_argument(
        "--agent",
        action="append",
        required=True,
        help="expert | random | CHECKPOINT (repeat for a side-by-side table)",
    )
    add_config_flags(p, EvalConfig, only=("seeds", "minutes", "traffic"))
    p.add_argument("--out", type=Path, default=Path("runs/eval"), help="report folder")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Evaluate and print the total table."""
    import torch

    from agents.evaluate import EvalConfig, agent_factory, evaluate

    torch.set_num_threads(1)
    try:
        factories = dict(agent_factory(spec) for spec in args.agent)
        config = config_from_args(args, EvalConfig)
    except ValueError as exc:
        raise SystemExit(f"gta5drive eval: {exc}") from None
    report = evaluate(factories, config=config, progress=not args.no_progress)
    paths = report.write(args.out)
    names = list(report.results)
    print(f"{'':18s}" + "".join(f"{n[:16]:>18s}" for n in names))
    for key in ("driving_score", "route_completion", "collisions_per_km", "unstucks", "autonomy"):
        print(f"{key:18s}" + "".join(f"{report.total(n)[key]:18.3f}" for n in names))
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0
