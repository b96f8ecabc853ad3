from aiohttp import web

from customer.events.consumer import OrderCreatedConsumer
from customer.settings import CustomerSettings

SETTINGS = web.AppKey("settings", CustomerSettings)
CONSUMER = web.AppKey("consumer", OrderCreatedConsumer)
