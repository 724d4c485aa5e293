"""Typed fields of a decoded item (``table.from_item``), for the stores that build records from
one: each reader narrows the stored value to what the record holds, the way the record was
written (numbers are ``N``, text ``S``, lists ``L``), without trusting a type it cannot see."""

from __future__ import annotations

from collections.abc import Mapping


def text(v: Mapping[str, object], name: str, default: str | None = None) -> str:
    value = v[name] if default is None else v.get(name, default)
    return value if isinstance(value, str) else str(value)


def opt_text(v: Mapping[str, object], name: str) -> str | None:
    value = v.get(name)
    return None if value is None else text(v, name)


def number(v: Mapping[str, object], name: str, default: int | None = None) -> int:
    value = v[name] if default is None else v.get(name, default)
    if isinstance(value, int | float | str):
        return int(value)
    raise TypeError(f"{name} is not a number")


def opt_number(v: Mapping[str, object], name: str) -> int | None:
    return None if v.get(name) is None else number(v, name)


def flag(v: Mapping[str, object], name: str) -> bool:
    return bool(v.get(name, False))


def texts(v: Mapping[str, object], name: str) -> tuple[str, ...]:
    value = v.get(name, ())
    return tuple(str(x) for x in value) if isinstance(value, list | tuple) else ()
