"""``i3dmtn alerts --web``: a small live page served by the standard library.

Routes (GET only):
  ``/``                                the page (``static/index.html``), ``/static/app.js``, ``/static/style.css``
  ``/api/state``                       the whole state as JSON (:meth:`AlertState.to_dict`)
  ``/events/stream``                   Server-Sent Events: ``event: state`` with the same JSON on every change
  ``/snapshot/<device>/<camera>.jpg``  the latest snapshot of a camera
  ``/event-snapshot/<event_id>.jpg``   the snapshot taken near an event's start

Everything shown comes from MQTT and is untrusted: the page writes it with ``textContent`` only, and a
strict Content-Security-Policy forbids inline scripts. There is no authentication: bind to loopback
(the default) or put a reverse proxy with auth in front.
"""

from __future__ import annotations

import json
import logging
import math
import re
import socket
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from edge_runtime.alerts.state import AlertState
from edge_runtime.schema import SchemaError, validate_id

__all__ = ["AlertWebServer", "parse_listen_address", "STATIC_DIR"]

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).with_name("static")
_STATIC = {  # the only files served: no path from the URL ever reaches the file system
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/static/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/static/style.css": ("style.css", "text/css; charset=utf-8"),
}
_SNAPSHOT_RE = re.compile(r"^/snapshot/([^/]+)/([^/]+)\.jpg$")
_EVENT_SNAPSHOT_RE = re.compile(r"^/event-snapshot/([^/]+)\.jpg$")
_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self'; script-src 'self'; style-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
KEEPALIVE_S = 15.0  # an SSE comment this often keeps proxies from closing an idle stream


def parse_listen_address(text: str, default_host: str = "127.0.0.1") -> tuple[str, int]:
    """``[HOST]:PORT`` (or ``PORT``; ``[::1]:PORT`` for IPv6) -> ``(host, port)``; ValueError names the form."""
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host, port_text = "", text
    host = host.strip("[]") or default_host
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"--web expects [HOST]:PORT with a port 0-65535 (e.g. 127.0.0.1:8080), got {text!r}")
    return host, int(port_text)


def _json_bytes(value: Any) -> bytes:
    """Strict JSON: ``NaN``/``Infinity`` would make the browser's JSON.parse fail for the whole page.

    The state keeps only finite numbers; should one get in anyway, it is sent as ``null`` rather than
    breaking the page (and the stream) for every device.
    """
    try:
        return json.dumps(value, allow_nan=False).encode()
    except ValueError:
        log.warning("the alerts state held a non-finite number: sent as null")
        return json.dumps(_finite_or_null(value), allow_nan=False).encode()


def _finite_or_null(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_or_null(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_null(v) for v in value]
    return value


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        log.debug("web %s - " + format, self.client_address[0], *args)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        path = unquote(urlsplit(self.path).path)
        try:
            if path in _STATIC:
                name, content_type = _STATIC[path]
                self._send(HTTPStatus.OK, (STATIC_DIR / name).read_bytes(), content_type)
            elif path == "/api/state":
                self._send_json(self.server.state.to_dict())
            elif path == "/events/stream":
                self._stream()
            elif m := _SNAPSHOT_RE.match(path):
                device, camera = validate_id(m[1], "device"), validate_id(m[2], "camera")
                self._send_jpeg(self.server.state.snapshot(device, camera))
            elif m := _EVENT_SNAPSHOT_RE.match(path):
                self._send_jpeg(self.server.state.event_snapshot(validate_id(m[1], "event id")))
            else:
                self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain; charset=utf-8")
        except SchemaError:
            self._send(HTTPStatus.BAD_REQUEST, b"bad id\n", "text/plain; charset=utf-8")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the browser went away

    def _send(self, status: HTTPStatus, body: bytes, content_type: str, cache: str = "no-store") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", cache)
        for key, value in _SECURITY_HEADERS.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _send_json(self, value: Any) -> None:
        self._send(HTTPStatus.OK, _json_bytes(value), "application/json")

    def _send_jpeg(self, jpeg: bytes | None) -> None:
        if jpeg is None:
            self._send(HTTPStatus.NOT_FOUND, b"no snapshot\n", "text/plain; charset=utf-8")
        else:
            self._send(HTTPStatus.OK, jpeg, "image/jpeg")

    def _stream(self) -> None:
        """Server-Sent Events: the full state now, then again after every change (coalesced)."""
        self.close_connection = True
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        for key, value in _SECURITY_HEADERS.items():
            self.send_header(key, value)
        self.end_headers()
        state = self.server.state
        version, data = state.wait_for_change(-1, 0)
        while not self.server.closing.is_set():
            if data is not None:
                self.wfile.write(b"event: state\ndata: " + _json_bytes(data) + b"\n\n")
            else:
                self.wfile.write(b": keepalive\n\n")
            self.wfile.flush()
            version, data = state.wait_for_change(version, KEEPALIVE_S)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], state: AlertState):
        self.state = state
        self.closing = threading.Event()
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)


class AlertWebServer:
    """Serve ``state`` on ``host:port`` (port 0 picks a free one; see :attr:`port`) from a background thread."""

    def __init__(self, state: AlertState, host: str = "127.0.0.1", port: int = 0):
        self.state = state
        self._server = _Server((host, port), state)  # OSError (port in use, bad host) goes to the caller
        self.host = host
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="alerts-web", daemon=True)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def start(self) -> AlertWebServer:
        self._thread.start()
        log.info("alerts page on %s", self.url)
        return self

    def stop(self) -> None:
        self._server.closing.set()
        self.state.wake_all()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def __enter__(self) -> AlertWebServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
