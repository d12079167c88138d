"""Reviews in process: the ``i3dmtn.review/1`` schema, the watcher's database, the consumer's route, and the
page's write guard (session cookie, CSRF token, Origin, password) and clip serving over real HTTP."""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request

import pytest

from alert_consumer.consumer import AlertConsumer
from alert_consumer.review_store import ReviewStore
from alert_consumer.reviewing import ReviewDesk
from alert_consumer.state import AlertState
from alert_consumer.web import AlertWebServer
from alert_consumer.web_files import parse_range
from edge_runtime.schema import REVIEW_SCHEMA, SchemaError, reviews_topic, validate_review
from tests.alert_consumer.helpers import WAIT_S, make_event

PASSWORD = "correct horse battery"


def _review(**changes) -> dict:
    review = {"schema": REVIEW_SCHEMA, "event_id": "ev-1", "device_id": "cam-door", "camera": "front",
              "verdict": "false_alarm", "note": "a hug", "reviewer": "ann", "reviewed_at": 1000.0}  # fmt: skip
    return {**review, **changes}


class _Published:
    def __init__(self):
        self.messages = []

    def publish(self, topic, payload, qos, retain):
        self.messages.append((topic, json.loads(payload), qos, retain))


@pytest.fixture
def page(tmp_path):
    """``page(host, password)`` -> (server, store, published); events ev-1 (ended) known to the watcher."""
    started = []

    def start(host="127.0.0.1", password=None):
        state, store = AlertState("i3dmtn"), ReviewStore(tmp_path / "watcher.sqlite")
        consumer = AlertConsumer("i3dmtn", [state, store])
        for event in (make_event("start", event_id="ev-1"), make_event("end", event_id="ev-1", seq=3)):
            consumer.handle("i3dmtn/cam-door/events", json.dumps(event).encode())
        desk, published = ReviewDesk("i3dmtn", store, state, "ann"), _Published()
        desk.attach(published)
        server = AlertWebServer(state, host, 0, desk=desk, password=password, clips_dir=tmp_path / "clips")
        started.append(server.start())
        return server, store, published

    yield start
    for server in started:
        server.stop()


def _call(server, path, body=None, *, cookie=None, csrf=None, origin=None, headers=None):
    url = f"http://127.0.0.1:{server.port}{path}"
    request = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode())
    if body is not None:
        request.add_header("Content-Type", "application/json")
    for key, value in {"Cookie": cookie, "X-CSRF-Token": csrf, "Origin": origin, **(headers or {})}.items():
        if value is not None:
            request.add_header(key, value)
    try:
        with urllib.request.urlopen(request, timeout=WAIT_S) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def _session(server, path="/api/session", body=None):
    status, headers, data = _call(server, path, body)
    assert status == 200, data
    return headers["Set-Cookie"].split(";")[0], json.loads(data)


def test_a_review_follows_its_schema_and_topic():
    assert validate_review(_review())["verdict"] == "false_alarm"
    for bad in (_review(verdict="maybe"), _review(event_id="a/#"), _review(note="x" * 501),
                _review(schema="i3dmtn.review/9"), _review(reviewed_at=float("nan"))):  # fmt: skip
        with pytest.raises(SchemaError):
            validate_review(bad)
    assert reviews_topic("i3dmtn", "cam-door", "ev-1") == "i3dmtn/cam-door/reviews/ev-1"


def test_the_consumer_routes_reviews_from_the_broker_and_skips_a_mismatched_topic(tmp_path):
    store = ReviewStore(tmp_path / "w.sqlite")
    consumer = AlertConsumer("i3dmtn", [store])
    assert ("i3dmtn/+/reviews/+", 1) in consumer.subscriptions()
    consumer.handle("i3dmtn/cam-door/reviews/ev-1", json.dumps(_review()).encode(), retained=True)
    consumer.handle("i3dmtn/cam-door/reviews/ev-2", json.dumps(_review(verdict="fight")).encode())
    assert [r["verdict"] for r in store.reviews()] == ["false_alarm"]


def test_the_database_keeps_the_latest_review_and_the_event_timeline(tmp_path):
    store = ReviewStore(tmp_path / "w.sqlite")
    for seq, score in enumerate([0.7, 0.9, 0.3]):
        store.on_event(make_event("update" if seq else "start", event_id="ev-1", seq=seq, score=score))
    assert [round(s, 2) for _, s in store.event("ev-1")["timeline"]] == [0.7, 0.9, 0.3]
    assert store.on_review(_review(verdict="fight", reviewed_at=2000.0))
    assert not store.on_review(_review(verdict="false_alarm", reviewed_at=1500.0))  # older: ignored
    assert ReviewStore(tmp_path / "w.sqlite").review("ev-1")["verdict"] == "fight"  # survives a reopen


