"""OwnTracks over MQTT, through the real Mosquitto on 127.0.0.1:1883: the app subscribes to
owntracks/+/+ when DOORSTEP_MQTT_URL is set, and a location published on a driver's topic is
stored on their route; a stranger's topic stores nothing."""

from __future__ import annotations

import json
import secrets
import socket
import time
from datetime import timedelta

import paho.mqtt.client as mqtt
import pytest
from fastapi.testclient import TestClient
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import select

from doorstep.db.engine import transaction
from doorstep.domain.tracking.models import Position
from doorstep.runtime import Runtime
from doorstep.web.app import create_app
from doorstep.web.owntracks_mqtt import OwnTracksSubscriber
from tests.api.ingest_support import published_route
from tests.conftest import NOW, MerchantCtx, require_service

BROKER = ("127.0.0.1", 1883)
WAIT_S = 10.0


def _broker_up() -> None:
    try:
        socket.create_connection(BROKER, timeout=1).close()
    except OSError as exc:
        require_service("Mosquitto", f"{BROKER[0]}:{BROKER[1]}: {exc}")


def _group() -> str:
    """A share group of this test's own, so tests running at once never take each other's
    messages."""
    return "doorstep-test-" + secrets.token_hex(4)


def _publish(topic: str, payload: dict[str, object]) -> None:
    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2)
    client.connect(*BROKER)
    client.loop_start()
    try:
        info = client.publish(topic, json.dumps(payload), qos=1)
        info.wait_for_publish(timeout=WAIT_S)
    finally:
        client.disconnect()
        client.loop_stop()


def _wait_until_handled(subscriber: OwnTracksSubscriber, count: int) -> None:
    deadline = time.monotonic() + WAIT_S
    while subscriber.handled < count and time.monotonic() < deadline:
        time.sleep(0.05)
    assert subscriber.handled >= count, "the subscriber did not receive the message"


def test_owntracks_location_published_over_mqtt_is_stored_on_the_route(
    runtime: Runtime, merchant: MerchantCtx
) -> None:
    """A location on owntracks/<user>/<device id> reaches the driver's route via Mosquitto;
    one on a stranger's topic is refused and stores nothing."""
    _broker_up()
    fleet = published_route(runtime, merchant.id, route_status="active")
    settings = runtime.settings.model_copy(
        update={"mqtt_url": "mqtt://127.0.0.1:1883", "mqtt_group": _group()}
    )
    with_mqtt = Runtime(settings=settings, clock=runtime.clock, engine=runtime.engine)
    with TestClient(create_app(with_mqtt, migrate=False)) as client:
        subscriber: OwnTracksSubscriber = client.app.state.owntracks_subscriber  # type: ignore[attr-defined]
        assert subscriber.connected.wait(WAIT_S), "not subscribed on Mosquitto"
        tst = int((NOW - timedelta(seconds=20)).timestamp())
        location = {
            "_type": "location",
            "lat": 43.7391,
            "lon": 7.4269,
            "tst": tst,
            "vel": 18,
            "acc": 6,
            "cog": 90,
            "batt": 80,
            "tid": "mr",
        }
        _publish(f"owntracks/marco/{fleet.device_id}", location)
        _publish("owntracks/eve/not-a-driver", {**location, "lat": 43.7})
        _wait_until_handled(subscriber, 2)
        client.app.state.position_ingest.writer.flush()  # type: ignore[attr-defined]
    with transaction(runtime.read_sessions) as s:
        rows = s.scalars(select(Position).where(Position.merchant_id == merchant.id)).all()
    assert [(r.source, r.route_id, r.lat, r.lon) for r in rows] == [
        ("owntracks", fleet.route_id, 43.7391, 7.4269)
    ]
    assert rows[0].speed_mps == pytest.approx(5.0)


def test_mqtt_url_must_be_an_mqtt_url(runtime: Runtime) -> None:
    """A mistyped DOORSTEP_MQTT_URL is refused with a message that says what is expected."""
    from doorstep.domain.tracking.ingest import PositionIngest

    with pytest.raises(ValueError, match="mqtt://"):
        OwnTracksSubscriber("http://127.0.0.1:1883", PositionIngest.for_runtime(runtime))


def test_subscriber_reconnects_and_resubscribes_after_losing_the_broker(
    runtime: Runtime, merchant: MerchantCtx
) -> None:
    """When the broker drops the connection (here: another client takes over its client id),
    the subscriber reconnects by itself and positions published afterwards are still taken."""
    from doorstep.domain.tracking.ingest import PositionIngest

    _broker_up()
    fleet = published_route(runtime, merchant.id, route_status="active")
    ingest = PositionIngest.for_runtime(runtime)
    client_id = f"doorstep-test-{fleet.driver_id}"
    subscriber = OwnTracksSubscriber(
        "mqtt://127.0.0.1:1883", ingest, client_id=client_id, group=_group()
    )
    subscriber.start()
    try:
        assert subscriber.connected.wait(WAIT_S)
        intruder = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id
        )
        intruder.connect(*BROKER)  # Mosquitto disconnects the subscriber's session
        intruder.loop_start()
        deadline = time.monotonic() + WAIT_S
        while subscriber.connected.is_set() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not subscriber.connected.is_set(), "the takeover did not disconnect it"
        intruder.disconnect()
        intruder.loop_stop()
        assert subscriber.connected.wait(WAIT_S + 30), "it did not reconnect"
        tst = int((NOW - timedelta(seconds=5)).timestamp())
        _publish(
            f"owntracks/marco/{fleet.device_id}",
            {"_type": "location", "lat": 43.7391, "lon": 7.4269, "tst": tst},
        )
        _wait_until_handled(subscriber, 1)
    finally:
        subscriber.stop()
        ingest.close()
    with transaction(runtime.read_sessions) as s:
        assert s.scalars(
            select(Position.lat).where(Position.driver_id == fleet.driver_id)
        ).all() == [43.7391]


def test_two_processes_subscribed_take_each_message_once(
    runtime: Runtime, merchant: MerchantCtx
) -> None:
    """Two subscribers (as two server processes would run) share the subscription: a location
    published once is handled by one of them and stored once."""
    from doorstep.domain.tracking.ingest import PositionIngest

    _broker_up()
    fleet = published_route(runtime, merchant.id, route_status="active")
    ingests = [PositionIngest.for_runtime(runtime) for _ in range(2)]
    group = _group()
    subscribers = [OwnTracksSubscriber("mqtt://127.0.0.1:1883", i, group=group) for i in ingests]
    for subscriber in subscribers:
        subscriber.start()
    try:
        assert all(s.connected.wait(WAIT_S) for s in subscribers)
        for n in range(4):
            tst = int((NOW - timedelta(seconds=40 - n)).timestamp())
            _publish(
                f"owntracks/marco/{fleet.device_id}",
                {"_type": "location", "lat": 43.7391 + n * 1e-5, "lon": 7.4269, "tst": tst},
            )
        deadline = time.monotonic() + WAIT_S
        while sum(s.handled for s in subscribers) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # a duplicate delivery, if any, would arrive now
        assert sum(s.handled for s in subscribers) == 4
    finally:
        for subscriber, ingest in zip(subscribers, ingests, strict=True):
            subscriber.stop()
            ingest.close()
    with transaction(runtime.read_sessions) as s:
        stored = s.scalars(select(Position.id).where(Position.driver_id == fleet.driver_id)).all()
    assert len(stored) == 4
