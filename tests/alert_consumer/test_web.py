"""The live page: HTTP routes and the SSE stream in process, then the real page in headless Chromium."""

from __future__ import annotations

import json
import socket
import threading
import urllib.error
import urllib.request

import pytest

from alert_consumer.consumer import AlertConsumer
from alert_consumer.state import AlertState
from alert_consumer.web import AlertWebServer, parse_listen_address
from edge_runtime.broker import free_port
from tests.alert_consumer.helpers import WAIT_S, make_event, tiny_jpeg


@pytest.fixture
def served():
    """(consumer feeding the state, running web server); the server is stopped at teardown."""
    state = AlertState("i3dmtn")
    server = AlertWebServer(state, "127.0.0.1", 0).start()
    yield AlertConsumer("i3dmtn", [state]), server
    server.stop()


def _get(url: str) -> tuple[int, dict, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=WAIT_S) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def _send(consumer, event):
    consumer.handle(f"i3dmtn/{event['device_id']}/events", json.dumps(event).encode())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (":8080", ("127.0.0.1", 8080)),
        ("0.0.0.0:80", ("0.0.0.0", 80)),
        ("[::1]:9", ("::1", 9)),
        ("81", ("127.0.0.1", 81)),
    ],
)
def test_listen_address_forms(text, expected):
    assert parse_listen_address(text) == expected


def test_api_state_lists_device_open_and_ended_events(served):
    consumer, server = served
    consumer.handle("i3dmtn/cam-door/status", b"online")
    consumer.handle(
        "i3dmtn/cam-door/stats", json.dumps({"fps": 24.5, "cameras": {"front": {"score": 0.2}}}).encode()
    )
    _send(consumer, make_event("start", event_id="open-1"))
    _send(consumer, make_event("start", event_id="done-1"))
    _send(consumer, make_event("end", event_id="done-1", seq=1))
    status, _, body = _get(server.url + "api/state")
    state = json.loads(body)
    assert status == 200
    assert [(d["device_id"], d["status"], d["stats"]["fps"]) for d in state["devices"]] == [
        ("cam-door", "online", 24.5)
    ]
    assert [e["event_id"] for e in state["open_events"]] == ["open-1"]
    assert [(e["event_id"], e["state"]) for e in state["recent_events"]] == [("done-1", "ended")]
    scores = [s for _, s in state["devices"][0]["cameras"][0]["scores"]]
    assert 0.2 in scores and 0.91 in scores  # from stats and from events


def test_ended_event_is_not_reopened_by_a_late_update(served):
    consumer, server = served
    _send(consumer, make_event("start", event_id="e1"))
    _send(consumer, make_event("end", event_id="e1", seq=2))
    _send(consumer, make_event("update", event_id="e1", seq=1))  # arrives late (redelivery)
    state = json.loads(_get(server.url + "api/state")[2])
    assert state["open_events"] == [] and state["recent_events"][0]["state"] == "ended"


def _strict_json(body: bytes) -> dict:
    """What the browser's JSON.parse accepts: no NaN or Infinity."""
    return json.loads(body, parse_constant=lambda name: pytest.fail(f"not JSON: {name}"))


def test_non_finite_stats_leave_the_state_readable_for_every_device(served):
    consumer, server = served
    _send(consumer, make_event("start", device_id="cam-ok", event_id="ok-1"))
    consumer.handle(
        "i3dmtn/cam-bad/stats", b'{"fps": NaN, "load": Infinity, "scores": {"front": NaN}, "queue": 3}'
    )
    status, _, body = _get(server.url + "api/state")
    state = _strict_json(body)
    assert status == 200 and [e["event_id"] for e in state["open_events"]] == ["ok-1"]
    assert {d["device_id"]: d["stats"] for d in state["devices"]}["cam-bad"] == {"queue": 3}


def test_a_non_finite_number_that_reaches_the_state_is_sent_as_null(served):
    consumer, server = served
    _send(consumer, make_event("start", device_id="cam-ok", event_id="ok-1"))
    consumer.sinks[0].on_event(make_event("start", device_id="cam-bad", score=float("nan")))  # not validated
    status, _, body = _get(server.url + "api/state")
    state = _strict_json(body)
    assert status == 200 and {e["device_id"] for e in state["open_events"]} == {"cam-ok", "cam-bad"}
    assert {e["device_id"]: e["score"] for e in state["open_events"]}["cam-bad"] is None


def test_snapshot_route_serves_the_jpeg_and_refuses_bad_ids(served):
    consumer, server = served
    jpeg = tiny_jpeg()
    consumer.handle("i3dmtn/cam-door/snapshot/front", jpeg)
    status, headers, body = _get(server.url + "snapshot/cam-door/front.jpg")
    assert (status, headers["Content-Type"], body) == (200, "image/jpeg", jpeg)
    assert _get(server.url + "snapshot/cam-door/back.jpg")[0] == 404
    assert _get(server.url + "snapshot/..%2F..%2Fetc/passwd.jpg")[0] in (400, 404)
    assert _get(server.url + "static/../web.py")[0] == 404


