"""Small, dependency-free helpers for config fields: numeric checks and the text parsers.

Every config dataclass validates its numbers with :func:`check_int` / :func:`check_number`
(or :func:`check_ints` for several at once), so the rule "an integer, not a bool, at least N"
and its error message are written once. The command line parses seed lists with
:func:`parse_seeds` and ``HEIGHTxWIDTH`` sizes with :func:`parse_size`, the only parsers of
those syntaxes in the project.

Nothing in this module imports anything of the project: any layer may use it.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any

__all__ = ["check_int", "check_ints", "check_number", "parse_seeds", "parse_size"]


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _range_text(minimum: float | None, maximum: float | None) -> str:
    if minimum is not None and maximum is not None:
        return f" in [{minimum}, {maximum}]"
    if minimum is not None:
        return f" >= {minimum}"
    if maximum is not None:
        return f" <= {maximum}"
    return ""


def check_int(
    label: str,
    value: Any,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    optional: bool = False,
) -> None:
    """Check that ``value`` is an integer (not a bool) within bounds.

    Args:
        label: What the value is, for the message, e.g. ``"CollectConfig.samples"``.
        value: The value to check.
        minimum: The smallest value allowed (inclusive), or None.
        maximum: The largest value allowed (inclusive), or None.
        optional: Whether None is allowed too.

    Raises:
        ValueError: Naming ``label``, the rule and the value given.
    """
    if optional and value is None:
        return
    if (
        not _is_int(value)
        or (minimum is not None and value < minimum)
        or (maximum is not None and value > maximum)
    ):
        rule = "None or an integer" if optional else "an integer"
        raise ValueError(f"{label} must be {rule}{_range_text(minimum, maximum)}, got {value!r}")


def check_ints(
    owner: Any, minimums: Mapping[str, int], *, name: str | None = None, optional: bool = False
) -> None:
    """:func:`check_int` on several attributes of ``owner``, each with its minimum.

    Args:
        owner: The object (usually a config dataclass in ``__post_init__``).
        minimums: Attribute name -> smallest value allowed.
        name: How to call the owner in messages (default: its class name).
        optional: Whether None is allowed too.
    """
    prefix = name or type(owner).__name__
    for attr, minimum in minimums.items():
        check_int(f"{prefix}.{attr}", getattr(owner, attr), minimum=minimum, optional=optional)


def check_number(
    label: str,
    value: Any,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    above: float | None = None,
    optional: bool = False,
) -> None:
    """Check that ``value`` is a real number (not a bool), finite, within bounds.

    Args:
        label: What the value is, for the message.
        value: The value to check.
        minimum: The smallest value allowed (inclusive), or None.
        maximum: The largest value allowed (inclusive), or None.
        above: A bound the value must exceed (exclusive), or None.
        optional: Whether None is allowed too.

    Raises:
        ValueError: Naming ``label``, the rule and the value given.
    """
    if optional and value is None:
        return
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if ok:
        x = float(value)
        ok = (
            x == x  # not NaN
            and abs(x) != float("inf")
            and (minimum is None or x >= minimum)
            and (maximum is None or x <= maximum)
            and (above is None or x > above)
        )
    if not ok:
        rule = "None or a number" if optional else "a number"
        bounds = _range_text(minimum, maximum) + ("" if above is None else f" > {above}")
        raise ValueError(f"{label} must be {rule}{bounds}, got {value!r}")


def parse_seeds(text: str) -> tuple[int, ...]:
    """Seeds from ``"A-B"`` (inclusive), ``"A,B,C"``, ``"A"`` or a mix (``"1,5-7"``).

    Raises:
        ValueError: Saying what the syntax is, when ``text`` does not follow it or names no
            seed.
    """
    seeds: list[int] = []
    try:
        for part in text.split(","):
            part = part.strip()
            if not part:
                continue
            if "-" in part[1:]:
                cut = part.index("-", 1)
                a, b = int(part[:cut]), int(part[cut + 1 :])
                if b < a:
                    raise ValueError
                seeds.extend(range(a, b + 1))
            else:
                seeds.append(int(part))
    except ValueError:
        raise ValueError(f"seeds must look like 100-104 or 1,5,9, got {text!r}") from None
    if not seeds:
        raise ValueError(f"no seeds in {text!r}")
    return tuple(seeds)


def parse_size(text: str) -> tuple[int, int]:
    """``"HEIGHTxWIDTH"`` (e.g. ``"90x160"``; ``X`` and spaces allowed) -> ``(height, width)``.

    Raises:
        ValueError: Saying what the syntax is, when ``text`` does not follow it or a side is
            not positive.
    """
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"size must be HEIGHTxWIDTH, e.g. 90x160, got {text!r}") from None
    if h < 1 or w < 1:
        raise ValueError(f"size must be HEIGHTxWIDTH with positive sides, got {text!r}")
    return h, w
