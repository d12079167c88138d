"""Hypothesis strategies shared by the fuzz tests: random JSON values and mutations of a valid document."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

__all__ = ["FUZZ", "json_values", "paths_of", "mutate", "assert_one_line", "deeply_nested"]

# >= 1000 examples per target, no per-example deadline (a shared CI core), no example database on disk.
FUZZ = settings(
    max_examples=1000,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=24)
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=10,
)


def paths_of(doc: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path (tuple of keys / indexes) into a nested dict/list document, the root included."""
    out = [prefix]
    if isinstance(doc, dict):
        for key, value in doc.items():
            out += paths_of(value, prefix + (key,))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            out += paths_of(value, prefix + (i,))
    return out


def _parent(doc: Any, path: tuple) -> Any:
    for key in path[:-1]:
        doc = doc[key]
    return doc


def mutate(data: st.DataObject, valid: Any, max_mutations: int = 3) -> Any:
    """A copy of ``valid`` with 1..``max_mutations`` random changes: a value replaced by random JSON, a key
    deleted, a value wrapped in a list, turned into a string, or a key renamed."""
    doc = copy.deepcopy(valid)
    for _ in range(data.draw(st.integers(1, max_mutations), label="mutations")):
        paths = [p for p in paths_of(doc) if p]
        if not paths:
            return data.draw(json_values, label="root")
        path = data.draw(st.sampled_from(paths), label="path")
        parent, key = _parent(doc, path), path[-1]
        op = data.draw(st.sampled_from(["replace", "delete", "wrap", "stringify", "rename"]), label="op")
        if op == "replace":
            parent[key] = data.draw(json_values, label="value")
        elif op == "delete":
            del parent[key]
        elif op == "wrap":
            parent[key] = [parent[key]]
        elif op == "stringify":
            parent[key] = str(parent[key])
        elif isinstance(parent, dict):
            parent[data.draw(st.text(max_size=10), label="new key")] = parent.pop(key)
    return doc


def assert_one_line(exc: BaseException, *names: str) -> None:
    """The error message is one non-empty line (and names one of ``names``, when given)."""
    message = str(exc)
    assert message and "\n" not in message, repr(message)
    if names:
        assert any(n in message for n in names), message


def deeply_nested(depth: int = 100_000) -> bytes:
    """JSON nested deeper than Python's recursion limit: ``[[[[...``."""
    return b"[" * depth + b"]" * depth
