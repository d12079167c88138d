"""How one anomaly event reads in a terminal: one line, local time first, fixed columns.

>>> line = format_event_line({"type": "start", "device_id": "cam-door", "camera": "front",
...     "timestamp": 0.0, "started_at": 0.0, "ended_at": None, "score": 0.91, "peak_score": 0.91,
...     "threshold": 0.5})
>>> line.split("  ", 1)[1]
'cam-door/front    START   score 0.91  peak 0.91 (threshold 0.50)'
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from typing import Any

__all__ = ["format_duration", "format_local_time", "format_event_line", "format_event_json", "event_duration"]

# "device/camera" column width: ids are at most 64 chars each, most are short; longer ones just push the row.
_WHERE_WIDTH = 17
_LONGEST_S = 100 * 365 * 86400.0  # a longer duration is a wrong clock, shown as unknown


def format_local_time(timestamp: float) -> str:
    """Epoch seconds as local ``YYYY-MM-DD HH:MM:SS`` (the watcher's clock, not the device's zone)."""
    try:
        return _dt.datetime.fromtimestamp(float(timestamp)).strftime("%Y-%m-%d %H:%M:%S")
    except (OverflowError, OSError, ValueError):
        return f"t={timestamp!r}"


def format_duration(seconds: float) -> str:
    """``4.2s``, ``1m 05s``, ``2h 03m``: short and unambiguous; ``unknown`` for what no event lasts (times
    from a device whose clock is wrong or hostile: the difference of two finite times can even overflow)."""
    seconds = float(seconds)
    if not math.isfinite(seconds) or seconds > _LONGEST_S:
        return "unknown"
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def event_duration(event: dict[str, Any]) -> float | None:
    """Seconds since the event started: up to ``ended_at`` for an end, ``timestamp`` for an update."""
    if event.get("type") == "end" and event.get("ended_at") is not None:
        return float(event["ended_at"]) - float(event["started_at"])
    if event.get("type") == "update":
        return float(event["timestamp"]) - float(event["started_at"])
    return None


def format_event_line(event: dict[str, Any]) -> str:
    """One readable line for a validated ``i3dmtn.event/1`` message (ids are already checked safe)."""
    where = f"{event['device_id']}/{event['camera']}"
    kind = str(event["type"]).upper()
    head = f"{format_local_time(event['timestamp'])}  {where:<{_WHERE_WIDTH}} {kind:<7}"
    duration = event_duration(event)
    if event["type"] == "start":
        # the start is sent once the score has stayed up for the minimum duration; by then the current score
        # may sit between the off and on thresholds (hysteresis), so the peak says why it started
        detail = (
            f"score {event['score']:.2f}  peak {event['peak_score']:.2f} (threshold {event['threshold']:.2f})"
        )
    elif event["type"] == "update":
        detail = f"score {event['score']:.2f}  peak {event['peak_score']:.2f}  for {format_duration(duration or 0)}"
    else:
        detail = f"peak {event['peak_score']:.2f}  lasted {format_duration(duration or 0)}"
    return f"{head} {detail}"


def format_event_json(event: dict[str, Any]) -> str:
    """The event as one compact JSON line (for ``--json``, to pipe into jq or a log shipper)."""
    return json.dumps(event, separators=(",", ":"), sort_keys=True)
