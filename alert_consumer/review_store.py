"""The watcher's SQLite database (``i3dmtn alerts --db FILE``): the events it saw and the reviews of them.

Two tables. ``events``: one row per event id with where and when it happened, its peak score and threshold,
the ``i3dmtn.clip/1`` description its ``end`` carried, and its score timeline (the ``(timestamp, score)`` of
each of its messages, bounded). ``reviews``: the latest review of each event (``i3dmtn.review/1``), made on
this watcher's page or read from the broker (retained, so several watchers agree). ``i3dmtn data harvest``
reads both to turn reviewed clips into training videos.

As a sink it is fed by the MQTT thread and read by the web threads: one connection, one lock.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from pathlib import Path
from typing import Any

from alert_consumer.consumer import AlertSink
from edge_runtime.schema import event_clip

__all__ = ["ReviewStore", "TIMELINE_POINTS"]

log = logging.getLogger(__name__)

TIMELINE_POINTS = 500  # score points kept per event (a long event keeps its first and last ones)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    event_id TEXT PRIMARY KEY, device_id TEXT NOT NULL, camera TEXT NOT NULL,
    started_at REAL NOT NULL, ended_at REAL, peak_score REAL NOT NULL, threshold REAL NOT NULL,
    last_seq INTEGER NOT NULL, clip TEXT, timeline TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS reviews (
    event_id TEXT PRIMARY KEY, device_id TEXT NOT NULL, camera TEXT NOT NULL, verdict TEXT NOT NULL,
    note TEXT NOT NULL, reviewer TEXT NOT NULL, reviewed_at REAL NOT NULL, message TEXT NOT NULL
);
"""


class ReviewStore(AlertSink):
    """Events and reviews in ``path`` (created with its folder). ``sqlite3.Error`` on an unusable file."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- sink ------------------------------------------------------------------------------------------
    def on_event(self, event: dict[str, Any]) -> None:
        point = [float(event["timestamp"]), float(event["score"])]
        clip = event_clip(event)
        with self._lock, self._db:
            row = self._db.execute("SELECT * FROM events WHERE event_id = ?", (event["event_id"],)).fetchone()
            if row is None:
                self._db.execute(
                    "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (event["event_id"], event["device_id"], event["camera"], event["started_at"],
                     event["ended_at"], event["peak_score"], event["threshold"], event["seq"],
                     json.dumps(clip) if clip else None, json.dumps([point])),
                )  # fmt: skip
                return
            timeline = sorted(json.loads(row["timeline"]) + [point])
            if len(timeline) > TIMELINE_POINTS:
                timeline = timeline[: TIMELINE_POINTS // 2] + timeline[-TIMELINE_POINTS // 2 :]
            self._db.execute(
                "UPDATE events SET ended_at = COALESCE(?, ended_at), peak_score = MAX(peak_score, ?),"
                " last_seq = MAX(last_seq, ?), clip = COALESCE(?, clip), timeline = ? WHERE event_id = ?",
                (event["ended_at"], event["peak_score"], event["seq"], json.dumps(clip) if clip else None,
                 json.dumps(timeline), event["event_id"]),
            )  # fmt: skip

    def on_review(self, review: dict[str, Any]) -> bool:
        """Keep ``review`` (validated) unless a later one of its event is stored; True when it was kept."""
        with self._lock, self._db:
            row = self._db.execute(
                "SELECT reviewed_at FROM reviews WHERE event_id = ?", (review["event_id"],)
            ).fetchone()
            if row is not None and row["reviewed_at"] >= review["reviewed_at"]:
                return False
            self._db.execute(
                "INSERT OR REPLACE INTO reviews VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (review["event_id"], review["device_id"], review["camera"], review["verdict"], review["note"],
                 review["reviewer"], review["reviewed_at"], json.dumps(review)),
            )  # fmt: skip
        return True

    # -- reading ---------------------------------------------------------------------------------------
    def event(self, event_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM events WHERE event_id = ?", (event_id,)).fetchone()
        return _event_dict(row) if row else None

    def recent_events(self, limit: int) -> list[dict[str, Any]]:
        """The last ``limit`` events by start, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM events ORDER BY started_at DESC LIMIT ?", (limit,)
            ).fetchall()
        return [_event_dict(r) for r in reversed(rows)]

    def review(self, event_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT message FROM reviews WHERE event_id = ?", (event_id,)).fetchone()
        return json.loads(row["message"]) if row else None

    def reviews(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute("SELECT message FROM reviews ORDER BY reviewed_at").fetchall()
        return [json.loads(r["message"]) for r in rows]


def _event_dict(row: sqlite3.Row) -> dict[str, Any]:
    record = dict(row)
    record["clip"] = json.loads(record["clip"]) if record["clip"] else None
    record["timeline"] = json.loads(record["timeline"])
    return record
