"""The publisher's connection between connects: when paho retries, and what is logged about it.

- :class:`ReconnectBackoff` sets each reconnect wait: doubled from ``RECONNECT_MIN_DELAY_S`` (0.5 s) up to
  ``RECONNECT_MAX_DELAY_S`` (5 s), each with +-20 % jitter. The cap keeps a broker that is back for 10 s
  reachable (with a 30 s cap a device missed such windows after a long outage); the jitter keeps devices that
  lost one broker together from retrying in step. paho has no jitter of its own: before each of its waits
  (from ``on_connect_fail`` / ``on_disconnect``) the next wait is set as paho's minimum delay.
- :class:`ConnectionLog` logs a connect failure once per distinct reason as a WARNING (then DEBUG) until
  connected, a lost connection as a WARNING, and one ERROR when the broker keeps closing the connection
  right after accepting it: MQTT lets the newest client with a client id take the connection from the older
  one, so two devices (or two runtimes) with one device id throw each other off in a loop.

Example::

    backoff, watch = ReconnectBackoff(client), ConnectionLog(settings.url, client_id)
    # on_connect_fail: backoff.failed(); watch.connect_failed(reason)
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from edge_runtime.mqtt_settings import RECONNECT_MAX_DELAY_S, RECONNECT_MIN_DELAY_S

__all__ = ["ReconnectBackoff", "ConnectionLog"]

log = logging.getLogger("edge_runtime.mqtt")

_JITTER = 0.2
_SHORT_S = 5.0  # a connection closed this soon after its CONNACK counts as thrown off ...
_WINDOW_S = 60.0  # ... and this many of them within this window mean another client has the same id
_TAKEOVERS = 3


class ReconnectBackoff:
    """Jittered, capped exponential reconnect waits for a paho client (see the module docstring)."""

    def __init__(self, client: Any, *, rng: Callable[[], float] = random.random) -> None:
        self.client = client
        self.failures = 0
        self._rng = rng

    def next_delay(self) -> float:
        """The wait before the next attempt, after ``failures`` failed ones."""
        base = min(RECONNECT_MAX_DELAY_S, RECONNECT_MIN_DELAY_S * 2 ** min(self.failures, 16))
        return base * (1.0 - _JITTER + 2 * _JITTER * self._rng())

    def failed(self) -> float:
        """An attempt failed (or the connection was lost): set paho's next wait; returns it."""
        delay = self.next_delay()
        self.failures += 1
        self.client.reconnect_delay_set(min_delay=delay, max_delay=RECONNECT_MAX_DELAY_S * (1 + _JITTER))
        return delay

    def connected(self) -> None:
        self.failures = 0


class ConnectionLog:
    """What the publisher logs about its connection (thread-safe; ``clock`` is monotonic seconds)."""

    def __init__(self, url: str, client_id: str, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.url, self.client_id = url, client_id
        self._clock = clock
        self._lock = threading.Lock()
        self._failure_logged: str | None = None
        self._connected_at: float | None = None
        self._short: deque[float] = deque()  # when connections closed soon after their CONNACK
        self._takeover_warned_at = -float("inf")

    def connect_failed(self, reason: str) -> None:
        """A connection attempt raised: one WARNING per distinct reason until connected, then DEBUG."""
        with self._lock:
            first, self._failure_logged = self._failure_logged != reason, reason
        log.log(logging.WARNING if first else logging.DEBUG,
                "MQTT: cannot connect to %s: %s; retrying in the background", self.url, reason)  # fmt: skip

    def connected(self) -> None:
        with self._lock:
            self._failure_logged = None
            self._connected_at = self._clock()
        log.info("MQTT: connected to %s", self.url)

    def disconnected(self, reason: Any, *, was_connected: bool, stopping: bool) -> None:
        """The connection went (or a CONNECT was refused); flags the loop of two clients with one id."""
        now = self._clock()
        with self._lock:
            connected_at, self._connected_at = self._connected_at, None
            if was_connected and connected_at is not None and now - connected_at < _SHORT_S and not stopping:
                self._short.append(now)
            while self._short and now - self._short[0] > _WINDOW_S:
                self._short.popleft()
            takeover = len(self._short) >= _TAKEOVERS and now - self._takeover_warned_at > 10 * _WINDOW_S
            if takeover:
                self._takeover_warned_at = now
        if stopping:
            log.debug("MQTT: disconnected (%s)", reason)
        elif was_connected:
            log.warning("MQTT: lost the connection to %s (%s); reconnecting", self.url, reason)
        else:
            log.debug("MQTT: could not connect to %s (%s); retrying", self.url, reason)
        if takeover:
            log.error(
                "MQTT: %s closed the connection right after accepting it %d times within %d s: another "
                "client is most likely connected as %r (the newest client with an id takes the connection); "
                "give each device its own --device-id",
                self.url, len(self._short), int(_WINDOW_S), self.client_id,
            )  # fmt: skip
