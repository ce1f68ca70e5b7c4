"""OwnTracks over MQTT: a subscriber on ``owntracks/+/+`` at ``DOORSTEP_MQTT_URL``, as the
shared subscription ``$share/doorstep/owntracks/+/+`` (each message goes to one process).

Started with the app (its lifespan) only when the setting is present. paho-mqtt runs its
network loop in a thread of its own and reconnects by itself (1 s, doubling to 30 s) after the
broker goes away; each message goes through the same verb as ``/ingest/owntracks``, with the
topic's ``<user>/<device>`` as the device. QoS 1, so the broker redelivers what a crash missed
before the acknowledgement; the screen drops the duplicates that makes.
"""

from __future__ import annotations

import json
import ssl
import threading
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
import structlog
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from doorstep.domain.errors import DomainError
from doorstep.domain.tracking.ingest import PositionIngest, Sighting
from doorstep.domain.tracking.payloads import owntracks_topic_identity, parse_owntracks

__all__ = ["DEFAULT_GROUP", "TOPIC", "OwnTracksSubscriber", "shared_topic"]

log = structlog.get_logger(__name__)
TOPIC = "owntracks/+/+"
DEFAULT_GROUP = "doorstep"


def shared_topic(group: str) -> str:
    """A shared subscription: with several Doorstep processes subscribed in one group, the
    broker hands each message to one of them, so a position is not taken once per process."""
    return f"$share/{group}/{TOPIC}"


class OwnTracksSubscriber:
    def __init__(
        self,
        url: str,
        ingest: PositionIngest,
        *,
        client_id: str | None = None,
        group: str = DEFAULT_GROUP,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
            raise ValueError(f"DOORSTEP_MQTT_URL must be mqtt:// or mqtts://, got {url!r}")
        self.host = parts.hostname or "127.0.0.1"
        self.tls = parts.scheme in ("mqtts", "ssl")
        self.port = parts.port or (8883 if self.tls else 1883)
        self.ingest = ingest
        self.topic = shared_topic(group)
        self.connected = threading.Event()  # connected and subscribed (the SUBACK came)
        self.handled = 0  # messages handled (taken, dropped or refused), for tests and logs
        self._client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id or "",
            clean_session=True,
        )
        if parts.username:
            self._client.username_pw_set(
                unquote(parts.username), unquote(parts.password) if parts.password else None
            )
        if self.tls:
            self._client.tls_set_context(ssl.create_default_context())
        self._client.reconnect_delay_set(min_delay=1, max_delay=30)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message

    def start(self) -> None:
        """Connect in the background (a broker that is down now is retried, not fatal)."""
        self._client.connect_async(self.host, self.port, keepalive=30)
        self._client.loop_start()

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            log.warning("mqtt connection refused", reason=str(reason))
            return
        client.subscribe(self.topic, qos=1)

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: object,
        mid: int,
        reasons: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        if all(not r.is_failure for r in reasons):
            self.connected.set()
            log.info("mqtt subscribed", topic=self.topic, host=self.host, port=self.port)
        else:
            log.warning("mqtt subscription refused", topic=self.topic)

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self.connected.clear()
        log.info("mqtt disconnected; reconnecting", reason=str(reason))

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        try:
            self.handle(msg.topic, bytes(msg.payload))
        except Exception:  # never let one message stop the network loop
            log.exception("mqtt message not handled", topic=msg.topic)

    def handle(self, topic: str, payload: bytes) -> None:
        """One message: a position is taken like an HTTP one; anything else is ignored."""
        user, device = owntracks_topic_identity(topic)
        try:
            body = json.loads(payload)
            identity, fix = parse_owntracks(body, user=user, device=device)
            if fix is not None:
                self.ingest.take("owntracks", [Sighting(tuple(identity.candidates()), fix)])
        except (ValueError, DomainError) as exc:
            log.info("mqtt message refused", topic=topic, reason=str(exc)[:200])
        finally:
            self.handled += 1
