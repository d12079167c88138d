"""``i3dmtn alerts --save-clips DIR``: fetch each event's clip from its device once the ``end`` says it exists.

The device serves its clips read-only over HTTP (:mod:`edge_runtime.clip_server`); the watcher is told where
by ``--clip-server URL`` (``{device_id}`` in it is replaced by the event's device id, e.g.
``http://{device_id}.lan:8765``) and sends the token of ``I3DMTN_CLIP_TOKEN`` / ``I3DMTN_CLIP_TOKEN_FILE``.
The URL comes from the watcher's own options, never from a message: anyone who can publish on the broker
could otherwise point the watcher, and its token, at a server of their choosing.

Fetches run on one worker thread (the MQTT loop never waits on a download). A clip is streamed into a
``.part`` file, at most the announced ``size_bytes``, its SHA-256 (:func:`edge_runtime.bundle.sha256_file`)
checked against the event's, then renamed to ``DIR/<device_id>/<event_id>.<ext>``; a mismatch is deleted
with a warning. A device that cannot be reached is tried again a few times with backoff.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from edge_runtime.bundle import sha256_file
from edge_runtime.schema import event_clip, validate_id

from .consumer import AlertSink

__all__ = ["ClipFetcher", "clip_path"]

log = logging.getLogger(__name__)

_ATTEMPTS = 4  # a device that is busy or restarting: tried again after 1, 2 and 4 s
_CHUNK = 1 << 16


def clip_path(directory: Path, event: dict[str, Any]) -> Path:
    """Where the clip of a validated ``end`` event is saved: ``DIR/<device_id>/<clip file>``."""
    clip = event_clip(event)
    if clip is None:
        raise ValueError(f"event {event['event_id']} has no clip")
    return Path(directory) / validate_id(event["device_id"], "device_id") / clip["file"]


class ClipFetcher(AlertSink):
    """Saves the clip of each ``end`` event that has one (see the module docstring)."""

    def __init__(self, directory: Path, server_url: str, token: str, *, retry_s: float = 1.0,
                 timeout_s: float = 30.0, max_pending: int = 1000) -> None:  # fmt: skip
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.server_url, self.retry_s, self.timeout_s = server_url.rstrip("/"), retry_s, timeout_s
        self._token = token
        self.saved: list[Path] = []
        self.listeners: list[Any] = []  # called as listener(event, path) after each clip is saved
        self.failed: list[str] = []  # event ids
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue(max_pending)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, name="clip-fetcher", daemon=True)
        self._thread.start()

    def on_event(self, event: dict[str, Any]) -> None:
        if event["type"] != "end" or event_clip(event) is None:
            return
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            log.warning("clip of event %s not fetched: too many clips waiting", event["event_id"])

    def close(self, timeout: float | None = None) -> None:
        """Fetch what is queued (up to ``timeout`` seconds), then stop the worker."""
        self._queue.put(None)
        self._thread.join(timeout)
        self._stop.set()

    def url(self, event: dict[str, Any]) -> str:
        base = self.server_url.replace("{device_id}", validate_id(event["device_id"], "device_id"))
        return f"{base}/clips/{event_clip(event)['file']}"  # type: ignore[index]

    def _work(self) -> None:
        while (event := self._queue.get()) is not None:
            try:
                self._fetch_with_retries(event)
            except Exception:  # noqa: BLE001 - one clip never stops the others
                log.exception("clip of event %s: fetch failed", event["event_id"])
                self.failed.append(event["event_id"])

    def _fetch_with_retries(self, event: dict[str, Any]) -> None:
        path = clip_path(self.directory, event)
        if path.exists():
            log.debug("clip %s already saved", path)
            return
        url = self.url(event)
        for attempt in range(_ATTEMPTS):
            try:
                self._fetch(url, path, event_clip(event))  # type: ignore[arg-type]
            except (urllib.error.URLError, OSError) as exc:
                reason = getattr(exc, "reason", None) or exc
                if isinstance(exc, urllib.error.HTTPError) and exc.code in (401, 403, 404):
                    log.warning(
                        "clip of event %s not fetched from %s: HTTP %d", event["event_id"], url, exc.code
                    )
                    break
                if attempt + 1 < _ATTEMPTS and not self._stop.wait(self.retry_s * 2**attempt):
                    log.info("clip of event %s: %s; trying again", event["event_id"], reason)
                    continue
                log.warning("clip of event %s not fetched from %s: %s", event["event_id"], url, reason)
                break
            else:
                if path.exists():
                    self._tell(event, path)
                return
        self.failed.append(event["event_id"])

    def _tell(self, event: dict[str, Any], path: Path) -> None:
        for listener in self.listeners:
            try:
                listener(event, path)
            except Exception:  # noqa: BLE001 - a listener never stops the fetching
                log.exception("clip listener failed for %s", path)

    def _fetch(self, url: str, path: Path, clip: dict[str, Any]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        part = path.with_name(f".{path.name}.part")
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {self._token}"})
        size, expected = 0, int(clip["size_bytes"])
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as resp, open(part, "wb") as out:  # noqa: S310 - the watcher's own --clip-server URL
                while block := resp.read(_CHUNK):
                    size += len(block)
                    if size > expected:
                        raise OSError(f"the server sent more than the announced {expected} bytes")
                    out.write(block)
            digest = sha256_file(part)
            if digest != clip["sha256"]:
                log.warning(
                    "clip %s refused: its SHA-256 %s is not the event's %s (%d of %d bytes)",
                    path.name, digest[:16], clip["sha256"][:16], size, expected,
                )  # fmt: skip
                part.unlink(missing_ok=True)
                self.failed.append(path.stem)
                return
            os.replace(part, path)
        except BaseException:
            part.unlink(missing_ok=True)
            raise
        self.saved.append(path)
        log.info("saved clip %s (%.0f kB, SHA-256 checked)", path, size / 1e3)
