"""``gta5drive demo``: collect, balance, train, evaluate and film, on a CPU."""

from __future__ import annotations

import argparse
from pathlib import Path

from agents.flags import add_config_flags, config_kwargs

FLAGS = (
    "workers",
    "purpose_mode",
    "balance",
    "towns",
    "backbone",
    "frame_stack",
    "light_head",
    "speed_target",
    "speed_input",
    "train_steps",
    "dagger_rounds",
    "dagger_towns",
    "seed",
)
"""The `DemoConfig` fields the command exposes; one left out keeps the chosen preset's value."""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``demo`` subcommand (settings from :class:`~agents.demo.DemoConfig`)."""
    from agents.demo import SCHEMES, DemoConfig

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
    p.add_argument(
        "--quick",
        action="store_true",
        help="a ~5 minute version (DemoConfig.quick(); flags below change either preset)",
    )
    # A flag left out keeps the value of the chosen preset (DemoConfig() or DemoConfig.quick()).
    add_config_flags(
        p,
        DemoConfig,
        only=FLAGS,
        names={"purpose_mode": "purpose"},
        choices={"purpose_mode": ("auto", "route", "point"), "balance": SCHEMES},
        defaults=dict.fromkeys(FLAGS),
        show_defaults=False,
    )
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the demo."""
    from dataclasses import replace

    from agents.demo import DemoConfig, run_demo

    config = DemoConfig.quick() if args.quick else DemoConfig()
    given = {k: v for k, v in config_kwargs(args, DemoConfig).items() if v is not None}
    if given.get("workers", 1) < 1:
        raise SystemExit("--workers must be >= 1")
    try:
        config = replace(config, **given)
    except ValueError as exc:  # a bad setting stops here, before anything is collected
        raise SystemExit(f"gta5drive demo: {exc}") from None
    run_demo(args.out, config=config, progress=not args.no_progress)
    print(f"everything is in {args.out}")
    return 0
