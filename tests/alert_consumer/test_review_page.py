"""The review page in headless Chromium, end to end: a device's real H.264 clip fetched by ``i3dmtn alerts
--save-clips`` plays in the page, and a review click reaches the watcher's database and the broker (retained)
only after the login."""

from __future__ import annotations

import json
import sqlite3
import threading

import paho.mqtt.client as mqtt
import pytest

from edge_runtime.broker import free_port
from edge_runtime.clip_server import ClipServer
from tests.alert_consumer.helpers import WAIT_S, AlertsProcess, make_event, write_clip

TOKEN = "review-page-token-0123456789"
PASSWORD = "watcher-password-42"


class _Reviews:
    """A plain subscriber to every review topic (retained ones included)."""

    def __init__(self, port: int):
        self.messages: list[tuple[str, dict, bool]] = []
        self.changed = threading.Condition()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="test-reviews")
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe("i3dmtn/+/reviews/+", qos=1)
        self.client.loop_start()

    def _on_message(self, client, userdata, message):
        with self.changed:
            self.messages.append((message.topic, json.loads(message.payload), bool(message.retain)))
            self.changed.notify_all()

    def wait(self, n: int) -> list:
        with self.changed:
            assert self.changed.wait_for(lambda: len(self.messages) >= n, WAIT_S), self.messages
        return list(self.messages)

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


@pytest.mark.timeout(240)
def test_the_clip_plays_in_place_and_a_review_needs_the_login_then_reaches_db_and_broker(
    broker, publisher, chrome, tmp_path
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    device_dir, saved = tmp_path / "device", tmp_path / "saved"
    clip = write_clip(device_dir, "fight-0042", seconds=2.0)
    port = free_port()
    with ClipServer(device_dir, "127.0.0.1", 0, TOKEN) as clips:
        alerts = AlertsProcess(
            "--broker", f"127.0.0.1:{broker.port}", "--web", f"127.0.0.1:{port}", "--save-clips", str(saved),
            "--clip-server", f"http://127.0.0.1:{clips.port}", "--reviewer", "ann",
            env={"I3DMTN_CLIP_TOKEN": TOKEN, "I3DMTN_WEB_PASSWORD": PASSWORD},
        )  # fmt: skip
        reviews = _Reviews(broker.port)
        try:
            alerts.wait_subscribed()
            start = make_event("start", event_id="fight-0042", score=0.7)
            publisher.event(start)
            for seq, score in enumerate([0.8, 0.95, 0.6], start=1):
                publisher.event({**make_event("update", event_id="fight-0042", seq=seq, score=score),
                                 "started_at": start["started_at"]})  # fmt: skip
            publisher.event({**make_event("end", event_id="fight-0042", seq=4, score=0.2), "clip": clip,
                             "started_at": start["started_at"]})  # fmt: skip

            chrome.get(f"http://127.0.0.1:{port}/")
            wait = WebDriverWait(chrome, WAIT_S)
            card = '#recent-events [data-event-id="fight-0042"]'
            video = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, f"{card} video.clip"))
            assert video.get_attribute("src").endswith("/clips/cam-door/fight-0042.mp4")
            points = chrome.find_element(By.CSS_SELECTOR, f"{card} .timeline polyline").get_attribute(
                "points"
            )
            assert len(points.split()) == 5  # the score of each of the event's five messages

            # the clip plays: its duration is known and its time advances
            chrome.execute_script("arguments[0].play();", video)
            duration = wait.until(lambda d: d.execute_script(
                "const v = arguments[0]; return isFinite(v.duration) && v.duration > 0 ? v.duration : null;", video
            ))  # fmt: skip
            assert duration == pytest.approx(clip["duration_s"], abs=0.15)
            wait.until(lambda d: d.execute_script("return arguments[0].currentTime;", video) > 0.2)
            assert chrome.execute_script("return arguments[0].error;", video) is None

            # without the login the review is refused: nothing stored, nothing published
            chrome.find_element(By.CSS_SELECTOR, f'{card} button[data-verdict="fight"]').click()
            message = f'{card} [data-role="review-message"]'
            wait.until(lambda d: d.find_element(By.CSS_SELECTOR, message).text.startswith("refused"))
            assert "log in" in chrome.find_element(By.CSS_SELECTOR, message).text
            db = saved / "watcher.sqlite"
            with sqlite3.connect(db) as conn:
                assert conn.execute("SELECT COUNT(*) FROM reviews").fetchone()[0] == 0
            assert reviews.messages == []

            # logged in, the review reaches the database and the broker (retained)
            chrome.find_element(By.ID, "password").send_keys(PASSWORD)
            chrome.find_element(By.CSS_SELECTOR, "#login button").click()
            wait.until(lambda d: d.find_element(By.ID, "who").text == "can review")
            chrome.find_element(By.CSS_SELECTOR, f'{card} [data-role="review-note"]').send_keys("just a hug")
            chrome.find_element(By.CSS_SELECTOR, f'{card} button[data-verdict="false_alarm"]').click()
            status = f'{card} [data-role="review-status"]'
            wait.until(lambda d: "False alarm by ann" in d.find_element(By.CSS_SELECTOR, status).text)
            topic, review, _ = reviews.wait(1)[0]
            assert topic == "i3dmtn/cam-door/reviews/fight-0042"
            assert (review["verdict"], review["note"], review["reviewer"]) == (
                "false_alarm",
                "just a hug",
                "ann",
            )
            with sqlite3.connect(db) as conn:
                row = conn.execute(
                    "SELECT verdict, note FROM reviews WHERE event_id = 'fight-0042'"
                ).fetchone()
            assert row == ("false_alarm", "just a hug")
            late = _Reviews(broker.port)  # a watcher that comes later gets it: retained
            try:
                assert late.wait(1)[0][1:] == (review, True)
            finally:
                late.close()
            chrome.save_screenshot(str(tmp_path / "review-page.png"))
        finally:
            reviews.close()
            alerts.kill()
