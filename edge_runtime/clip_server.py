"""A read-only HTTP endpoint for the device's event clips: ``GET /clips/<event_id>.mp4`` with a bearer token.

Why an endpoint on the device rather than an upload: the device then holds no credentials of another system
(a storage bucket, a watcher's account), the watchers fetch only the clips they want, and a watcher that was
away fetches later from the same place (the clip stays until the device's retention removes it). The cost is
that watchers must reach the device; ``http_bind`` in the profile's ``[clips]`` says on which address.

- Every request needs ``Authorization: Bearer <token>``; the token comes from ``I3DMTN_CLIP_TOKEN``, the file
  named by ``I3DMTN_CLIP_TOKEN_FILE`` or the profile's ``token_file`` (never an option: argv is visible to
  every user), and is compared in constant time. A missing or wrong token is 401 before anything else.
- Only names of published clips are served (an event id and ``.mp4``/``.webm``: no ``/``, no ``..``, no hidden
  or partial files), opened relative to the clip folder without following a symbolic link: 404 otherwise.
- Only GET and HEAD: anything else is 405. The token never appears in the log.

>>> server = ClipServer(Path("/var/lib/i3dmtn/clips"), "127.0.0.1", 8765, token).start()  # doctest: +SKIP
"""

from __future__ import annotations

import hmac
import logging
import os
import shutil
import stat
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from .schema import CLIP_FILE_RE

__all__ = ["ENV_CLIP_TOKEN", "ENV_CLIP_TOKEN_FILE", "MIN_TOKEN_LENGTH", "ClipServer", "read_clip_token"]

log = logging.getLogger(__name__)

ENV_CLIP_TOKEN = "I3DMTN_CLIP_TOKEN"
ENV_CLIP_TOKEN_FILE = "I3DMTN_CLIP_TOKEN_FILE"
MIN_TOKEN_LENGTH = 16  # e.g. `openssl rand -hex 16`: not guessable over HTTP
_CONTENT_TYPES = {"mp4": "video/mp4", "webm": "video/webm"}
_PREFIX = "/clips/"


def read_clip_token(token_file: str | None = None, environ: Any = None) -> str:
    """The clip token: ``I3DMTN_CLIP_TOKEN``, else the file of ``I3DMTN_CLIP_TOKEN_FILE``, else ``token_file``
    (stripped). Raises ``ValueError`` (one line) when none is set, a file cannot be read or the token is short."""
    env = os.environ if environ is None else environ
    token, where = env.get(ENV_CLIP_TOKEN, ""), ENV_CLIP_TOKEN
    if not token:
        path = env.get(ENV_CLIP_TOKEN_FILE) or token_file
        if not path:
            raise ValueError(
                f"serving or fetching clips needs a token: set {ENV_CLIP_TOKEN} or {ENV_CLIP_TOKEN_FILE}"
                " (or the profile's [clips] token_file)"
            )
        try:
            token, where = Path(path).read_text(encoding="utf-8").strip(), f"clip token file {path}"
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"cannot read the clip token file {path}: {exc}") from None
    token = token.strip()
    if len(token) < MIN_TOKEN_LENGTH or any(c.isspace() or not c.isprintable() for c in token):
        raise ValueError(f"{where}: the clip token must be at least {MIN_TOKEN_LENGTH} printable characters")
    return token


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "i3dmtn-clips"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        log.debug("clip server: %s %s", self.address_string(), format % args)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._serve(body=True)

    def do_HEAD(self) -> None:  # noqa: N802
        self._serve(body=False)

    def _refuse_method(self) -> None:
        self._status(HTTPStatus.METHOD_NOT_ALLOWED, {"Allow": "GET, HEAD"})

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _refuse_method  # noqa: N815

    def _status(self, status: HTTPStatus, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _authorized(self) -> bool:
        header = self.headers.get("Authorization", "")
        scheme, _, given = header.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode("utf-8", "replace"), self.server.token
        )

    def _serve(self, *, body: bool) -> None:
        if not self._authorized():
            self._status(HTTPStatus.UNAUTHORIZED, {"WWW-Authenticate": 'Bearer realm="i3dmtn clips"'})
            return
        path = self.path.split("?", 1)[0]
        name = path[len(_PREFIX) :] if path.startswith(_PREFIX) else ""
        if not CLIP_FILE_RE.fullmatch(name):
            self._status(HTTPStatus.NOT_FOUND)
            return
        try:  # relative to the folder, never through a symbolic link
            fd = os.open(name, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0), dir_fd=self.server.folder_fd)
        except OSError:
            self._status(HTTPStatus.NOT_FOUND)
            return
        with os.fdopen(fd, "rb") as fh:
            info = os.fstat(fh.fileno())
            if not stat.S_ISREG(info.st_mode):
                self._status(HTTPStatus.NOT_FOUND)
                return
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", _CONTENT_TYPES[name.rsplit(".", 1)[1]])
            self.send_header("Content-Length", str(info.st_size))
            self.send_header("Cache-Control", "private, max-age=86400")  # a published clip never changes
            self.end_headers()
            if body:
                try:
                    shutil.copyfileobj(fh, self.wfile)
                except (BrokenPipeError, ConnectionResetError):
                    log.debug("clip server: %s closed the connection during %s", self.address_string(), name)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], folder: Path, token: str) -> None:
        super().__init__(address, _Handler)
        self.token = token.encode("utf-8")
        self.folder_fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))

    def server_close(self) -> None:
        super().server_close()
        os.close(self.folder_fd)


class ClipServer:
    """Serves ``folder``'s clips at ``http://host:port/clips/<name>`` on a daemon thread (see the module)."""

    def __init__(self, folder: Path, host: str, port: int, token: str) -> None:
        self.folder = Path(folder)
        self._server = _Server((host, port), self.folder, token)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> ClipServer:
        self._thread = threading.Thread(target=self._server.serve_forever, name="clip-server", daemon=True)
        self._thread.start()
        host, port = self._server.server_address[:2]
        log.info("serving clips of %s at http://%s:%d/clips/ (token needed)", self.folder, host, port)
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> ClipServer:
        return self.start() if self._thread is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()
