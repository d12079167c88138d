"""Home Assistant MQTT discovery: per camera a ``fight`` binary sensor and a ``score`` sensor.

Home Assistant reads retained JSON configs under ``{discovery_prefix}/{component}/{node_id}/{object_id}/config``
and then follows our own topics, so nothing else is published for it: the binary sensor is ON from an
event's ``start`` until its ``end`` on ``{prefix}/{device_id}/events``, the score sensor shows the last
event message's score, and both are unavailable while ``{prefix}/{device_id}/status`` says ``offline``.
Messages of the device's other cameras render to an empty value, which Home Assistant ignores.

Example::

    for topic, payload in discovery_messages("i3dmtn", "dev1", ["cam1"], model_name="i3d-mtn"):
        client.publish(topic, payload, qos=1, retain=True)
"""

from __future__ import annotations

import json
import re

from edge_runtime.schema import events_topic, status_topic, validate_id

__all__ = ["discovery_messages", "DEFAULT_DISCOVERY_PREFIX"]

DEFAULT_DISCOVERY_PREFIX = "homeassistant"


def _slug(text: str) -> str:
    """Home Assistant node / object ids allow letters, digits, '_' and '-' only (our ids may hold '.')."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", text)


def discovery_messages(
    topic_prefix: str,
    device_id: str,
    cameras: list[str],
    *,
    model_name: str = "i3d-mtn",
    discovery_prefix: str = DEFAULT_DISCOVERY_PREFIX,
) -> list[tuple[str, bytes]]:
    """``(topic, JSON payload)`` pairs to publish retained, two per camera."""
    validate_id(device_id, "device_id")
    for level in discovery_prefix.split("/"):
        validate_id(level, "discovery prefix level")
    node = f"i3dmtn_{_slug(device_id)}"
    device = {
        "identifiers": [node],
        "name": f"i3dmtn {device_id}",
        "manufacturer": "i3d-mtn-edge",
        "model": model_name,
    }
    common = {
        "state_topic": events_topic(topic_prefix, device_id),
        "availability_topic": status_topic(topic_prefix, device_id),
        "payload_available": "online",
        "payload_not_available": "offline",
        "device": device,
    }
    messages: list[tuple[str, bytes]] = []
    for camera in cameras:
        validate_id(camera, "camera")
        obj = _slug(camera)
        match = f"value_json.camera == {json.dumps(camera)}"
        fight = {
            **common,
            "name": f"{camera} fight",
            "unique_id": f"{node}_{obj}_fight",
            "device_class": "safety",
            "payload_on": "ON",
            "payload_off": "OFF",
            "value_template": f"{{% if {match} %}}{{{{ 'OFF' if value_json.type == 'end' else 'ON' }}}}{{% endif %}}",
        }
        score = {
            **common,
            "name": f"{camera} score",
            "unique_id": f"{node}_{obj}_score",
            "state_class": "measurement",
            "value_template": f"{{% if {match} %}}{{{{ value_json.score | round(3) }}}}{{% endif %}}",
        }
        messages.append(
            (f"{discovery_prefix}/binary_sensor/{node}/{obj}_fight/config", json.dumps(fight).encode())
        )
        messages.append((f"{discovery_prefix}/sensor/{node}/{obj}_score/config", json.dumps(score).encode()))
    return messages
