"""The device's MQTT publisher: events go through the durable outbox, so an outage or a restart loses nothing.

- ``{prefix}/{device_id}/events`` (QoS 1): :meth:`MqttPublisher.publish_events` stores the messages in the
  :class:`~edge_runtime.outbox.Outbox` first, in one transaction (group commit: one fsync for all a runtime
  loop produced); :meth:`~MqttPublisher.publish_event` is a batch of one. A sender thread publishes waiting
  rows in id order while connected; a row is deleted only on its PUBACK: paho's thread records the id
  (:meth:`~edge_runtime.outbox.Outbox.ack_later`) and the sender deletes recorded ids together, without an
  fsync (a lost delete only re-sends: see :mod:`edge_runtime.outbox`). On every (re)connect the sender
  replays everything still waiting, from the oldest row, so the first copy of each message reaches the broker
  in id order (messages of one event stay in order). Duplicates across reconnects are possible and harmless:
  consumers de-duplicate by ``event_id`` + ``seq``.
- Events a killed process left open (the outbox keeps each event's newest message until its ``end`` is stored)
  get their ``end`` from :meth:`MqttPublisher.end_open_events` at the next start.
- ``{prefix}/{device_id}/status`` (retained): ``online`` on connect, ``offline`` on :meth:`stop`, and
  ``offline`` as the last will when the process dies or the network goes; ``degraded`` while the outbox
  cannot store (a full disk: :mod:`edge_runtime.outbox_fallback` keeps the messages in memory and the sender
  publishes them like stored rows; ``/stats`` carries the details under ``storage``).
- ``/stats`` (QoS 0, not stored) and ``/snapshot/{camera}`` (retained JPEG, not stored) are best effort.
- A failed connection attempt (refused TCP, a TLS certificate that does not verify, an unknown host) is
  logged once as a WARNING naming the broker URL and the reason; paho keeps retrying with a jittered backoff
  capped at 5 s, and :meth:`~MqttPublisher.stop` makes one last attempt before its flush time ends (see
  :mod:`edge_runtime.mqtt_connection`, which also flags two clients with one id).

Example::

    publisher = MqttPublisher(MqttSettings.from_args(args), "dev1", Outbox(state_dir / "outbox.sqlite"))
    publisher.start()
    publisher.publish_events(messages)  # stored (one fsync), then sent when connected
    publisher.stop(flush_timeout=5.0)
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

from edge_runtime.event_messages import event_messages, interrupted_end_messages
from edge_runtime.mqtt_best_effort import DEGRADED, OFFLINE, ONLINE, BestEffortMessages
from edge_runtime.mqtt_connection import ConnectionLog, ReconnectBackoff
from edge_runtime.mqtt_settings import MqttSettings, make_client
from edge_runtime.mqtt_socket import describe_error, set_no_delay
from edge_runtime.outbox import Outbox, OutboxMessage
from edge_runtime.outbox_fallback import FallbackOutbox
from edge_runtime.schema import (
    events_topic,
    stats_topic,
    status_topic,
    validate_id,
)

__all__ = ["MqttPublisher", "ONLINE", "OFFLINE", "DEGRADED"]

log = logging.getLogger(__name__)

# Outbox rows handed to paho and not yet acknowledged, at most (bounds memory on a long backlog). paho sends
# _PAHO_INFLIGHT of them and queues the rest, sending the next one from its network thread as each PUBACK
# arrives: the connection never goes quiet waiting for the sender (which would let the broker's Nagle hold
# its PUBACKs until our delayed ACK, 40 ms). The sender tops up once no more than _REFILL are handed over.
_WINDOW, _PAHO_INFLIGHT, _REFILL = 200, 100, 100
_ACK_BATCH = 64  # acknowledged rows that make an idle sender delete them at once ...
_ACK_FLUSH_S = 0.005  # ... or this long after the first of them arrived
_LAST_TRY_S = 2.0  # stop(): a last connection attempt this long before the flush time ends


class MqttPublisher(BestEffortMessages):
    """Publishes one device's events (via the outbox), status, stats and snapshots. Thread-safe."""

    def __init__(
        self,
        settings: MqttSettings,
        device_id: str,
        outbox: Outbox | FallbackOutbox,
        *,
        client_id: str | None = None,
        status_retain: bool = True,
    ):
        self.settings = settings
        self.device_id = validate_id(device_id, "device_id")
        self.outbox = outbox if isinstance(outbox, FallbackOutbox) else FallbackOutbox(outbox.path, outbox)
        self.client_id = client_id or f"i3dmtn-{self.device_id}"
        self.status_retain = status_retain
        prefix = settings.topic_prefix
        self.events_topic = events_topic(prefix, self.device_id)
        self.status_topic = status_topic(prefix, self.device_id)
        self.stats_topic = stats_topic(prefix, self.device_id)
        self.reconnects = 0  # successful connects after the first
        self.published = 0  # outbox rows handed to the broker (replays included)
        self._acked_before = self.outbox.acked  # the outbox counts rows deleted on PUBACK; see `acked`
        # The outbox is the durable session, so the broker session can be clean.
        self._client = make_client(
            settings, self.client_id, clean_session=True, will=(self.status_topic, OFFLINE, 1, status_retain)
        )
        self._client.max_inflight_messages_set(_PAHO_INFLIGHT)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish
        self._client.on_connect_fail = self._on_connect_fail
        self._client.on_socket_open = set_no_delay  # no 40 ms Nagle stalls
        self._backoff = ReconnectBackoff(self._client)
        self._watch = ConnectionLog(settings.url, self.client_id)
        # Guards everything below. Never held while calling paho: paho calls on_publish holding its own lock.
        self._cond = threading.Condition(threading.Lock())
        self._connected = False
        self._ever_connected = False
        self._generation = 0  # bumped on every connect and disconnect; the sender then replays from row 0
        self._mids: dict[int, int | None] = {}  # paho mid -> outbox id (None: a message not from the outbox)
        self._early_acks: set[int] = set()  # PUBACKs that arrived before publish() returned their mid
        self._in_flight: set[int] = set()  # outbox ids sent on this connection and not yet acknowledged
        self._work = True  # the sender should look at the outbox again
        self._window_full = False
        self._unflushed_acks = 0  # PUBACKs recorded in the outbox since the sender last deleted them
        self._first_unflushed_at = 0.0  # time.monotonic() of the first of them
        self._status_shown: str | None = None  # ONLINE / DEGRADED as last published on this connection
        self._stop_sender = False
        self._sender: threading.Thread | None = None

    # ---- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> MqttPublisher:
        """Connect in the background (retrying with backoff) and start sending the outbox."""
        if self._sender is not None:
            raise RuntimeError("MqttPublisher.start() was already called")
        log.info("MQTT: connecting to %s as %s (%d waiting in the outbox)", self.settings.url, self.client_id,
                 self.backlog)  # fmt: skip
        self._client.connect_async(self.settings.host, self.settings.port, self.settings.keepalive)
        self._client.loop_start()
        self._sender = threading.Thread(
            target=self._send_loop, name=f"mqtt-outbox-{self.device_id}", daemon=True
        )
        self._sender.start()
        return self

    def stop(self, flush_timeout: float = 5.0) -> None:
        """Wait up to ``flush_timeout`` s for the outbox to drain, publish ``offline``, disconnect.

        Messages still waiting stay in the outbox for the next start (those kept in memory because the disk
        refused them are tried on the disk once more first)."""
        deadline = time.monotonic() + max(0.0, flush_timeout)
        self.outbox.maintain(force=True)
        last_try = deadline - min(_LAST_TRY_S, flush_timeout / 2)
        while self.outbox.backlog and time.monotonic() < deadline:
            if last_try is not None and time.monotonic() >= last_try and not self.connected:
                last_try = None
                self._connect_now()
            with self._cond:  # woken when nothing is left in flight
                self._cond.wait(timeout=min(0.1, max(0.0, deadline - time.monotonic())))
        with self._cond:
            self._stop_sender = True
            self._cond.notify_all()
        if self._sender is not None:
            self._sender.join(timeout=5.0)
        if self.connected:
            info = self._publish_raw(self.status_topic, OFFLINE, qos=1, retain=self.status_retain)
            if info is not None:
                try:
                    info.wait_for_publish(timeout=max(0.5, deadline - time.monotonic()))
                except (RuntimeError, ValueError):
                    pass  # the connection went meanwhile: the last will says offline instead
        self._client.disconnect()
        self._client.loop_stop()
        left = self.backlog
        if left:
            log.warning("MQTT: stopped with %d message(s) in the outbox %s; sent on next start", left,
                        self.outbox.path)  # fmt: skip
        else:
            log.info("MQTT: stopped, outbox empty")

    def _connect_now(self) -> None:
        """One connection attempt now, at the end of the flush, not when paho's backoff wait ends."""
        log.info("MQTT: one last connection attempt to %s before the flush time ends", self.settings.url)
        self._client.loop_stop()  # paho's thread leaves its backoff wait (within 1 s)
        try:
            self._client.reconnect()  # TCP + CONNECT; the CONNACK is read by the restarted loop
        except OSError as err:
            self._watch.connect_failed(describe_error(err))
        self._client.loop_start()

    def __enter__(self) -> MqttPublisher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def connected(self) -> bool:
        with self._cond:
            return self._connected

    @property
    def backlog(self) -> int:
        """Messages in the outbox waiting for a PUBACK."""
        return self.outbox.backlog

    @property
    def acked(self) -> int:
        """Outbox rows deleted on PUBACK since this publisher was made (acknowledged ones deleted first)."""
        self.outbox.flush_acks()
        return self.outbox.acked - self._acked_before

    def wait_connected(self, timeout: float) -> bool:
        """Block until connected or ``timeout`` s passed; return whether connected."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._connected and time.monotonic() < deadline:
                self._cond.wait(timeout=max(0.0, deadline - time.monotonic()))
            return self._connected

    # ---- publishing ------------------------------------------------------------------------------------

    def publish_event(self, event: dict[str, Any]) -> int:
        """Store an ``i3dmtn.event/1`` message in the outbox (durably), then send it; returns its outbox id."""
        return self.publish_events([event])[0]

    def publish_events(self, events: Sequence[dict[str, Any]]) -> list[int]:
        """Store ``i3dmtn.event/1`` messages in the outbox in ONE durable transaction (one fsync), then send
        them in the given order; returns their outbox ids. Every message is validated first: if one is
        invalid (:class:`~edge_runtime.schema.SchemaError`, or another device's: ``ValueError``) none is stored."""
        return self._store(event_messages(self.events_topic, self.device_id, events))

    def end_open_events(self) -> int:
        """Store and send the ``end`` of every event a previous run left open (killed mid-event, power cut),
        ended at its newest stored message's time; how many. Call it once at start, before any new event."""
        return len(self._store(interrupted_end_messages(self.outbox)))

    def _store(self, messages: Sequence[OutboxMessage]) -> list[int]:
        """Put ``messages`` in the outbox (one transaction) and wake the sender."""
        rows = self.outbox.put_many(messages)
        if rows:
            self._wake()
        self._show_storage()
        return rows

    def _wake(self) -> None:
        with self._cond:
            self._work = True
            self._cond.notify_all()

    def _publish_raw(
        self, topic: str, payload: bytes | str, *, qos: int, retain: bool = False, row: int | None = None
    ) -> Any:
        """paho publish + mid bookkeeping; returns the MQTTMessageInfo, or None when paho did not take it."""
        import paho.mqtt.client as mqtt

        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        taken = info.rc == mqtt.MQTT_ERR_SUCCESS or (info.rc == mqtt.MQTT_ERR_NO_CONN and qos > 0)  # queued
        if not taken:
            log.debug("MQTT: publish to %s not taken (%s)", topic, mqtt.error_string(info.rc))
            return None
        with self._cond:
            acked_already = info.mid in self._early_acks
            if acked_already:
                self._early_acks.discard(info.mid)
            else:
                self._mids[info.mid] = row
                if row is not None:
                    self._in_flight.add(row)
        if acked_already and row is not None:
            self._row_acked(row)
        return info

    # ---- the sender thread -----------------------------------------------------------------------------

    def _send_loop(self) -> None:
        generation, cursor, rewinds = -1, 0, 0
        while True:
            with self._cond:
                can_send = self._wait_for_work()
                if can_send is None:
                    return
                if not can_send:
                    self._unflushed_acks = 0  # deleted just below
                else:
                    self._work = False
                    if self._generation != generation:  # a new connection: replay from the oldest row
                        generation, cursor = self._generation, 0
                    if self.outbox.rewinds != rewinds:  # messages kept in memory were stored: new row ids
                        rewinds, cursor = self.outbox.rewinds, 0
                    room = _WINDOW - len(self._in_flight)
            if not can_send:
                self.outbox.flush_acks()
                continue
            items = self.outbox.pending(room, after=cursor)  # on a replay, deletes acknowledged rows first
            for item in items:
                with self._cond:
                    if self._generation != generation or self._stop_sender:
                        self._work = True
                        break
                    sent = item.id in self._in_flight  # read again after a rewind
                if not sent and self._publish_raw(
                    item.topic, item.payload, qos=item.qos, retain=item.retain, row=item.id
                ):
                    self.published += 1
                cursor = item.id
            else:
                with self._cond:
                    self._window_full = len(items) == room  # more may wait: read again at _REFILL
                    self._work = self._work or self._window_full and len(self._in_flight) <= _REFILL

    def _wait_for_work(self) -> bool | None:
        """(holding ``_cond``) Wait until rows can be sent (True), acknowledged rows are due for deletion
        (False: ``_ACK_BATCH`` of them, or ``_ACK_FLUSH_S`` after the first), or stop (None)."""
        while not self._stop_sender:
            if self._work and self._connected and len(self._in_flight) <= _REFILL:
                return True
            timeout = 1.0
            if self._unflushed_acks:
                timeout = self._first_unflushed_at + _ACK_FLUSH_S - time.monotonic()
                if self._unflushed_acks >= _ACK_BATCH or timeout <= 0:
                    return False
            self._cond.wait(timeout=timeout)
        return None

    # ---- paho callbacks (network thread) ---------------------------------------------------------------

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        if reason_code.is_failure:
            log.warning("MQTT: %s refused the connection: %s", self.settings.url, reason_code)
            return
        with self._cond:
            self._connected = True
            self._generation += 1
            self._in_flight.clear()
            if self._ever_connected:
                self.reconnects += 1
            self._ever_connected = True
            self._work = True
            self._cond.notify_all()
        self._backoff.connected()
        self._watch.connected()
        with self._cond:
            self._status_shown = None
        self._show_storage()

    def _on_disconnect(
        self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any
    ) -> None:
        with self._cond:
            was_connected, self._connected = self._connected, False
            self._generation += 1
            stopping = self._stop_sender
            self._cond.notify_all()
        if not stopping:
            self._backoff.failed()  # paho waits next: jittered, at most ~6 s
        self._watch.disconnected(reason_code, was_connected=was_connected, stopping=stopping)

    def _on_connect_fail(self, client: Any, userdata: Any) -> None:
        """A connection attempt raised (paho calls this inside its ``except OSError`` block, so the error is
        the one being handled); paho waits next."""
        self._backoff.failed()
        self._watch.connect_failed(describe_error(sys.exc_info()[1]))

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason_code: Any, properties: Any) -> None:
        with self._cond:
            if mid not in self._mids:
                self._early_acks.add(mid)  # publish() has not returned yet; _publish_raw settles it
                return
            row = self._mids.pop(mid)
        if row is not None:
            self._row_acked(row)

    def _row_acked(self, row: int) -> None:
        self.outbox.ack_later(row)  # memory only: the sender deletes it (no database write on this thread)
        with self._cond:
            self._in_flight.discard(row)
            first = not self._unflushed_acks
            if first:
                self._first_unflushed_at = time.monotonic()
            self._unflushed_acks += 1
            refill = len(self._in_flight) == _REFILL and (self._work or self._window_full)
            self._work = self._work or refill
            # Wake the sender (and stop()) only when it matters, not on every PUBACK: the first ack starts
            # the flush clock, _ACK_BATCH acks are due now, room to send, or nothing left in flight.
            if first or refill or self._unflushed_acks == _ACK_BATCH or not self._in_flight:
                self._cond.notify_all()
