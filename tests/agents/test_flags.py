"""Config dataclasses as CLI flags: one source of names, help and defaults for every subcommand."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest

from agents.cli import build_parser
from agents.flags import add_config_flags, config_from_args, field_docs


@dataclass(frozen=True, kw_only=True)
class Example:
    """An example config.

    Attributes:
        count: how many; a long description
            that goes on.
        rate: per second.
        mode: ``"a"`` or ``"b"``.
        size: (height, width).
        seeds: town seeds.
        cap: an optional limit.
        fast: go fast.
        where: a folder.
    """

    count: int = 3
    rate: float = 1.5
    mode: Literal["a", "b"] = "a"
    size: tuple[int, int] = (90, 160)
    seeds: tuple[int, ...] = (1, 2)
    cap: int | None = None
    fast: bool = False
    where: Path = Path("runs")


def parser_for(**kwargs: object) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(exit_on_error=False)
    add_config_flags(p, Example, **kwargs)  # type: ignore[arg-type]
    return p


def test_field_docs_joins_continuation_lines() -> None:
    docs = field_docs(Example)
    assert docs["count"] == "how many; a long description that goes on."
    assert docs["mode"] == '``"a"`` or ``"b"``.'


def test_defaults_come_from_the_dataclass() -> None:
    assert config_from_args(parser_for().parse_args([]), Example) == Example()


def test_every_field_type_parses() -> None:
    args = parser_for().parse_args(
        [
            "--count",
            "5",
            "--rate",
            "2",
            "--mode",
            "b",
            "--size",
            "45x80",
            "--seeds",
            "3-5,9",
            "--cap",
            "7",
            "--fast",
            "--where",
            "/tmp",
        ]
    )
    assert config_from_args(args, Example) == Example(
        count=5,
        rate=2.0,
        mode="b",
        size=(45, 80),
        seeds=(3, 4, 5, 9),
        cap=7,
        fast=True,
        where=Path("/tmp"),
    )
    assert config_from_args(parser_for().parse_args(["--no-fast"]), Example).fast is False


def test_help_is_the_field_doc_with_the_default() -> None:
    text = parser_for().format_help()
    assert "how many; a long description that goes on (default: 3)" in " ".join(text.split())
    assert "(default: 90x160)" in text


def test_bad_values_say_the_syntax() -> None:
    with pytest.raises(argparse.ArgumentError, match="HEIGHTxWIDTH"):
        parser_for().parse_args(["--size", "90"])
    with pytest.raises(argparse.ArgumentError, match="100-104 or 1,5,9"):
        parser_for().parse_args(["--seeds", "9-1"])


def test_names_prefix_only_and_overrides() -> None:
    p = argparse.ArgumentParser()
    add_config_flags(p, Example, only=("count",), prefix="ex_", names={"count": "n"})
    p.add_argument("--rate", type=float, default=9.0)  # not a flag of Example: not taken
    args = p.parse_args(["--n", "4"])
    assert config_from_args(args, Example, prefix="ex_", fast=True) == Example(count=4, fast=True)


def test_subcommand_defaults_are_the_dataclass_defaults() -> None:
    from agents.commands.train import train_config_from_args
    from agents.evaluate import EvalConfig
    from imitation.collect import CollectConfig
    from imitation.train import AugmentConfig, TrainConfig

    train = train_config_from_args(build_parser().parse_args(["train", "--data", "d"]))
    assert train.lr == TrainConfig().lr == 3e-4
    assert train.augment.flip == AugmentConfig().flip == 0.0
    assert train.buffer == TrainConfig().buffer
    assert train.model.image_size == (90, 160)

    args = build_parser().parse_args(["eval", "--agent", "expert"])
    assert config_from_args(args, EvalConfig) == EvalConfig()

    args = build_parser().parse_args(["collect", "--out", "o", "--samples", "10"])
    defaults = CollectConfig(out=Path("o"), samples=10)
    got = config_from_args(args, CollectConfig, noise=defaults.noise, storage=defaults.storage)
    assert got == defaults


def test_old_negative_flags_still_parse() -> None:
    args = build_parser().parse_args(
        ["play", "--checkpoint", "c", "--no-swap", "--no-console", "--fast", "--dead-zone", "0.2"]
    )
    assert (args.swap, args.console, args.fast, args.dead_zone) == (False, False, True, 0.2)


def test_help_texts_are_plain_words() -> None:
    from agents.flags import plain_text

    doc = "see :mod:`imitation.dagger`, :class:`~imitation.models.speed.SpeedControl` and ``x``"
    assert plain_text(doc) == "see imitation.dagger, SpeedControl and x"
