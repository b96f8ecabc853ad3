from aiohttp import web

from order.customer_client import CustomerClient
from order.outbox import OutboxRelay
from order.repository import OrderIds
from order.settings import OrderSettings

SETTINGS = web.AppKey("settings", OrderSettings)
CUSTOMERS = web.AppKey("customers", CustomerClient)
RELAY = web.AppKey("relay", OutboxRelay)
ORDER_IDS = web.AppKey("order_ids", OrderIds)
