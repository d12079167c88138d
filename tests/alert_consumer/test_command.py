"""``i3dmtn alerts`` as a real process against a real broker, fed by a plain paho publisher."""

from __future__ import annotations

import json
import shlex
import signal
import subprocess
import sys
import time

import pytest

from edge_runtime.broker import free_port
from edge_runtime.schema import validate_event
from tests.alert_consumer.helpers import WAIT_S, make_event, tiny_jpeg


def test_same_event_id_and_seq_twice_is_printed_once(alerts, publisher):
    proc = alerts("--json")
    event = make_event("start")
    publisher.event(event)
    publisher.event(event)  # a QoS 1 redelivery / outbox replay
    follow = make_event("start")  # a later, different event: once it is printed, the duplicate had its chance
    publisher.event(follow)
    lines = proc.wait_stdout_lines(2)
    assert proc.interrupt() == 0
    ids = [(json.loads(line)["event_id"], json.loads(line)["seq"]) for line in proc.stdout]
    assert ids == [(event["event_id"], 0), (follow["event_id"], 0)], lines


def test_json_lines_parse_and_validate(alerts, publisher):
    proc = alerts("--json", "--count", "3")
    sent = [make_event("start", event_id="e-json"), make_event("update", event_id="e-json", seq=1)]
    sent.append(make_event("end", event_id="e-json", seq=2))
    for event in sent:
        publisher.event(event)
    assert proc.wait_exit() == 0
    received = [validate_event(json.loads(line)) for line in proc.stdout]
    assert received == sent


def test_readable_line_names_device_camera_and_type(alerts, publisher):
    proc = alerts("--count", "2")
    publisher.event(make_event("start", device_id="cam-yard", camera="gate", event_id="e-read"))
    publisher.event(make_event("end", device_id="cam-yard", camera="gate", event_id="e-read", seq=1))
    assert proc.wait_exit() == 0
    start, end = proc.stdout
    assert "cam-yard/gate" in start and "START" in start and "0.91" in start
    assert "cam-yard/gate" in end and "END" in end and "lasted" in end


def test_invalid_payloads_are_skipped_with_one_warning_each(alerts, publisher):
    proc = alerts("--json", "--count", "1")
    publisher.publish("i3dmtn/cam-door/events", b"{not json")
    publisher.publish("i3dmtn/cam-door/events", {**make_event(), "schema": "other/9"})
    good = make_event()
    publisher.event(good)
    assert proc.wait_exit() == 0
    assert [json.loads(line)["event_id"] for line in proc.stdout] == [good["event_id"]]
    warnings = [line for line in proc.stderr if "WARNING" in line]
    assert len(warnings) == 2 and "not JSON" in warnings[0] and "schema" in warnings[1]
    assert not any("Traceback" in line for line in proc.stderr)


def test_event_whose_device_differs_from_its_topic_is_skipped(alerts, publisher):
    proc = alerts("--json", "--count", "1")
    publisher.publish("i3dmtn/cam-door/events", make_event(device_id="cam-other"))
    good = make_event(device_id="cam-door")
    publisher.event(good)
    assert proc.wait_exit() == 0
    assert [json.loads(line)["event_id"] for line in proc.stdout] == [good["event_id"]]
    assert any("does not match its topic" in line for line in proc.stderr)


def test_device_option_watches_only_that_device(alerts, publisher):
    proc = alerts("--json", "--device", "cam-b", "--count", "1")
    publisher.event(make_event(device_id="cam-a"))
    wanted = make_event(device_id="cam-b")
    publisher.event(wanted)
    assert proc.wait_exit() == 0
    assert [json.loads(line)["device_id"] for line in proc.stdout] == ["cam-b"]


def test_exec_gets_the_start_event_json_on_stdin(alerts, publisher, tmp_path):
    out = tmp_path / "hook.json"
    code = "import pathlib, sys; pathlib.Path(sys.argv[1]).write_text(sys.stdin.read())"
    proc = alerts("--exec", shlex.join([sys.executable, "-c", code, str(out)]), "--count", "1")
    event = make_event("start")
    publisher.event(event)
    assert proc.wait_exit() == 0  # exit waits for the queued command
    assert json.loads(out.read_text()) == event


def test_failing_exec_is_logged_and_the_consumer_goes_on(alerts, publisher):
    proc = alerts(
        "--json", "--exec", shlex.join([sys.executable, "-c", "raise SystemExit(3)"]), "--count", "2"
    )
    publisher.event(make_event("start"))
    publisher.event(make_event("start"))
    assert proc.wait_exit() == 0
    assert len(proc.stdout) == 2
    assert any("exited 3" in line for line in proc.stderr)


