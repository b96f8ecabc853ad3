"""AMQP_URL as a list of brokers: parsed strictly, and BrokerLink moves on to the next broker by itself."""

import asyncio

import pytest
from pydantic import ValidationError

from shared.amqp import BrokerLink
from shared.broker_urls import broker_urls, where
from shared.settings import SharedSettings
from shared.testing.plugin import eventually


def test_one_or_several_urls():
    assert broker_urls("amqp://a:1/") == ["amqp://a:1/"]
    assert broker_urls(" amqp://u:p@a:1/ , amqps://b/vhost") == ["amqp://u:p@a:1/", "amqps://b/vhost"]


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("amqp://a/,,amqp://b/", "item 2 of 3 is empty"),
        ("amqp://a/,", "item 2 of 2 is empty"),
        ("amqp://a/,http://b/", "item 2 (http://b/) is not an amqp:// or amqps:// URL"),
        ("amqp:///", "item 1 (amqp:///) is not an amqp:// or amqps:// URL with a host"),
    ],
)
def test_a_bad_list_is_a_start_up_error_naming_the_variable(value, said):
    with pytest.raises(ValidationError) as raised:
        SharedSettings(amqp_url=value)
    assert f"AMQP_URL: {said}" in str(raised.value)


def test_messages_never_show_the_password():
    assert where("amqp://user:secret@node-2:5672/prod") == "amqp://node-2:5672/prod"


async def test_the_link_moves_to_the_next_broker_when_it_loses_one(tcp_proxy):
    first, second = await tcp_proxy("127.0.0.1", 5672), await tcp_proxy("127.0.0.1", 5672)
    urls = [p.url("amqp://guest:guest@127.0.0.1:{port}/") for p in (first, second)]
    link = BrokerLink(",".join(urls), "test link", lambda channel: asyncio.sleep(0))
    task = asyncio.create_task(link.run())
    try:
        await asyncio.wait_for(link.wait_up(), 10)
        proxies = {urls[0]: first, urls[1]: second}
        connected = link.url
        await proxies[connected].cut()  # that node dies

        async def on_the_other():
            assert link.is_up and link.url != connected

        await eventually(on_the_other, timeout=15)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
