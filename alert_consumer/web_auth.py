"""Who may write on the alerts page (mark an event "fight" or "false alarm"): sessions, login and CSRF.

Viewing needs nothing. Writing needs a session (an ``HttpOnly; SameSite=Strict`` cookie) that is allowed to
write, and every state-changing request must echo the session's CSRF token in ``X-CSRF-Token`` (a page of
another site can neither read the token nor send the cookie with its request):

- with a password (``I3DMTN_WEB_PASSWORD`` or the file named by ``I3DMTN_WEB_PASSWORD_FILE``; never an option,
  argv is visible to every user) a session may write after ``POST /api/login`` with it;
- without one, a page bound to loopback gets a writing session at once (only this machine's users reach it);
  bound beyond loopback it stays read-only, and says so.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "ENV_WEB_PASSWORD",
    "ENV_WEB_PASSWORD_FILE",
    "Session",
    "WebAuth",
    "is_loopback",
    "read_web_password",
]

ENV_WEB_PASSWORD = "I3DMTN_WEB_PASSWORD"
ENV_WEB_PASSWORD_FILE = "I3DMTN_WEB_PASSWORD_FILE"
MIN_PASSWORD_LENGTH = 8
SESSION_S = 12 * 3600.0  # a login lasts a working day
MAX_SESSIONS = 1000  # the oldest go first: a flood of GETs cannot grow the table without bound
COOKIE = "i3dmtn_session"


def is_loopback(host: str) -> bool:
    """``127.0.0.0/8``, ``::1`` and ``localhost``; every other address (``0.0.0.0`` too) is beyond loopback."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_web_password(environ: Mapping[str, str] | None = None) -> str | None:
    """The page's password from the environment or its file, or None; ``ValueError`` (one line) when both are
    set, the file cannot be read, or the password is shorter than 8 characters."""
    env = os.environ if environ is None else environ
    direct, file_name = env.get(ENV_WEB_PASSWORD), env.get(ENV_WEB_PASSWORD_FILE)
    if direct and file_name:
        raise ValueError(f"set only one of {ENV_WEB_PASSWORD} and {ENV_WEB_PASSWORD_FILE}, not both")
    if file_name:
        try:
            direct = Path(file_name).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(
                f"{ENV_WEB_PASSWORD_FILE} {file_name!r}: cannot read it ({exc.__class__.__name__})"
            ) from None
    if not direct:
        return None
    if len(direct) < MIN_PASSWORD_LENGTH:
        where = ENV_WEB_PASSWORD_FILE if file_name else ENV_WEB_PASSWORD
        raise ValueError(f"{where}: the page's password must be at least {MIN_PASSWORD_LENGTH} characters")
    return direct


@dataclass
class Session:
    csrf: str
    can_write: bool
    created: float


class WebAuth:
    """Sessions of one page bound to ``host``; ``password`` None means none is set (see the module docstring)."""

    def __init__(self, host: str, password: str | None) -> None:
        self._password = password
        self.loopback = is_loopback(host)
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def login_required(self) -> bool:
        return self._password is not None

    @property
    def read_only(self) -> bool:
        """Beyond loopback without a password: nobody may write."""
        return self._password is None and not self.loopback

    def session(self, sid: str | None) -> Session | None:
        with self._lock:
            session = self._sessions.get(sid or "")
            if session is not None and time.time() - session.created > SESSION_S:
                del self._sessions[sid]  # type: ignore[arg-type]
                return None
            return session

    def open_session(self, sid: str | None) -> tuple[str, Session]:
        """The session of cookie ``sid``, or a new one (allowed to write only on loopback without a password)."""
        if (session := self.session(sid)) is not None:
            return sid, session  # type: ignore[return-value]
        return self._new(can_write=self._password is None and self.loopback)

    def login(self, password: str) -> tuple[str, Session] | None:
        """A new writing session for the right password (compared in constant time), else None."""
        if self._password is None or not hmac.compare_digest(password.encode(), self._password.encode()):
            return None
        return self._new(can_write=True)

    def may_write(self, sid: str | None, csrf: str | None) -> str | None:
        """None when the session ``sid`` may write and ``csrf`` is its token; else why not (one line)."""
        if self.read_only:
            return f"this page is read-only: bound beyond loopback without {ENV_WEB_PASSWORD}"
        session = self.session(sid)
        if session is None or not session.can_write:
            return "log in first" if self.login_required else "no session: reload the page"
        if not csrf or not hmac.compare_digest(csrf.encode(), session.csrf.encode()):
            return "missing or wrong CSRF token: reload the page"
        return None

    def _new(self, *, can_write: bool) -> tuple[str, Session]:
        sid, session = secrets.token_urlsafe(32), Session(secrets.token_urlsafe(32), can_write, time.time())
        with self._lock:
            self._sessions[sid] = session
            while len(self._sessions) > MAX_SESSIONS:
                self._sessions.popitem(last=False)
        return sid, session
