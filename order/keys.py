from aiohttp import web

from order.customer_client import CustomerClient
from order.outbox import OutboxRelay
from order.settings import OrderSettings
from shared.amqp import BrokerLink

SETTINGS = web.AppKey("settings", OrderSettings)
CUSTOMERS = web.AppKey("customers", CustomerClient)
BROKER = web.AppKey("broker", BrokerLink)
RELAY = web.AppKey("relay", OutboxRelay)
