"""``i3dmtn alerts --web``: a small live page served by the standard library.

Routes:
  GET ``/``                                the page (``static/index.html``), ``/static/app.js``, ``/static/style.css``
  GET ``/api/state``                       the whole state as JSON (:meth:`AlertState.to_dict`)
  GET ``/events/stream``                   Server-Sent Events: ``event: state`` with the same JSON on every change
  GET ``/snapshot/<device>/<camera>.jpg``  the latest snapshot of a camera
  GET ``/event-snapshot/<event_id>.jpg``   the snapshot taken near an event's start
  GET ``/clips/<device>/<event_id>.mp4``   a clip the watcher saved (``--save-clips``), with byte ranges
  GET ``/api/session``                     this browser's session: may it review, must it log in, its CSRF token
  POST ``/api/login``                      ``{"password"}`` -> a session that may review
  POST ``/api/reviews``                    ``{"event_id", "verdict", "note"}`` with ``X-CSRF-Token`` -> the review

Everything shown comes from MQTT and is untrusted: the page writes it with ``textContent`` only, and a
strict Content-Security-Policy forbids inline scripts. Viewing needs no login; reviewing is guarded by
:mod:`alert_consumer.web_auth` (a password beyond loopback, a SameSite cookie and a CSRF token).
"""

from __future__ import annotations

import json
import logging
import math
import re
import socket
import threading
import time
from http import HTTPStatus
from http.cookies import CookieError, SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from alert_consumer.state import AlertState
from alert_consumer.web_auth import COOKIE, WebAuth
from alert_consumer.web_files import send_file_range
from edge_runtime.schema import CLIP_FILE_RE, SchemaError, validate_id

__all__ = ["AlertWebServer", "parse_listen_address", "clip_url", "STATIC_DIR"]

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
_CLIP_RE = re.compile(r"^/clips/([^/]+)/([^/]+)$")
MAX_BODY = 4096  # bytes of a POST: a review or a login is far smaller
LOGIN_FAILURE_DELAY_S = 1.0  # slows password guessing down to one try a second per connection
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


