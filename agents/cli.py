"""The `gta5drive` command: one entry point for the whole life cycle.

Each subcommand lives in its own module under `agents.commands` and exposes
``register(subparsers)``; this module only lists them.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import importlib.metadata
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


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Every option's help ends with its default, unless it says it already (the flags made
    from config dataclasses do), the default is None (nothing set), or it is an on/off switch
    that is off by default."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if (
            "default:" in text
            or "%(default)" in text
            or action.default is None
            or action.default is argparse.SUPPRESS
            or action.required
            or (isinstance(action, argparse._StoreTrueAction) and action.default is False)
            or not action.option_strings
        ):
            return action.help
        return super()._get_help_string(action)


def version() -> str:
    """The installed package's version (``unknown`` when run from a bare checkout)."""
    try:
        return importlib.metadata.version("gta5drive")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every available subcommand."""
    parser = argparse.ArgumentParser(
        prog="gta5drive",
        description="Teach a car to drive from pixels: GTA5 or the embedded driving world.",
    )
    parser.add_argument("--version", action="version", version=f"gta5drive {version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"agents.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"agents.commands.{name}":
                continue  # not built yet
            raise
        module.register(sub)
    for command in sub.choices.values():
        command.formatter_class = DefaultsHelpFormatter
        for action in command._actions:
            if action.help is None and action.option_strings and action.default is not None:
                action.help = "(default: %(default)s)"  # argparse shows nothing without a help
    return parser


def _unknown_command(parser: argparse.ArgumentParser, argv: list[str]) -> str | None:
    """A line naming the closest subcommand when the first word is not one (argparse's own
    'invalid choice' lists all eleven and suggests none)."""
    words = [a for a in argv if not a.startswith("-")]
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    if not words or words[0] in sub.choices or argv.index(words[0]) != 0:
        return None
    close = difflib.get_close_matches(words[0], list(sub.choices), n=2, cutoff=0.6)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return (
        f"gta5drive: unknown command {words[0]!r}{hint} "
        f"(commands: {', '.join(sub.choices)}; gta5drive --help)"
    )


def main(argv: list[str] | None = None) -> int:
    """Run ``gta5drive`` with ``argv`` (default: the process arguments)."""
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    unknown = _unknown_command(parser, argv)
    if unknown is not None:
        print(unknown, file=sys.stderr)
        return 2
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
