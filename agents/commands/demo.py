"""``gta5drive demo``: collect, balance, train, evaluate and film, on a CPU."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``demo`` subcommand."""
    p = subparsers.add_parser(
        "demo",
        help="the main job: expert data -> balance -> BC training -> evaluation -> stream video",
        description=(
            "Collect noisy-expert demonstrations with parallel workers, balance them, train a "
            "small BC model on the CPU, evaluate random vs expert vs BC on held-out towns and "
            "film the BC agent in the stream layout. Everything goes to --out."
        ),
    )
    p.add_argument("--out", type=Path, default=Path("runs/demo"), help="output folder")
    p.add_argument("--quick", action="store_true", help="a ~3 minute version")
    p.add_argument("--workers", type=int, default=None, help="collector processes (default 2)")
    p.add_argument(
        "--purpose",
        choices=("auto", "route", "point"),
        default="auto",
        help="purpose bearing the learner sees: along the planned route (auto, the default, "
        "on the embedded world) or to the purpose point itself (point, the original's)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the demo."""
    from dataclasses import replace

    from agents.demo import DemoConfig, run_demo

    config = DemoConfig.quick() if args.quick else DemoConfig()
    changes: dict = {"seed": args.seed, "purpose_mode": args.purpose}
    if args.workers is not None:
        if args.workers < 1:
            raise SystemExit("--workers must be >= 1")
        changes["workers"] = args.workers
    config = replace(config, **changes)
    run_demo(args.out, config=config, progress=not args.no_progress)
    print(f"everything is in {args.out}")
    return 0
