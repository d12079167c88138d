"""The MQTT connection of a consumer: subscribe on every (re)connect, and say so when the broker refuses.

``i3dmtn alerts`` and the demo's subscriber both connect through :class:`ConsumerConnection`, so they
subscribe the same way and both hand every message to :meth:`AlertConsumer.handle
<alert_consumer.consumer.AlertConsumer.handle>` (or to a handler that records it first).
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from edge_runtime.mqtt_settings import MqttSettings, make_client
from edge_runtime.usage import UsageError

__all__ = ["ConsumerConnection", "Handler"]

log = logging.getLogger(__name__)

# handle(topic, payload, retained): what each message is given to
Handler = Callable[[str, bytes, bool], None]


class ConsumerConnection:
    """A paho client subscribed to ``subscriptions`` (``(topic filter, qos)`` pairs) that passes every message
    to ``handle``.

    paho reconnects by itself and each connect subscribes again. ``subscribed`` is set once the broker
    granted every subscription; a refused connection or subscription sets ``failure`` (one line) and
    ``stopped``. ``client`` is there to publish on (the review desk) before :meth:`start`.

    Example::

        connection = ConsumerConnection(settings, consumer.subscriptions(), consumer.handle)
        connection.start()
        connection.subscribed.wait(10)
        ...
        connection.stop()
    """

    def __init__(
        self,
        settings: MqttSettings,
        subscriptions: Iterable[tuple[str, int]],
        handle: Handler,
        client_id: str | None = None,
        *,
        persistent: bool = False,
    ):
        self.settings = settings
        self.subscriptions = list(subscriptions)
        self.client_id = client_id or f"i3dmtn-alerts-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.stopped = threading.Event()
        self.subscribed = threading.Event()
        self.failure: str | None = None
        self._handle = handle
        self.client = _make_client(settings, self.client_id, clean_session=not persistent)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message

    def start(self) -> None:
        """Connect and run paho's network loop on its own thread; raises ``OSError`` / ``ValueError`` when
        the broker cannot be reached (a refusal after connecting comes as ``failure``)."""
        self.client.connect(self.settings.host, self.settings.port, self.settings.keepalive)
        self.client.loop_start()

    def stop(self) -> None:
        """Disconnect and join paho's thread (also after a failed :meth:`start`)."""
        self.stopped.set()
        self.client.disconnect()
        self.client.loop_stop()

    def _fail(self, message: str) -> None:
        self.failure = self.failure or message
        self.stopped.set()

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        if reason_code.is_failure:
            self._fail(f"broker {self.settings.url} refused the connection: {reason_code}")
            return
        log.info(
            "connected to %s as %s (session present: %s)",
            self.settings.url,
            self.client_id,
            flags.session_present,
        )
        client.subscribe(self.subscriptions)

    def _on_subscribe(self, client: Any, userdata: Any, mid: int, reason_codes: Any, properties: Any) -> None:
        refused = [
            topic for (topic, _), rc in zip(self.subscriptions, reason_codes, strict=False) if rc.is_failure
        ]
        if refused:
            self._fail(f"broker {self.settings.url} refused the subscription to {refused}")
            return
        log.info("subscribed to %s", ", ".join(t for t, _ in self.subscriptions))
        self.subscribed.set()

    def _on_disconnect(
        self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any
    ) -> None:
        if not self.stopped.is_set():
            log.warning("lost the connection to %s (%s); reconnecting", self.settings.url, reason_code)

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        self._handle(message.topic, bytes(message.payload), bool(message.retain))


def _make_client(settings: MqttSettings, client_id: str, *, clean_session: bool) -> Any:
    """paho's client; TLS files that cannot be used are a usage error naming them."""
    try:
        return make_client(settings, client_id, clean_session=clean_session)
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError: a file that is not PEM, a wrong key
        if not settings.tls:
            raise
        tls_files = [
            f"{option} {str(path)!r}"
            for option, path in (
                ("--ca-file", settings.ca_file),
                ("--cert-file", settings.cert_file),
                ("--key-file", settings.key_file),
            )
            if path is not None
        ]
        raise UsageError(
            f"cannot set up TLS with {', '.join(tls_files) or 'the system CAs'}: {exc}"
        ) from None