def clip_url(device_id: str, file: str) -> str:
    """Where the page fetches a saved clip: ``/clips/<device>/<file>``."""
    return f"/clips/{validate_id(device_id, 'device_id')}/{file}"


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
            elif m := _CLIP_RE.match(path):
                self._send_clip(validate_id(m[1], "device"), m[2])
            elif path == "/api/session":
                self._send_session()
            else:
                self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain; charset=utf-8")
        except SchemaError:
            self._send(HTTPStatus.BAD_REQUEST, b"bad id\n", "text/plain; charset=utf-8")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the browser went away

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        path = urlsplit(self.path).path
        try:
            if path not in ("/api/login", "/api/reviews"):
                self._send_error(HTTPStatus.NOT_FOUND, "not found")
            elif (why := self._cross_site()) is not None:
                self._send_error(HTTPStatus.FORBIDDEN, why)
            elif (body := self._json_body()) is not None:
                (self._login if path == "/api/login" else self._review)(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    # -- writing -----------------------------------------------------------------------------------------
    def _cross_site(self) -> str | None:
        """A browser sends Origin with every POST: it must be this page's own."""
        origin = self.headers.get("Origin")
        if origin is not None and urlsplit(origin).netloc != self.headers.get("Host"):
            return f"cross-site request from {origin[:80]!r} refused"
        if self.headers.get_content_type() != "application/json":
            return "expected Content-Type: application/json"
        return None

    def _json_body(self) -> dict[str, Any] | None:
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY:
            self.close_connection = True
            self._send_error(HTTPStatus.BAD_REQUEST, f"expected a JSON body of at most {MAX_BODY} bytes")
            return None
        try:
            body = json.loads(self.rfile.read(length).decode("utf-8"))
        except (ValueError, RecursionError):
            body = None
        if not isinstance(body, dict):
            self._send_error(HTTPStatus.BAD_REQUEST, "expected a JSON object")
            return None
        return body

    def _cookie_sid(self) -> str | None:
        try:
            morsel = SimpleCookie(self.headers.get("Cookie", "")).get(COOKIE)
        except CookieError:
            return None
        return morsel.value if morsel else None

    def _login(self, body: dict[str, Any]) -> None:
        auth = self.server.auth
        password = body.get("password")
        opened = auth.login(password) if isinstance(password, str) and auth.login_required else None
        if opened is None:
            time.sleep(LOGIN_FAILURE_DELAY_S if auth.login_required else 0)
            why = "wrong password" if auth.login_required else "this page has no login (no password is set)"
            log.warning("web login refused from %s: %s", self.client_address[0], why)
            self._send_error(HTTPStatus.UNAUTHORIZED, why)
            return
        self._send_session(opened)

    def _review(self, body: dict[str, Any]) -> None:
        desk = self.server.desk
        if desk is None:
            self._send_error(HTTPStatus.FORBIDDEN, "reviews need the watcher's database (--db)")
            return
        why = self.server.auth.may_write(self._cookie_sid(), self.headers.get("X-CSRF-Token"))
        if why is not None:
            log.warning("review refused from %s: %s", self.client_address[0], why)
            self._send_error(HTTPStatus.UNAUTHORIZED, why)
            return
        try:
            review = desk.submit(str(body.get("event_id")), body.get("verdict"), body.get("note", ""))
        except SchemaError as exc:
            self._send_error(HTTPStatus.BAD_REQUEST, str(exc))
            return
        self._send_json(review)

    def _send_session(self, opened: tuple[str, Any] | None = None) -> None:
        auth = self.server.auth
        sid, session = opened or auth.open_session(self._cookie_sid())
        info = {
            "can_review": self.server.desk is not None and not auth.read_only,
            "login_required": auth.login_required,
            "logged_in": session.can_write,
            "csrf": session.csrf,
            "read_only_reason": auth.may_write(None, None) if auth.read_only else None,
        }
        cookie = f"{COOKIE}={sid}; Path=/; HttpOnly; SameSite=Strict; Max-Age=43200"
        self._send(HTTPStatus.OK, _json_bytes(info), "application/json", extra={"Set-Cookie": cookie})

    def _send_error(self, status: HTTPStatus, message: str) -> None:
        self._send(status, _json_bytes({"error": message}), "application/json")

    def _send_clip(self, device: str, name: str) -> None:
        folder = self.server.clips_dir
        if folder is None or not CLIP_FILE_RE.fullmatch(name):
            self._send(HTTPStatus.NOT_FOUND, b"no such clip\n", "text/plain; charset=utf-8")
            return
        send_file_range(self, folder / device, name, self._send)

    def _send(self, status: HTTPStatus, body: bytes, content_type: str, cache: str = "no-store",
              extra: dict[str, str] | None = None) -> None:  # fmt: skip
        self.send_response(status)
        for key, value in (extra or {}).items():
            self.send_header(key, value)
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

    def __init__(self, address: tuple[str, int], state: AlertState, auth: WebAuth, desk: Any,
                 clips_dir: Path | None):  # fmt: skip
        self.state, self.auth, self.desk, self.clips_dir = state, auth, desk, clips_dir
        self.closing = threading.Event()
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)


class AlertWebServer:
    """Serve ``state`` on ``host:port`` (port 0 picks a free one; see :attr:`port`) from a background thread.

    ``desk`` (a :class:`~alert_consumer.reviewing.ReviewDesk`) makes the page able to review, guarded by
    ``password`` (see :mod:`~alert_consumer.web_auth`); ``clips_dir`` is where the saved clips are.
    """

    def __init__(self, state: AlertState, host: str = "127.0.0.1", port: int = 0, *, desk: Any = None,
                 password: str | None = None, clips_dir: Path | None = None):  # fmt: skip
        self.state = state
        self.auth = WebAuth(host, password)
        # OSError (port in use, bad host) goes to the caller
        self._server = _Server((host, port), state, self.auth, desk, Path(clips_dir) if clips_dir else None)
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
