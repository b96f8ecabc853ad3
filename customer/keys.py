from aiohttp import web

from customer.settings import CustomerSettings

SETTINGS = web.AppKey("settings", CustomerSettings)
