"""The `gta5drive` command: one entry point for the whole life cycle.

Each subcommand lives in its own module under `agents.commands` and exposes
``register(subparsers)``; this module only lists them.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = (
    "drive",
    "collect",
    "dataset_info",
    "balance",
    "train",
    "finetune",
    "export_minari",
    "play",
    "eval",
    "demo",
    "live",
)
"""Subcommand modules in `agents.commands`, in the order `--help` lists them."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every available subcommand."""
    parser = argparse.ArgumentParser(
        prog="gta5drive",
        description="Teach a car to drive from pixels: GTA5 or the embedded driving world.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"agents.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"agents.commands.{name}":
                continue  # not built yet
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``gta5drive`` with ``argv`` (default: the process arguments)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
