"""Home Assistant discovery configs: valid JSON, per-camera templates that Home Assistant's Jinja renders."""

from __future__ import annotations

import json

import jinja2
import pytest

from edge_runtime.ha_discovery import discovery_messages
from edge_runtime.schema import SchemaError


def _render(template: str, event: dict) -> str:
    env = jinja2.Environment()
    return env.from_string(template).render(value_json=event).strip()


def _configs() -> dict[str, dict]:
    return {
        topic: json.loads(payload)
        for topic, payload in discovery_messages("i3dmtn", "dev.1", ["cam1", "cam2"])
    }


def test_two_configs_per_camera_with_unique_ids():
    configs = _configs()
    assert len(configs) == 4
    assert len({c["unique_id"] for c in configs.values()}) == 4
    assert "homeassistant/binary_sensor/i3dmtn_dev_1/cam1_fight/config" in configs


def test_configs_follow_the_event_and_status_topics():
    for config in _configs().values():
        assert config["state_topic"] == "i3dmtn/dev.1/events"
        assert config["availability_topic"] == "i3dmtn/dev.1/status"


@pytest.mark.parametrize("kind, expected", [("start", "ON"), ("update", "ON"), ("end", "OFF")])
def test_fight_sensor_is_on_during_an_event_of_its_camera(kind, expected):
    config = _configs()["homeassistant/binary_sensor/i3dmtn_dev_1/cam1_fight/config"]
    assert _render(config["value_template"], {"camera": "cam1", "type": kind, "score": 0.9}) == expected


def test_other_cameras_render_to_nothing():
    config = _configs()["homeassistant/binary_sensor/i3dmtn_dev_1/cam1_fight/config"]
    assert _render(config["value_template"], {"camera": "cam2", "type": "start", "score": 0.9}) == ""


def test_score_sensor_shows_the_rounded_score():
    config = _configs()["homeassistant/sensor/i3dmtn_dev_1/cam2_score/config"]
    assert (
        _render(config["value_template"], {"camera": "cam2", "type": "update", "score": 0.87654}) == "0.877"
    )


def test_bad_camera_is_refused():
    with pytest.raises(SchemaError, match="camera"):
        discovery_messages("i3dmtn", "dev", ["cam+"])