def test_on_loopback_a_review_with_the_session_and_its_csrf_token_is_stored_and_published(page):
    server, store, published = page()
    cookie, info = _session(server)
    assert info["can_review"] and info["logged_in"] and not info["login_required"]
    assert "SameSite=Strict" in _call(server, "/api/session")[1]["Set-Cookie"]
    status, _, body = _call(server, "/api/reviews", {"event_id": "ev-1", "verdict": "fight", "note": "punch"},
                            cookie=cookie, csrf=info["csrf"])  # fmt: skip
    assert status == 200, body
    assert store.review("ev-1")["verdict"] == "fight" and store.review("ev-1")["note"] == "punch"
    assert published.messages[0][0] == "i3dmtn/cam-door/reviews/ev-1" and published.messages[0][2:] == (
        1,
        True,
    )


@pytest.mark.parametrize(
    ("with_cookie", "csrf", "origin", "status"),
    [
        (False, None, None, 401),
        (True, None, None, 401),
        (True, "wrong", None, 401),
        (True, "right", "http://evil.example", 403),
    ],  # fmt: skip
)
def test_a_review_without_session_csrf_or_from_another_site_is_refused(
    page, with_cookie, csrf, origin, status
):
    server, store, published = page()
    cookie, info = _session(server)
    got = _call(server, "/api/reviews", {"event_id": "ev-1", "verdict": "fight"},
                cookie=cookie if with_cookie else None, csrf=info["csrf"] if csrf == "right" else csrf,
                origin=origin)  # fmt: skip
    assert got[0] == status and store.review("ev-1") is None and published.messages == []


def test_with_a_password_a_review_needs_the_login(page):
    server, store, _ = page(password=PASSWORD)
    cookie, info = _session(server)
    assert info["login_required"] and not info["logged_in"]
    refused = _call(
        server, "/api/reviews", {"event_id": "ev-1", "verdict": "fight"}, cookie=cookie, csrf=info["csrf"]
    )
    assert refused[0] == 401 and store.review("ev-1") is None
    assert _call(server, "/api/login", {"password": "not it at all"})[0] == 401
    cookie, info = _session(server, "/api/login", {"password": PASSWORD})
    ok = _call(
        server, "/api/reviews", {"event_id": "ev-1", "verdict": "fight"}, cookie=cookie, csrf=info["csrf"]
    )
    assert ok[0] == 200 and store.review("ev-1")["verdict"] == "fight"


def test_beyond_loopback_without_a_password_the_page_only_views(page):
    server, store, _ = page(host="0.0.0.0")
    cookie, info = _session(server)
    assert not info["can_review"] and "read-only" in info["read_only_reason"]
    assert _call(server, "/api/state")[0] == 200  # viewing stays as it was
    refused = _call(
        server, "/api/reviews", {"event_id": "ev-1", "verdict": "fight"}, cookie=cookie, csrf=info["csrf"]
    )
    assert refused[0] == 401 and store.review("ev-1") is None


def test_a_review_of_an_unknown_event_or_verdict_is_a_bad_request(page):
    server, store, _ = page()
    cookie, info = _session(server)
    for body in ({"event_id": "nope", "verdict": "fight"}, {"event_id": "ev-1", "verdict": "maybe"}):
        assert _call(server, "/api/reviews", body, cookie=cookie, csrf=info["csrf"])[0] == 400
    assert store.reviews() == []


def test_saved_clips_are_served_with_byte_ranges_and_never_through_a_link(page, tmp_path):
    server, _, _ = page()
    folder = tmp_path / "clips" / "cam-door"
    folder.mkdir(parents=True)
    (folder / "ev-1.mp4").write_bytes(bytes(range(200)))
    os.symlink("/etc/passwd", folder / "ev-2.mp4")
    whole = _call(server, "/clips/cam-door/ev-1.mp4")
    assert (whole[0], whole[1]["Content-Type"], whole[2]) == (200, "video/mp4", bytes(range(200)))
    part = _call(server, "/clips/cam-door/ev-1.mp4", headers={"Range": "bytes=10-19"})
    assert (part[0], part[1]["Content-Range"], part[2]) == (206, "bytes 10-19/200", bytes(range(10, 20)))
    assert _call(server, "/clips/cam-door/ev-1.mp4", headers={"Range": "bytes=500-"})[0] == 416
    assert _call(server, "/clips/cam-door/ev-2.mp4")[0] == 404
    assert _call(server, "/clips/cam-door/..%2F..%2Fwatcher.sqlite")[0] in (400, 404)
    assert _call(server, "/clips/..%2F/ev-1.mp4")[0] in (400, 404)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-", (0, 99)),
        ("bytes=-10", (90, 99)),
        ("bytes=5-500", (5, 99)),
        ("bytes=100-", False),
        ("bytes=1-2,4-5", None),
        (None, None),
    ],  # fmt: skip
)
def test_range_header_forms(header, expected):
    assert parse_range(header, 100) == expected


def test_a_review_made_on_one_watcher_wins_over_an_older_one_from_another(tmp_path):
    state = AlertState("i3dmtn")
    state.on_event(make_event("end", event_id="ev-1", seq=1))
    state.on_review(_review(verdict="fight", reviewed_at=time.time()))
    state.on_review(_review(verdict="false_alarm", reviewed_at=1.0))
    assert state.to_dict()["recent_events"][0]["review"]["verdict"] == "fight"
