from aiohttp import web

from customer.consumer import OrderCreatedConsumer
from customer.settings import CustomerSettings
from shared.amqp import BrokerLink

SETTINGS = web.AppKey("settings", CustomerSettings)
BROKER = web.AppKey("broker", BrokerLink)
CONSUMER = web.AppKey("consumer", OrderCreatedConsumer)
