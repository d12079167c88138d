"""The device's best-effort messages, never stored in the outbox: retained status, stats, snapshots and Home
Assistant discovery. :class:`BestEffortMessages` is a part of :class:`~edge_runtime.mqtt.MqttPublisher` (its
base class), kept here so the publisher's file holds the outbox's delivery path only.

- ``/status`` (retained, QoS 1): ``online`` on connect; ``degraded`` while the outbox cannot store (events are
  then kept in memory and still sent: :mod:`edge_runtime.outbox_fallback`), ``online`` again once it can;
  ``offline`` on stop and as the last will.
- ``/stats`` (QoS 0) with the outbox backlog and the storage condition (``storage``) added.
- ``/snapshot/{camera}`` (retained JPEG, QoS 0) and the discovery configs (retained, QoS 1).
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from edge_runtime.outbox_fallback import FallbackOutbox
from edge_runtime.schema import snapshot_topic

__all__ = ["BestEffortMessages", "ONLINE", "OFFLINE", "DEGRADED"]

ONLINE, OFFLINE, DEGRADED = "online", "offline", "degraded"


def _plain(value: Any) -> Any:
    """numpy scalars (``np.float32`` fps, ``np.int64`` counts) as plain numbers for JSON."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"stats value of type {type(value).__name__} is not JSON serialisable")


class BestEffortMessages:
    """The publisher's messages that are sent when connected and dropped otherwise (see the module docstring)."""

    # provided by MqttPublisher, with connected, backlog, _wake() and _publish_raw()
    settings: Any
    device_id: str
    outbox: FallbackOutbox
    status_topic: str
    stats_topic: str
    status_retain: bool
    _cond: threading.Condition
    _connected: bool
    _status_shown: str | None

    def _show_storage(self) -> None:
        """Retained status ``degraded`` while the outbox cannot store, ``online`` again once it can."""
        wanted = ONLINE if self.outbox.failing is None else DEGRADED
        with self._cond:
            if not self._connected or self._status_shown == wanted:
                return
            self._status_shown = wanted
        self._publish_raw(self.status_topic, wanted, qos=1, retain=self.status_retain)

    def publish_stats(self, stats: dict[str, Any]) -> bool:
        """Best-effort QoS 0 stats (the outbox backlog and storage condition are added); False when not
        connected. While the disk refuses writes, retries it when due and logs the minute's summary."""
        rewinds = self.outbox.rewinds
        self.outbox.maintain()
        if self.outbox.rewinds != rewinds:
            self._wake()
        self._show_storage()
        if not self.connected:
            return False
        body = {"device_id": self.device_id, "timestamp": time.time(), "outbox_backlog": self.backlog,
                "storage": self.outbox.status()}  # fmt: skip
        body.update(stats)
        return (
            self._publish_raw(self.stats_topic, json.dumps(body, allow_nan=False, default=_plain), qos=0)
            is not None
        )

    def publish_snapshot(self, camera: str, jpeg: bytes) -> bool:
        """Retained JPEG on ``/snapshot/{camera}`` (best effort); False when not connected."""
        topic = snapshot_topic(self.settings.topic_prefix, self.device_id, camera)
        if not self.connected:
            return False
        return self._publish_raw(topic, bytes(jpeg), qos=0, retain=True) is not None

    def publish_discovery(self, cameras: list[str], **options: str) -> int:
        """Retained Home Assistant discovery configs (:func:`edge_runtime.ha_discovery.discovery_messages`, with
        its ``model_name`` / ``discovery_prefix`` options); how many were sent."""
        from edge_runtime.ha_discovery import discovery_messages

        if not self.connected:
            return 0
        messages = discovery_messages(self.settings.topic_prefix, self.device_id, cameras, **options)
        return sum(self._publish_raw(t, p, qos=1, retain=True) is not None for t, p in messages)
