from aiohttp import web

from customer import service
from customer.keys import SETTINGS
from customer.schemas import CreateCustomerBody, CustomerOut, UpdateCustomerBody
from shared.http import created, json_response, parse_json, parse_query, path_id
from shared.pagination import PageParams, check_offset, page_response, page_total, resume


async def list_customers(request: web.Request) -> web.Response:
    page = parse_query(request, PageParams)
    check_offset(page, request.app[SETTINGS].page_max_offset)
    page, after = resume(page)
    # One row more than the page: whether another page follows.
    customers = await service.list_customers(page.limit + 1, page.offset, after)
    total = await page_total(customers, page, service.count_customers)
    return page_response(request, CustomerOut, customers, page, total)


async def create_customer(request: web.Request) -> web.Response:
    body = await parse_json(request, CreateCustomerBody)
    customer = await service.create_customer(body.customer)
    return created(request, "customer", customer.id, customer)


async def get_customer(request: web.Request) -> web.Response:
    return json_response(await service.get_customer(path_id(request)))


async def update_customer(request: web.Request) -> web.Response:
    customer_id = path_id(request)
    body = await parse_json(request, UpdateCustomerBody)
    return json_response(await service.update_customer(customer_id, body.customer))


async def delete_customer(request: web.Request) -> web.Response:
    await service.delete_customer(path_id(request))
    return web.Response(status=204)
