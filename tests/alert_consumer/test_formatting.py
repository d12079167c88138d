"""The readable line and the duration format."""

from __future__ import annotations

import json

import pytest

from alert_consumer.formatting import format_duration, format_event_json, format_event_line
from tests.alert_consumer.helpers import make_event


@pytest.mark.parametrize(
    ("seconds", "text"), [(4.24, "4.2s"), (65, "1m 05s"), (3725, "1h 02m"), (-1, "0.0s")]
)
def test_duration_is_short(seconds, text):
    assert format_duration(seconds) == text


def test_update_line_shows_score_peak_and_time_since_start():
    line = format_event_line(make_event("update", seq=3, score=0.8))
    assert "UPDATE" in line and "score 0.80" in line and "peak 0.95" in line and "for 3.0s" in line


def test_start_line_shows_score_peak_and_threshold_but_no_duration():
    line = format_event_line(make_event("start", score=0.42, peak_score=0.97))
    assert "score 0.42  peak 0.97 (threshold 0.50)" in line and "for " not in line and "lasted" not in line


def test_json_line_is_one_line_and_round_trips():
    event = make_event("end", seq=2)
    text = format_event_json(event)
    assert "\n" not in text and json.loads(text) == event


@pytest.mark.parametrize("seconds", [float("inf"), float("nan"), 1.7e308, 3.4e308 / 2])
def test_a_duration_too_large_to_show_is_unknown(seconds):
    assert format_duration(seconds) == "unknown"
