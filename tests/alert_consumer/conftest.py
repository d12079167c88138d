"""Fixtures for the alerts tests: a plain paho publisher, ``i3dmtn alerts`` subprocesses that are always ended,
and headless Chromium."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.alert_consumer.helpers import AlertsProcess, Publisher


@pytest.fixture
def publisher(broker):
    pub = Publisher(broker.port)
    yield pub
    pub.close()


@pytest.fixture
def alerts(broker):
    """``alerts(*args)`` starts ``i3dmtn alerts --broker <test broker> *args``; all are killed at teardown."""
    started: list[AlertsProcess] = []

    def start(*args: str, wait: bool = True) -> AlertsProcess:
        proc = AlertsProcess("--broker", f"127.0.0.1:{broker.port}", *args)
        started.append(proc)
        return proc.wait_subscribed() if wait else proc

    yield start
    for proc in started:
        proc.kill()


CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@pytest.fixture
def chrome(tmp_path):
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()) and not shutil.which("chromedriver"):
        pytest.skip(
            f"headless browser test needs {CHROMIUM} and {CHROMEDRIVER} (apt install chromium chromium-driver)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'chrome-profile'}",
        "--window-size=1280,900",
        "--autoplay-policy=no-user-gesture-required",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()
