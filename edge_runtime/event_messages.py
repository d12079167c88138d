"""Events as outbox messages: what :class:`~edge_runtime.mqtt.MqttPublisher` stores before it sends.

- :func:`event_messages`: validated ``i3dmtn.event/1`` dicts of one device -> :class:`OutboxMessage` rows
  (compact JSON, finite numbers only, QoS 1), each carrying its ``event_id`` so the outbox tracks the event
  as open until its ``end`` is stored.
- :func:`interrupted_end_messages`: after a crash or a power cut, the ``end`` of every event the outbox still
  holds as open: the next ``seq``, ended at its newest stored message's time (:func:`interrupted_end`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

from edge_runtime.outbox import Outbox, OutboxMessage
from edge_runtime.schema import validate_event

__all__ = ["event_messages", "interrupted_end", "interrupted_end_messages"]

log = logging.getLogger(__name__)


def _message(topic: str, event: dict[str, Any]) -> OutboxMessage:
    payload = json.dumps(event, separators=(",", ":"), allow_nan=False).encode("utf-8")
    return OutboxMessage(topic, payload, kind=event["type"], qos=1, event_id=event["event_id"])


def event_messages(topic: str, device_id: str, events: Sequence[dict[str, Any]]) -> list[OutboxMessage]:
    """One message per event, all validated first: raises :class:`~edge_runtime.schema.SchemaError` for an
    invalid event and ``ValueError`` for another device's, before any message is made."""
    for event in events:
        validate_event(event)
        if event["device_id"] != device_id:
            raise ValueError(f"event device_id {event['device_id']!r} is not this publisher's {device_id!r}")
    return [_message(topic, event) for event in events]


def interrupted_end(last: dict[str, Any]) -> dict[str, Any]:
    """The ``end`` of an event whose runtime stopped without sending it (killed, power cut), made from the
    newest message stored for it: the next ``seq``, ended at that message's time, the last moment the event
    is known to have lasted."""
    return {**last, "seq": int(last["seq"]) + 1, "type": "end", "ended_at": last["timestamp"]}


def interrupted_end_messages(outbox: Outbox) -> list[OutboxMessage]:
    """The ``end`` of every event ``outbox`` holds as open (its runtime was killed mid-event); an unreadable
    stored message is logged and left as it is."""
    messages = []
    for topic, payload in outbox.open_events():
        try:
            end = interrupted_end(validate_event(json.loads(payload)))
        except ValueError as err:  # SchemaError and JSONDecodeError are ValueErrors
            log.error("outbox %s: an open event's stored message is unreadable (%s); left as it is",
                      outbox.path, err)  # fmt: skip
            continue
        log.warning(
            "event %s of camera %s was still open when the runtime last stopped (killed or power cut): "
            "sending its end, at its last known time", end["event_id"], end["camera"],
        )  # fmt: skip
        messages.append(_message(topic, end))
    return messages