def test_save_snapshots_writes_the_jpeg_near_a_start(alerts, publisher, tmp_path):
    proc = alerts("--save-snapshots", str(tmp_path / "snaps"))
    event = make_event("start", device_id="cam-door", camera="front")
    publisher.event(event)
    jpeg = tiny_jpeg()
    publisher.publish("i3dmtn/cam-door/snapshot/front", jpeg, qos=0, retain=True)
    path = tmp_path / "snaps" / f"cam-door_front_{event['event_id']}.jpg"
    proc.wait_until(lambda: any("saved snapshot" in line for line in proc.stderr), "saved a snapshot")
    assert proc.interrupt() == 0
    assert path.read_bytes() == jpeg


@pytest.mark.timeout(120)
def test_shared_subscription_delivers_each_event_to_exactly_one_consumer(broker, alerts, publisher):
    if broker.kind != "mosquitto":
        pytest.skip(f"shared subscriptions ($share) need Mosquitto; the test broker is {broker.kind}")
    first = alerts("--json", "--group", "pagers")
    second = alerts("--json", "--group", "pagers")
    sent = {make_event("start")["event_id"]: None for _ in range(10)}
    for event_id in sent:
        publisher.event(make_event("start", event_id=event_id))
    deadline = time.monotonic() + WAIT_S
    while len(first.stdout) + len(second.stdout) < len(sent) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert first.interrupt() == 0 and second.interrupt() == 0
    got_first = [json.loads(line)["event_id"] for line in first.stdout]
    got_second = [json.loads(line)["event_id"] for line in second.stdout]
    assert sorted(got_first + got_second) == sorted(sent)
    assert not set(got_first) & set(got_second)


def test_persistent_session_receives_events_sent_while_away(alerts, publisher):
    first = alerts("--json", "--client-id", "pager-1", "--persistent")
    assert first.interrupt() == 0
    missed = make_event("start")
    publisher.event(missed)  # nobody connected: the broker queues it in pager-1's session
    again = alerts("--json", "--client-id", "pager-1", "--persistent", "--count", "1", wait=False)
    assert again.wait_exit() == 0
    assert [json.loads(line)["event_id"] for line in again.stdout] == [missed["event_id"]]


def test_timeout_before_count_exits_1_with_one_line(alerts):
    proc = alerts("--count", "5", "--timeout", "0.5")
    assert proc.wait_exit() == 1
    assert "passed with 0 of --count 5 events" in proc.stderr[-1]


def test_unreachable_broker_is_one_line_error():
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "training.cli",
            "alerts",
            "--broker",
            f"127.0.0.1:{free_port()}",
            "--timeout",
            "5",
        ],
        capture_output=True,
        text=True,
        timeout=WAIT_S,
    )
    assert result.returncode == 1
    assert "cannot connect to the broker" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--web", "localhost:notaport"], "--web"),
        (["--group", "a/b"], "--group"),
        (["--persistent"], "--client-id"),
        (["--count", "0"], "--count"),
        (["--device", "#"], "--device"),
        (["--timeout", "nan"], "--timeout"),
        (["--timeout", "inf"], "--timeout"),
        (["--exec", "cat", "--exec-timeout", "nan"], "--exec-timeout"),
        (["--exec", "cat", "--exec-timeout", "inf"], "--exec-timeout"),
        (["--exec", "echo 'abc"], "--exec: cannot parse"),
    ],
)
def test_bad_option_is_one_line_naming_it(args, named):
    result = _alerts_unreachable_broker(*args)
    assert result.returncode == 2
    assert named in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_ca_file_that_is_not_pem_is_one_line_naming_it(tmp_path):
    not_pem = tmp_path / "notes.md"
    not_pem.write_text("# not a certificate\n")
    result = _alerts_unreachable_broker("--ca-file", str(not_pem))
    assert result.returncode == 2
    assert "--ca-file" in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr


def _alerts_unreachable_broker(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "training.cli", "alerts", "--broker", f"127.0.0.1:{free_port()}", *args],
        capture_output=True,
        text=True,
        timeout=WAIT_S,
    )


def test_help_mentions_every_option_and_the_password_variables():
    result = subprocess.run(
        [sys.executable, "-m", "training.cli", "alerts", "--help"],
        capture_output=True,
        text=True,
        timeout=WAIT_S,
    )
    assert result.returncode == 0
    options = "--device --json --save-snapshots --exec --exec-timeout --group --client-id --persistent --web "
    options += "--count --timeout --broker --topic-prefix --tls --ca-file --cert-file --key-file --username"
    for word in options.split() + ["I3DMTN_MQTT_PASSWORD", "I3DMTN_MQTT_PASSWORD_FILE", "$share"]:
        assert word in result.stdout, word


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_signal_while_connecting_or_watching_exits_0_without_a_traceback(alerts, sig):
    # as soon as the broker answers, before the subscription (a Ctrl-C that came before the watch loop once
    # escaped it: exit 130, or a hang), and once it watches
    early = alerts("--json", wait=False)
    early.wait_until(lambda: any("connected to" in line for line in early.stderr), "connected")
    late = alerts("--json")
    for proc in (early, late):
        proc.proc.send_signal(sig)
        assert proc.wait_exit() == 0, proc.stderr[-5:]
        assert not any("Traceback" in line for line in proc.stderr)
