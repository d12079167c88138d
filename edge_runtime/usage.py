"""The one usage error of every command line (``i3dmtn``, ``edge-runtime``, ``i3dmtn alerts``).

A bad option or input raises :class:`UsageError`; the command prints its message as one line and exits with
status 2. It lives here, in the device package, because every other package may import ``edge_runtime``.
"""

from __future__ import annotations

__all__ = ["UsageError"]


class UsageError(ValueError):
    """A bad option or input: printed as one line, exit status 2."""
