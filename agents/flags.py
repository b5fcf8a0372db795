"""Config dataclasses as command-line flags: names, types, help and defaults from one place.

A subcommand does not re-declare its settings: :func:`add_config_flags` turns the fields of a
frozen config dataclass into ``--flags`` (``batch_size`` -> ``--batch-size``), taking each
flag's help from the field's line in the class docstring's ``Attributes:`` section and its
default from the dataclass, and :func:`config_from_args` builds the config back from the parsed
arguments. So ``gta5drive train --lr`` cannot drift from ``TrainConfig.lr`` again (CleanRL's
``tyro`` does the same; this is the small part of it we need).

Field types map onto flags like this: ``bool`` (and ``bool | None``) -> ``--x/--no-x``;
``int``, ``float``, ``str``, ``Path`` -> a typed value; ``Literal[...]`` -> choices;
``tuple[int, int]`` -> ``HEIGHTxWIDTH`` (:func:`gta_env.fields.parse_size`);
``tuple[int, ...]`` -> a seed list (:func:`gta_env.fields.parse_seeds`); ``X | None`` -> X
with a default of None. Other fields (nested configs, specs) are left to the subcommand.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import re
import types
import typing
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

from gta_env.fields import parse_seeds, parse_size

__all__ = [
    "add_config_flags",
    "config_from_args",
    "config_kwargs",
    "field_default",
    "field_docs",
    "flag_type",
]

C = TypeVar("C")

_DOC_LINE = re.compile(r"^(\s*)(\w+):\s*(.*)$")


def plain_text(doc: str) -> str:
    """reStructuredText roles and literals as plain words, for ``--help``: a role shows its
    target (``~`` its last part, as Sphinx does), double backticks go."""

    def role(m: re.Match[str]) -> str:
        return m.group(2).rsplit(".", 1)[-1] if m.group(1) else m.group(2)

    return re.sub(r":[a-z]+:`(~?)([^`]+)`", role, doc).replace("``", "")


def field_docs(cls: type) -> dict[str, str]:
    """Each field's description from the ``Attributes:`` section of ``cls``'s docstring.

    Continuation lines (indented deeper) are joined; reStructuredText markup is kept.
    """
    doc = inspect.getdoc(cls) or ""
    docs: dict[str, str] = {}
    inside, indent, current = False, -1, None
    for line in doc.splitlines():
        if line.strip() == "Attributes:":
            inside, indent, current = True, -1, None
            continue
        if not inside:
            continue
        if not line.strip():
            continue
        depth = len(line) - len(line.lstrip())
        m = _DOC_LINE.match(line)
        if depth == 0:  # the next section
            inside = False
            continue
        if m and (indent < 0 or depth == indent):
            indent = depth
            current = m.group(2)
            docs[current] = m.group(3).strip()
        elif current is not None and depth > indent:
            docs[current] += " " + line.strip()
    return docs


def _argument_type(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """``parse`` whose ``ValueError`` message argparse shows as is."""

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = getattr(parse, "__name__", "value")
    return convert


def _strip_none(tp: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return args[0], True
    return tp, False


def flag_type(tp: Any) -> dict[str, Any] | None:
    """``add_argument`` keywords for a field type, or None when it has no flag form."""
    tp, _ = _strip_none(tp)
    if tp is bool:
        return {"action": argparse.BooleanOptionalAction}
    if tp in (int, float, str):
        return {"type": tp}
    if tp is Path:
        return {"type": Path}
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Literal:
        return {"choices": list(args), "type": type(args[0])}
    if origin is tuple:
        if args == (int, int):
            return {"type": _argument_type(parse_size), "metavar": "HxW"}
        if args == (int, Ellipsis):
            return {"type": _argument_type(parse_seeds), "metavar": "A-B|A,B,C"}
    return None


def field_default(cls: type, name: str) -> Any:
    """The default of the dataclass field ``cls.name`` (its factory called), for a flag that a
    subcommand declares itself but whose default must still come from the config."""
    return _default({f.name: f for f in dataclasses.fields(cls)}[name])


def _default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def _shown(value: Any) -> str:
    if isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return f"{value[0]}x{value[1]}"
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value) or "none"
    return str(value)


def add_config_flags(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    cls: type,
    *,
    only: Sequence[str] | None = None,
    exclude: Collection[str] = (),
    prefix: str = "",
    names: Mapping[str, str] | None = None,
    defaults: Mapping[str, Any] | None = None,
    help: Mapping[str, str] | None = None,
    required: Collection[str] = (),
    choices: Mapping[str, Sequence[Any]] | None = None,
    show_defaults: bool = True,
) -> list[str]:
    """Add one ``--flag`` per field of the dataclass ``cls``.

    Args:
        parser: The (sub)parser or argument group to add to.
        cls: A config dataclass with a Google-style ``Attributes:`` docstring.
        only: The fields to expose, in this order (default: every field with a flag form).
        exclude: Fields not to expose.
        prefix: Prepended to each destination (``args.<prefix><field>``), so that two configs
            with a field of the same name can share a parser; :func:`config_from_args` takes
            the same prefix.
        names: Flag names other than the field's (``{"image_size": "size"}`` -> ``--size``).
        defaults: Defaults other than the dataclass's (for a subcommand whose purpose needs
            another one; say why where you pass it).
        help: Help other than the docstring's.
        required: Fields that must be given (no default).
        choices: Allowed values of fields whose type does not say them (e.g. a ``str``
            checked in ``__post_init__``).
        show_defaults: End each help with ``(default: ...)``.

    Returns:
        The fields added.

    Raises:
        TypeError: If a field named in ``only`` has a type without a flag form.
    """
    names, defaults, help, choices = names or {}, defaults or {}, help or {}, choices or {}
    hints = typing.get_type_hints(cls)
    by_name = {f.name: f for f in dataclasses.fields(cls)}
    docs = field_docs(cls)
    chosen = list(only) if only is not None else [n for n in by_name if n not in exclude]
    added = []
    for name in chosen:
        kind = flag_type(hints[name])
        if kind is None:
            if only is not None:
                raise TypeError(
                    f"{cls.__name__}.{name} ({hints[name]}) has no flag form; parse it in the "
                    "subcommand and pass it to config_from_args"
                )
            continue
        default = defaults[name] if name in defaults else _default(by_name[name])
        text = plain_text(help.get(name, docs.get(name, ""))).rstrip(".")
        flag = names.get(name, name).replace("_", "-")
        kwargs: dict[str, Any] = dict(kind, dest=prefix + name, help=text.replace("%", "%%"))
        if name in choices:
            kwargs["choices"] = list(choices[name])
        if "action" not in kind and "choices" not in kwargs:
            kwargs.setdefault("metavar", flag.upper().replace("-", "_"))
        if name in required:
            kwargs["required"] = True
        else:
            kwargs["default"] = None if default is dataclasses.MISSING else default
            if show_defaults:
                shown = _shown(kwargs["default"]).replace("%", "%%")
                kwargs["help"] = f"{kwargs['help']} (default: {shown})".lstrip()
        if kind.get("action") is not None:
            kwargs.pop("type", None)
        parser.add_argument("--" + flag, **kwargs)
        added.append(name)
    # Remember which fields came from flags, so that config_from_args takes exactly those and
    # not some other argument that happens to share a field's name.
    key = _registry_key(cls, prefix)
    parser.set_defaults(**{key: [*(parser.get_default(key) or []), *added]})
    return added


def _registry_key(cls: type, prefix: str) -> str:
    return f"_flags_{prefix}{cls.__module__}.{cls.__qualname__}"


def config_kwargs(args: argparse.Namespace, cls: type, *, prefix: str = "") -> dict[str, Any]:
    """The values of ``cls``'s fields that :func:`add_config_flags` put into ``args``."""
    values = vars(args)
    registered = values.get(_registry_key(cls, prefix))
    if registered is None:
        raise ValueError(
            f"no flags of {cls.__name__} (prefix {prefix!r}) were parsed; call "
            "add_config_flags on this parser first"
        )
    return {name: values[prefix + name] for name in registered}


def config_from_args(
    args: argparse.Namespace, cls: type[C], *, prefix: str = "", **fields: Any
) -> C:
    """Build ``cls`` from parsed flags; ``fields`` adds or overrides fields (nested configs,
    values parsed by the subcommand itself)."""
    return cls(**{**config_kwargs(args, cls, prefix=prefix), **fields})
