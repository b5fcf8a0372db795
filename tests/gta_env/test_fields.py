"""The shared field helpers: numeric checks and the seed-list and size parsers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from gta_env.fields import check_int, check_ints, check_number, parse_seeds, parse_size


def test_check_int_accepts_integers_in_range() -> None:
    check_int("x", 3, minimum=1)
    check_int("x", np.int64(3), minimum=1, maximum=3)
    check_int("x", None, minimum=1, optional=True)


@pytest.mark.parametrize(
    ("value", "kwargs", "message"),
    [
        (True, {"minimum": 0}, r"x must be an integer >= 0, got True"),
        (1.0, {}, r"x must be an integer, got 1.0"),
        (0, {"minimum": 1}, r"x must be an integer >= 1, got 0"),
        (9, {"minimum": 1, "maximum": 8}, r"x must be an integer in \[1, 8\], got 9"),
        (None, {"minimum": 1}, r"x must be an integer >= 1, got None"),
        ("2", {"optional": True}, r"x must be None or an integer, got '2'"),
    ],
)
def test_check_int_rejects_with_the_rule(value: object, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_int("x", value, **kwargs)


def test_check_ints_names_the_owner_and_field() -> None:
    @dataclass
    class Config:
        a: int = 1
        b: int = -1

    check_ints(Config(), {"a": 1})
    with pytest.raises(ValueError, match=r"Config\.b must be an integer >= 0, got -1"):
        check_ints(Config(), {"a": 1, "b": 0})


def test_check_number() -> None:
    check_number("lr", 3e-4, above=0)
    check_number("p", 1, minimum=0, maximum=1)
    for bad in (0.0, float("nan"), float("inf"), True, "1"):
        with pytest.raises(ValueError, match="lr must be a number > 0"):
            check_number("lr", bad, above=0)


@pytest.mark.parametrize(
    ("text", "seeds"),
    [
        ("7", (7,)),
        ("1,5,9", (1, 5, 9)),
        ("100-103", (100, 101, 102, 103)),
        (" 1, 5-6 ,", (1, 5, 6)),
    ],
)
def test_parse_seeds(text: str, seeds: tuple[int, ...]) -> None:
    assert parse_seeds(text) == seeds


@pytest.mark.parametrize(
    ("text", "message"), [("5-3", "must look like"), ("a", "must look"), ("", "no seeds")]
)
def test_parse_seeds_rejects(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_seeds(text)


def test_parse_size() -> None:
    assert parse_size("90x160") == (90, 160)
    assert parse_size("270X480") == (270, 480)
    for bad in ("90", "90x", "ax160", "0x160", "1x2x3"):
        with pytest.raises(ValueError, match="HEIGHTxWIDTH"):
            parse_size(bad)