def test_page_is_served_with_a_strict_content_security_policy(served):
    _, server = served
    status, headers, body = _get(server.url)
    assert status == 200 and b"/static/app.js" in body
    assert "script-src 'self'" in headers["Content-Security-Policy"]


def test_event_stream_sends_the_state_again_after_a_change(served):
    consumer, server = served
    with socket.create_connection(("127.0.0.1", server.port), timeout=WAIT_S) as sock:
        sock.sendall(b"GET /events/stream HTTP/1.1\r\nHost: x\r\n\r\n")
        stream = sock.makefile("rb")
        assert b"text/event-stream" in b"".join(iter(stream.readline, b"\r\n"))

        def next_state() -> dict:
            for line in iter(stream.readline, b""):
                if line.startswith(b"data: "):
                    return json.loads(line[6:])
            raise AssertionError("stream closed")

        assert next_state()["open_events"] == []
        _send(consumer, make_event("start", event_id="live-1"))
        while not (state := next_state())["open_events"]:
            pass
        assert state["open_events"][0]["event_id"] == "live-1"


# --- the real page in a real browser ---------------------------------------------------------------------


@pytest.mark.timeout(180)
def test_page_shows_live_start_then_closed_event_and_online_device(alerts, publisher, chrome, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    port = free_port()
    alerts("--web", f"127.0.0.1:{port}")
    publisher.publish("i3dmtn/cam-door/status", "online", retain=True)
    markup = "<img src=x id=injected>"  # untrusted text from MQTT: must show as text, never as HTML
    stats = {"fps": 24.8, "latency_ms": 41.2, "dropped_frames": 0, "note": markup}
    publisher.publish("i3dmtn/cam-door/stats", stats, qos=0)
    chrome.get(f"http://127.0.0.1:{port}/")
    wait = WebDriverWait(chrome, WAIT_S)

    event = make_event("start", device_id="cam-door", camera="front", event_id="fight-0001")
    for score in [0.12, 0.3, 0.62, 0.91, 0.85, 0.7]:
        publisher.publish("i3dmtn/cam-hall/stats", {"fps": 25.0, "scores": {"lobby": score}}, qos=0)
    publisher.event(event)
    publisher.publish("i3dmtn/cam-door/snapshot/front", tiny_jpeg(), qos=0, retain=True)
    card = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, '#open-events [data-event-id="fight-0001"]'))
    assert "open" in card.get_attribute("class") and "cam-door/front" in card.text

    publisher.event(make_event("update", event_id="fight-0001", seq=1, score=0.97))
    publisher.event(make_event("end", event_id="fight-0001", seq=5, score=0.2))
    ended = wait.until(
        lambda d: d.find_elements(
            By.CSS_SELECTOR, '#recent-events [data-event-id="fight-0001"][data-state="ended"]'
        )
    )[0]
    assert "ended" in ended.get_attribute("class") and "lasted" in ended.text
    assert not chrome.find_elements(By.CSS_SELECTOR, '#open-events [data-event-id="fight-0001"]')
    badge = chrome.find_element(By.CSS_SELECTOR, '[data-device-id="cam-door"] [data-role="status"]')
    assert badge.text == "online"
    assert markup in chrome.find_element(By.CSS_SELECTOR, '[data-device-id="cam-door"]').text
    assert not chrome.find_elements(By.ID, "injected")

    publisher.event(make_event("start", device_id="cam-hall", camera="lobby", event_id="fight-0002"))
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, '#open-events [data-event-id="fight-0002"]'))
    chrome.save_screenshot(str(tmp_path / "alerts-page.png"))
    assert (tmp_path / "alerts-page.png").stat().st_size > 0


def test_a_late_state_answer_never_replaces_the_newer_streamed_state(chrome):
    """The page fetches ``/api/state`` and opens the stream together; when the fetch answers last, with a state
    older than the stream's, the page keeps the stream's (it once showed the stale one until the next change)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    state = AlertState("i3dmtn")
    taken, release = threading.Event(), threading.Event()
    to_dict = state.to_dict

    def held_to_dict() -> dict:  # the answer is taken now and sent once the test releases it
        data = to_dict()
        taken.set()
        release.wait(WAIT_S)
        return data

    state.to_dict = held_to_dict
    with AlertWebServer(state, "127.0.0.1", 0) as server:
        chrome.get(server.url)
        assert taken.wait(WAIT_S)
        _send(AlertConsumer("i3dmtn", [state]), make_event("start", event_id="late-1"))
        wait = WebDriverWait(chrome, WAIT_S)
        card = '#open-events [data-event-id="late-1"]'
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, card))  # from the stream
        release.set()
        wait.until(
            lambda d: d.execute_script(
                "return performance.getEntriesByType('resource').some((e) => e.name.endsWith('/api/state'))"
            )
        )
        chrome.execute_async_script("setTimeout(arguments[0], 500)")  # the answer's handlers run meanwhile
        assert chrome.find_elements(By.CSS_SELECTOR, card)
        assert chrome.find_element(By.ID, "open-count").text == "1 open"
