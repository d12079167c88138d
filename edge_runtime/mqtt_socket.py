"""Socket-level helpers for paho clients: TCP_NODELAY on each new socket, and a readable connect error.

- :func:`set_no_delay` is a paho ``on_socket_open`` callback. Without it a small PUBLISH may wait in the
  kernel (Nagle) until the broker acknowledges the previous segment, which Linux delays up to 40 ms.
- :func:`describe_error` names an exception with its module, as a log line wants it:
  ``ssl.SSLCertVerificationError: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: ...``.

Example::

    client.on_socket_open = set_no_delay
"""

from __future__ import annotations

import socket
from typing import Any

__all__ = ["set_no_delay", "describe_error"]


def set_no_delay(client: Any, userdata: Any, sock: Any) -> None:
    """paho ``on_socket_open``: send each packet at once (``TCP_NODELAY``); other sockets are left alone."""
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (OSError, AttributeError):  # not a TCP socket (a websocket wrapper, a Unix socket)
        pass


def describe_error(error: BaseException | None) -> str:
    """``module.Type: message`` (builtins without a module); ``unknown reason`` for None."""
    if error is None:
        return "unknown reason"
    module = type(error).__module__
    return f"{'' if module == 'builtins' else module + '.'}{type(error).__qualname__}: {error}"
