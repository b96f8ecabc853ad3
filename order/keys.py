from aiohttp import web

from order.customer_client import CustomerClient
from order.outbox import OutboxRelay
from order.settings import OrderSettings

SETTINGS = web.AppKey("settings", OrderSettings)
CUSTOMERS = web.AppKey("customers", CustomerClient)
RELAY = web.AppKey("relay", OutboxRelay)
