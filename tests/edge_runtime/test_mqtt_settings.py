"""MQTT settings: broker parsing, options, credentials from the environment only, TLS files, the paho client."""

from __future__ import annotations

import argparse
import logging

import pytest

from edge_runtime.mqtt_settings import (
    ENV_PASSWORD,
    ENV_PASSWORD_FILE,
    ENV_USERNAME,
    MqttSettings,
    add_mqtt_arguments,
    make_client,
    parse_broker,
)


def _settings(argv: list[str], env: dict[str, str] | None = None) -> MqttSettings:
    parser = argparse.ArgumentParser()
    add_mqtt_arguments(parser)
    return MqttSettings.from_args(parser.parse_args(argv), environ=env or {})


@pytest.mark.parametrize(
    "text, expected",
    [
        ("broker.lan", ("broker.lan", 1883, False)),
        ("10.0.0.5:1884", ("10.0.0.5", 1884, False)),
        ("mqtts://broker.lan", ("broker.lan", 8883, True)),
        ("mqtt://[::1]:2000", ("::1", 2000, False)),
    ],
)
def test_parse_broker_accepts_host_port_and_schemes(text, expected):
    assert parse_broker(text) == expected


@pytest.mark.parametrize("text", ["host:99999", "http://host", "host/path", "user@host:1883", ":1883"])
def test_parse_broker_rejects_malformed_addresses_naming_the_option(text):
    with pytest.raises(ValueError, match="--broker"):
        parse_broker(text)


def test_there_is_no_password_option():
    parser = argparse.ArgumentParser()
    add_mqtt_arguments(parser)
    assert not any("--password" in a.option_strings for a in parser._actions)
    with pytest.raises(SystemExit):
        parser.parse_args(["--password", "x"])


def test_help_documents_the_credential_environment_variables():
    parser = argparse.ArgumentParser()
    add_mqtt_arguments(parser)
    text = parser.format_help()
    for name in (ENV_USERNAME, ENV_PASSWORD, ENV_PASSWORD_FILE):
        assert name in text


def test_credentials_come_from_the_environment():
    s = _settings(["--broker", "h:1999"], {ENV_USERNAME: "cam", ENV_PASSWORD: "s3cret"})
    assert (s.host, s.port, s.username, s.password) == ("h", 1999, "cam", "s3cret")


def test_username_option_wins_over_environment():
    s = _settings(["--username", "argv-user"], {ENV_USERNAME: "env-user"})
    assert s.username == "argv-user"


def test_password_file_is_read_without_its_newline(tmp_path):
    secret = tmp_path / "pw"
    secret.write_text("from-file\n")
    s = _settings(["--username", "u"], {ENV_PASSWORD_FILE: str(secret)})
    assert s.password == "from-file"


def test_unreadable_password_file_names_the_variable(tmp_path):
    with pytest.raises(ValueError, match=ENV_PASSWORD_FILE):
        _settings(["--username", "u"], {ENV_PASSWORD_FILE: str(tmp_path / "missing")})


def test_password_without_username_names_the_variable():
    with pytest.raises(ValueError, match=ENV_USERNAME):
        _settings([], {ENV_PASSWORD: "x"})


def test_repr_hides_the_password():
    s = MqttSettings(username="u", password="hunter2-secret")
    assert "hunter2-secret" not in repr(s)
    assert "hunter2-secret" not in str(s)


@pytest.mark.parametrize("prefix", ["a/#", "a/+/b", "a//b", "bad prefix"])
def test_topic_prefix_levels_are_validated(prefix):
    with pytest.raises(ValueError, match="--topic-prefix"):
        _settings(["--topic-prefix", prefix])


def test_multi_level_topic_prefix_is_accepted():
    assert _settings(["--topic-prefix", "site1/i3dmtn"]).topic_prefix == "site1/i3dmtn"


def test_missing_tls_file_names_the_option(tmp_path):
    with pytest.raises(ValueError, match="--ca-file"):
        _settings(["--ca-file", str(tmp_path / "nope.pem")])


def test_tls_file_turns_on_tls_and_the_tls_port(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    s = _settings(["--broker", "h", "--ca-file", str(ca)])
    assert s.tls and s.port == 8883 and s.ca_file == ca


def test_explicit_port_is_kept_with_tls():
    assert _settings(["--broker", "h:1883", "--tls"]).port == 1883


def test_make_client_never_logs_the_password(caplog):
    caplog.set_level(logging.DEBUG)
    settings = MqttSettings(username="u", password="never-log-me-42")
    client = make_client(settings, "test-client", will=("i3dmtn/d/status", b"offline", 1, True))
    client.connect_async(
        settings.host, 1, settings.keepalive
    )  # nothing listens on port 1: no network I/O yet
    assert "never-log-me-42" not in caplog.text
    assert "test-client" in caplog.text


@pytest.mark.parametrize("level", [logging.INFO, logging.DEBUG])
def test_not_connected_lines_of_pahos_network_loop_are_debug_not_errors(caplog, level):
    caplog.set_level(level)
    client = make_client(MqttSettings(), "test-client")
    client.loop(timeout=0.01)  # no socket yet: paho's loop logs "Client is not connected"
    client.loop(timeout=0.01)
    lines = [r for r in caplog.records if r.getMessage().startswith("Client is not connected")]
    assert all(r.levelno == logging.DEBUG for r in lines)
    assert len(lines) == (2 if level == logging.DEBUG else 0)
    logging.getLogger("paho.mqtt.client").error("Broker refused: %s", "bad credentials")
    assert caplog.records[-1].levelno == logging.ERROR  # other paho errors keep their level
    make_client(MqttSettings(), "second-client")
    assert len(logging.getLogger("paho.mqtt.client").filters) == 1  # one filter however many clients
