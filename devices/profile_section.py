"""Typed reads of one table of a device profile's TOML, with one-line errors naming the file, the section and
the key (:class:`ProfileError`). stdlib only.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["ProfileError", "Section", "describe_toml"]

_MISSING = object()


class ProfileError(ValueError):
    """A device profile that cannot be used; one line naming the file and the key."""


class Section:
    """Typed reads of one TOML table, with errors naming the file, the section and the key."""

    def __init__(self, data: dict[str, Any], section: str, where: str) -> None:
        self.section, self.where = section, where
        value = data.get(section, {})
        if not isinstance(value, dict):
            raise self.error(f"[{section}] must be a table, got {describe_toml(value)}")
        self.table = value

    def error(self, message: str) -> ProfileError:
        return ProfileError(f"{self.where}: {message}")

    def only(self, allowed: tuple[str, ...]) -> None:
        for key in self.table:
            if key not in allowed:
                raise self.error(f"[{self.section}] unknown key {key!r}; known: {', '.join(allowed)}")

    def get(self, key: str, types: tuple[type, ...], kind: str, default: Any = _MISSING) -> Any:
        if key not in self.table:
            if default is _MISSING:
                raise self.error(f"[{self.section}] {key} is missing")
            return default
        value = self.table[key]
        if (isinstance(value, bool) and bool not in types) or not isinstance(value, types):
            raise self.error(f"[{self.section}] {key} must be {kind}, got {describe_toml(value)}")
        return value

    def choice(self, key: str, choices: tuple[str, ...], default: Any = _MISSING) -> Any:
        value = self.get(key, (str,), "a string", default)
        if value is not default and value not in choices:
            raise self.error(f"[{self.section}] {key} must be one of {', '.join(choices)}, got {value!r}")
        return value

    def integer(self, key: str, low: int, high: int | None = None, default: Any = _MISSING) -> Any:
        value = self.get(key, (int,), "an integer", default)
        if value is not default and (value < low or (high is not None and value > high)):
            bounds = f"in [{low}, {high}]" if high is not None else f">= {low}"
            raise self.error(f"[{self.section}] {key} must be an integer {bounds}, got {value}")
        return value

    def number(
        self,
        key: str,
        default: Any,
        *,
        low: float,
        high: float | None = None,
        open_low: bool = False,
        open_high: bool = False,
    ) -> Any:
        value = self.get(key, (int, float), "a number", default)
        if value is default:
            return value
        too_low = value < low or (open_low and value == low)
        too_high = high is not None and (value > high or (open_high and value == high))
        if too_low or too_high or not math.isfinite(value):
            top = "inf)" if high is None else f"{high:g}{')' if open_high else ']'}"
            bounds = f"{'(' if open_low else '['}{low:g}, {top}"
            raise self.error(f"[{self.section}] {key} must be a number in {bounds}, got {value!r}")
        return float(value)


def describe_toml(value: Any) -> str:
    kind = {bool: "boolean", int: "integer", float: "float", str: "string", list: "array", dict: "table"}
    text = repr(value) if not isinstance(value, bool) else str(value).lower()
    return f"{kind.get(type(value), type(value).__name__)} {text[:60]}"
