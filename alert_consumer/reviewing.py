"""A review made on this watcher's page: kept in its database, shown, and published retained on MQTT.

The review goes to ``{prefix}/{device_id}/reviews/{event_id}`` (``i3dmtn.review/1``, QoS 1, retained), so
every watcher subscribed to the prefix, and any started later, gets it; each keeps the latest by
``reviewed_at``. Our own review comes back from the broker too and changes nothing (same ``reviewed_at``).
"""

from __future__ import annotations

import getpass
import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

from alert_consumer.review_store import ReviewStore
from alert_consumer.state import AlertState
from edge_runtime.schema import REVIEW_SCHEMA, SchemaError, reviews_topic, validate_id, validate_review

__all__ = ["ReviewDesk", "default_reviewer", "page_record"]

log = logging.getLogger(__name__)


class ReviewDesk:
    """Makes reviews for ``prefix`` signed ``reviewer``; :meth:`attach` the MQTT client once it exists."""

    def __init__(self, prefix: str, store: ReviewStore, state: AlertState, reviewer: str) -> None:
        self.prefix, self.store, self.state = prefix, store, state
        self.reviewer = validate_id(reviewer, "--reviewer")
        self._client: Any = None
        self._lock = threading.Lock()

    def attach(self, client: Any) -> None:
        """The paho client reviews are published with (it queues QoS 1 messages while disconnected)."""
        self._client = client

    def submit(self, event_id: str, verdict: str, note: str) -> dict[str, Any]:
        """Store, show and publish a review of a known event; :class:`SchemaError` (one line) otherwise."""
        validate_id(event_id, "event_id")
        event = self.state.event_record(event_id) or self.store.event(event_id)
        if event is None:
            raise SchemaError(f"no event {event_id} is known to this watcher")
        with self._lock:  # two clicks in one clock tick still order
            review = validate_review(
                {
                    "schema": REVIEW_SCHEMA,
                    "event_id": event_id,
                    "device_id": event["device_id"],
                    "camera": event["camera"],
                    "verdict": verdict,
                    "note": note.strip() if isinstance(note, str) else note,
                    "reviewer": self.reviewer,
                    "reviewed_at": round(time.time(), 6),
                }
            )
            self.store.on_review(review)
        self.state.on_review(review)
        if self._client is None:
            log.warning("review of %s stored but not published: not connected to the broker", event_id)
        else:
            topic = reviews_topic(self.prefix, review["device_id"], event_id)
            self._client.publish(topic, json.dumps(review), qos=1, retain=True)
        log.info("event %s reviewed: %s", event_id, review["verdict"])
        return review


def default_reviewer() -> str:
    """The user name, if it is a valid id, else ``watcher``."""
    try:
        return validate_id(getpass.getuser(), "user name")
    except (KeyError, OSError, SchemaError):  # no user name in a container, or one with spaces
        return "watcher"


def page_record(row: dict[str, Any], clips_dir: Path | None) -> dict[str, Any]:
    """An ended event of the database (:meth:`ReviewStore.recent_events`) as the page shows it, with its clip
    when the file is in ``clips_dir/<device>/``."""
    from alert_consumer.web import clip_url

    record = {k: row[k] for k in ("event_id", "device_id", "camera", "started_at", "ended_at", "peak_score",
                                  "threshold", "timeline")}  # fmt: skip
    record.update(seq=row["last_seq"], state="ended", last_at=row["ended_at"], score=row["timeline"][-1][1],
                  duration=max(0.0, row["ended_at"] - row["started_at"]), model={})  # fmt: skip
    clip = row["clip"]
    if clips_dir is not None and clip and (Path(clips_dir) / row["device_id"] / clip["file"]).is_file():
        record["clip"] = {"url": clip_url(row["device_id"], clip["file"]), "duration_s": clip["duration_s"]}
    return record
