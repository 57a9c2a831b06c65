"""
Command-line options declared once, on the attrs field they set: its
metadata holds the option's name, help text and value check, and the
field's type and default are the option's.  ``service.Options`` generates
its ``optParameters``, its checks and the config it builds from these, so
a limit added to ``ServerConfig`` with ``option(...)`` is an option too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import attrs

Check = Callable[[Any], "str | None"]
"""What is wrong with a value (``"must be positive"``), or None."""

_OPTION = "twistchat.option"


@attrs.frozen
class Option:
    name: str
    help: str
    check: Check | None = None
    short: str | None = None


def option(name: str, help: str, check: Check | None = None, short: str | None = None,
           **field: Any) -> Any:
    """An attrs field that is also the command-line option ``--name``."""
    return attrs.field(metadata={_OPTION: Option(name, help, check, short)}, **field)


def positive(value: float) -> str | None:
    return None if value > 0 else "must be positive"


def port_number(value: int) -> str | None:
    return None if 0 <= value <= 65535 else "must be 0-65535"


def power_of_two(value: int) -> str | None:
    return None if value >= 2 and not value & (value - 1) else "must be a power of two, at least 2"


def declared(cls: type) -> list[tuple[attrs.Attribute, Option]]:
    """The fields of ``cls`` that are options, in declaration order."""
    attrs.resolve_types(cls)
    return [(field, field.metadata[_OPTION]) for field in attrs.fields(cls)
            if _OPTION in field.metadata]


def opt_parameters(cls: type) -> list[list[Any]]:
    """``usage.Options.optParameters`` rows: name, short, default, help, type.
    A computed default (``attrs.Factory``) shows as none; its help says what it is."""
    rows = []
    for field, opt in declared(cls):
        default = None if isinstance(field.default, attrs.Factory) else field.default  # type: ignore[arg-type]
        rows.append([opt.name, opt.short, default, opt.help, field.type])
    return rows


def option_problems(cls: type, values: Mapping[str, Any]) -> Iterator[str]:
    """One line per option value its check refuses: ``--history must be positive``."""
    for _, opt in declared(cls):
        value = values[opt.name]
        if value is not None and opt.check is not None:
            wrong = opt.check(value)
            if wrong:
                yield f"--{opt.name} {wrong}"


def build_config(cls: type, values: Mapping[str, Any]) -> Any:
    """An instance of ``cls`` from parsed options; an option left unset (None)
    keeps the field's default, computed ones included."""
    return cls(**{field.name: values[opt.name] for field, opt in declared(cls)
                  if values[opt.name] is not None})
