from aiohttp import web

from order.customer_client import CustomerClient
from order.outbox import Outbox
from order.repository import OrderIds
from order.settings import OrderSettings

SETTINGS = web.AppKey("settings", OrderSettings)
CUSTOMERS = web.AppKey("customers", CustomerClient)
OUTBOX = web.AppKey("outbox", Outbox)
ORDER_IDS = web.AppKey("order_ids", OrderIds)
