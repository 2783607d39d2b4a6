"""The broker settings every service shares: a RabbitMQ publish waits for the broker's confirm."""

import pytest

from common.celery_config import broker_settings


@pytest.mark.parametrize(
    "url",
    ["amqp://guest:guest@rabbit.example:5672//", "amqps://rabbit.example:5671//", "pyamqp://rabbit.example//"],
    ids=["amqp", "amqps", "pyamqp"],
)
def test_a_rabbitmq_broker_confirms_every_publish(monkeypatch, tmp_path, url):
    monkeypatch.setenv("CELERY_BROKER_URL", url)

    config = broker_settings(tmp_path)

    assert config["CELERY_BROKER_URL"] == url
    assert config["CELERY_BROKER_TRANSPORT_OPTIONS"]["confirm_publish"] is True
    assert "visibility_timeout" not in config["CELERY_BROKER_TRANSPORT_OPTIONS"]


def test_a_redis_broker_has_no_publish_confirms(monkeypatch, tmp_path):
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://broker.example:6379/0")

    options = broker_settings(tmp_path)["CELERY_BROKER_TRANSPORT_OPTIONS"]

    assert "confirm_publish" not in options
