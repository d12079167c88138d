"""How to reach the MQTT broker: typed settings, their command-line options, and a configured paho client.

Shared by the producer (the runtime's publisher) and the consumers (``i3dmtn alerts``), so both accept the
same options and read credentials the same way. The password never comes from argv (anyone on the machine
can read ``/proc/<pid>/cmdline``) and is never logged: it comes from ``I3DMTN_MQTT_PASSWORD`` or from the
file named by ``I3DMTN_MQTT_PASSWORD_FILE``.

Example::

    parser = argparse.ArgumentParser()
    add_mqtt_arguments(parser)
    settings = MqttSettings.from_args(parser.parse_args(["--broker", "mqtts://broker.lan"]))
    client = make_client(settings, "i3dmtn-cam1")
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from edge_runtime.schema import SchemaError, validate_id

__all__ = [
    "ENV_USERNAME",
    "ENV_PASSWORD",
    "ENV_PASSWORD_FILE",
    "RECONNECT_MIN_DELAY_S",
    "RECONNECT_MAX_DELAY_S",
    "MqttSettings",
    "parse_broker",
    "add_mqtt_arguments",
    "make_client",
]

log = logging.getLogger(__name__)

ENV_USERNAME = "I3DMTN_MQTT_USERNAME"
ENV_PASSWORD = "I3DMTN_MQTT_PASSWORD"
ENV_PASSWORD_FILE = "I3DMTN_MQTT_PASSWORD_FILE"
# paho doubles the delay after each failed attempt between these bounds: quick after a blip, and at most a
# few seconds apart after a long outage, so a broker that is back for 10 s is reached (the publisher adds
# jitter: edge_runtime.mqtt_connection).
RECONNECT_MIN_DELAY_S = 0.5
RECONNECT_MAX_DELAY_S = 5.0

_DEFAULT_PORT = 1883
_DEFAULT_TLS_PORT = 8883


@dataclass(frozen=True)
class MqttSettings:
    """Where the broker is and how to authenticate. ``repr`` hides the password."""

    host: str = "127.0.0.1"
    port: int = _DEFAULT_PORT
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: bool = False
    ca_file: Path | None = None  # None with tls=True: the system's trusted CAs
    cert_file: Path | None = None  # client certificate (mutual TLS), with key_file
    key_file: Path | None = None
    insecure: bool = False  # skip the host-name check of the broker certificate: tests only
    keepalive: int = 30  # seconds; a dead connection (and so the last will) is noticed within ~1.5x this
    topic_prefix: str = "i3dmtn"

    def __post_init__(self) -> None:
        if not self.host or any(c.isspace() for c in self.host):
            raise ValueError(f"--broker: host {self.host!r} is not a host name or address")
        if not 1 <= int(self.port) <= 65535:
            raise ValueError(f"--broker: port must be 1..65535, got {self.port}")
        if self.keepalive < 1:
            raise ValueError(f"MQTT keepalive must be >= 1 s, got {self.keepalive}")
        if self.password is not None and not self.username:
            raise ValueError(f"a password was given without a username: set {ENV_USERNAME} or --username")
        if self.cert_file is not None and self.key_file is None:
            raise ValueError("--cert-file needs --key-file (the client certificate's private key)")
        try:
            for level in self.topic_prefix.split("/"):
                validate_id(level, "topic prefix level")
        except SchemaError as err:
            raise ValueError(f"--topic-prefix {self.topic_prefix!r}: {err}") from None

    @property
    def url(self) -> str:
        """``mqtt[s]://host:port`` (no credentials), for log lines."""
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"

    @classmethod
    def from_args(cls, args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> MqttSettings:
        """Build settings from :func:`add_mqtt_arguments` options plus the environment; one-line ValueErrors."""
        env = os.environ if environ is None else environ
        host, port, scheme_tls = parse_broker(getattr(args, "broker", None) or "127.0.0.1")
        tls_files = {
            opt: _existing_file(getattr(args, attr, None), opt)
            for opt, attr in (
                ("--ca-file", "ca_file"),
                ("--cert-file", "cert_file"),
                ("--key-file", "key_file"),
            )
        }
        tls = (
            bool(getattr(args, "tls", False)) or scheme_tls or any(v is not None for v in tls_files.values())
        )
        if tls and port == _DEFAULT_PORT and not _has_explicit_port(getattr(args, "broker", None)):
            port = _DEFAULT_TLS_PORT
        username = getattr(args, "username", None) or env.get(ENV_USERNAME) or None
        return cls(
            host=host,
            port=port,
            username=username,
            password=_password_from_env(env),
            tls=tls,
            ca_file=tls_files["--ca-file"],
            cert_file=tls_files["--cert-file"],
            key_file=tls_files["--key-file"],
            insecure=bool(getattr(args, "tls_insecure", False)),
            topic_prefix=getattr(args, "topic_prefix", None) or "i3dmtn",
        )


def parse_broker(text: str) -> tuple[str, int, bool]:
    """``"host"``, ``"host:port"``, ``"[::1]:1883"``, ``"mqtt://host:port"`` or ``"mqtts://host"`` ->
    ``(host, port, tls)``; the default port is 1883, or 8883 for ``mqtts://``."""
    raw = text.strip()
    if "://" in raw:
        scheme = raw.split("://", 1)[0].lower()
        if scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
            raise ValueError(f"--broker {text!r}: scheme must be mqtt:// or mqtts://, got {scheme}://")
        tls = scheme in ("mqtts", "ssl")
    else:
        tls = False
        raw = "mqtt://" + raw
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError as err:
        raise ValueError(f"--broker {text!r}: expected HOST[:PORT] with PORT 1..65535 ({err})") from None
    if not parts.hostname or parts.path not in ("", "/") or parts.query or parts.username:
        raise ValueError(f"--broker {text!r}: expected HOST[:PORT] (no user, path or query)")
    return parts.hostname, port or (_DEFAULT_TLS_PORT if tls else _DEFAULT_PORT), tls


def _has_explicit_port(text: str | None) -> bool:
    if not text:
        return False
    try:
        return urlsplit(text if "://" in text else "mqtt://" + text).port is not None
    except ValueError:
        return False


def _existing_file(value: Any, option: str) -> Path | None:
    if value in (None, ""):
        return None
    path = Path(value).expanduser()
    if not path.is_file():
        raise ValueError(f"{option} {str(path)!r}: no such file")
    if not os.access(path, os.R_OK):
        raise ValueError(f"{option} {str(path)!r}: not readable by this user")
    return path


def _password_from_env(env: Mapping[str, str]) -> str | None:
    direct, file_name = env.get(ENV_PASSWORD), env.get(ENV_PASSWORD_FILE)
    if direct and file_name:
        raise ValueError(f"set only one of {ENV_PASSWORD} and {ENV_PASSWORD_FILE}, not both")
    if direct:
        return direct
    if not file_name:
        return None
    path = Path(file_name).expanduser()
    try:
        secret = path.read_text(encoding="utf-8").rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(
            f"{ENV_PASSWORD_FILE} {str(path)!r}: cannot read the password file ({err.__class__.__name__})"
        ) from None
    if not secret:
        raise ValueError(f"{ENV_PASSWORD_FILE} {str(path)!r}: the password file is empty")
    return secret


def add_mqtt_arguments(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """Add the broker options (``--broker``, ``--topic-prefix``, TLS, ``--username``) in their own group."""
    group = parser.add_argument_group(
        "MQTT broker",
        f"The password is never an option (argv is visible to every user): set {ENV_PASSWORD}, or "
        f"{ENV_PASSWORD_FILE} to a file holding it. The user name comes from --username or {ENV_USERNAME}.",
    )
    group.add_argument(
        "--broker",
        metavar="HOST[:PORT]",
        default="127.0.0.1",
        help="MQTT broker address (default 127.0.0.1:1883); mqtts://HOST[:PORT] turns on TLS (default port 8883)",
    )
    group.add_argument(
        "--topic-prefix",
        default="i3dmtn",
        help="first topic level(s), e.g. 'site1/i3dmtn'; each level is letters, digits, '-', '_' or '.' "
        "(default i3dmtn)",
    )
    group.add_argument(
        "--tls", action="store_true", help="connect with TLS (also implied by the file options)"
    )
    group.add_argument(
        "--ca-file", metavar="PEM", help="CA certificate(s) to trust for the broker (default: system CAs)"
    )
    group.add_argument(
        "--cert-file", metavar="PEM", help="client certificate for mutual TLS (needs --key-file)"
    )
    group.add_argument("--key-file", metavar="PEM", help="private key of --cert-file")
    group.add_argument(
        "--tls-insecure",
        action="store_true",
        help="do not check that the broker certificate names the host (testing only)",
    )
    group.add_argument("--username", help=f"MQTT user name (or {ENV_USERNAME})")
    return group


class _NotConnectedIsDebug(logging.Filter):
    """paho's network thread logs "Client is not connected" at ERROR on every pass while it waits to reconnect;
    :class:`~edge_runtime.mqtt.MqttPublisher` already logs the lost connection once, at WARNING. This turns
    those lines into DEBUG records (dropped unless paho's logger is at DEBUG), so a broker outage does not
    fill the device's log with errors."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR and record.getMessage().startswith("Client is not connected"):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
        return True


def make_client(
    settings: MqttSettings,
    client_id: str,
    *,
    clean_session: bool = True,
    will: tuple[str, bytes | str, int, bool] | None = None,
) -> Any:
    """A paho ``Client`` (callback API v2, MQTT 3.1.1) with credentials, TLS, last will and reconnect backoff.

    MQTT 3.1.1 is the protocol every broker speaks; a persistent session there means ``clean_session=False``
    with a fixed ``client_id``. ``will`` is ``(topic, payload, qos, retain)``. Not connected yet: call
    ``connect_async`` / ``connect`` with ``settings.host``, ``settings.port``, ``settings.keepalive``.
    """
    import paho.mqtt.client as mqtt

    client = mqtt.Client(
        callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
        client_id=client_id,
        clean_session=clean_session,
        protocol=mqtt.MQTTv311,
    )
    paho_log = logging.getLogger("paho.mqtt.client")
    if not any(isinstance(f, _NotConnectedIsDebug) for f in paho_log.filters):
        paho_log.addFilter(_NotConnectedIsDebug())
    client.enable_logger(paho_log)
    if settings.username:
        client.username_pw_set(settings.username, settings.password)
    if settings.tls:
        client.tls_set(
            ca_certs=str(settings.ca_file) if settings.ca_file else None,
            certfile=str(settings.cert_file) if settings.cert_file else None,
            keyfile=str(settings.key_file) if settings.key_file else None,
        )
        if settings.insecure:
            client.tls_insecure_set(True)
    if will is not None:
        topic, payload, qos, retain = will
        client.will_set(topic, payload, qos=qos, retain=retain)
    client.reconnect_delay_set(min_delay=RECONNECT_MIN_DELAY_S, max_delay=RECONNECT_MAX_DELAY_S)  # type: ignore[arg-type]
    log.debug(
        "MQTT client %s for %s (user %s, tls %s)",
        client_id,
        settings.url,
        settings.username or "-",
        settings.tls,
    )
    return client
