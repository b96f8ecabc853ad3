"""The customer service as the order service sees it: one pooled HTTP session, errors translated here."""

import time

import aiohttp
import orjson

from order.metrics import CUSTOMER_CALL_SECONDS
from shared.problems import ServiceUnavailable, ValidationFailed, field_error
from shared.request_id import HEADER

EMBEDDED_FIELDS = ("id", "name", "address", "orders_count")


class UnknownCustomer(ValidationFailed):
    def __init__(self, customer_id: int) -> None:
        super().__init__(f"Customer {customer_id} does not exist.", field_error("customer_id", "no such customer"))


class CustomerServiceUnavailable(ServiceUnavailable):
    def __init__(self, why: str, retry_after: int = 1) -> None:
        super().__init__(
            f"The customer service is unavailable ({why}); nothing was stored, try again later.",
            retry_after=retry_after,
        )


def retry_after(response: aiohttp.ClientResponse) -> int:
    """The customer service's own Retry-After (it refuses when full), passed on to our client; else 1 s."""
    value = response.headers.get("Retry-After", "")
    return min(int(value), 60) if value.isdigit() and int(value) > 0 else 1


class CustomerClient:
    def __init__(self, session: aiohttp.ClientSession, base_url: str, timeout: float) -> None:
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.timeout = aiohttp.ClientTimeout(total=timeout)

    async def get_customer(self, customer_id: int, request_id: str) -> dict:
        """The customer's embeddable fields; UnknownCustomer on 404, CustomerServiceUnavailable otherwise."""
        started = time.perf_counter()
        outcome = "error"
        try:
            async with self.session.get(
                f"{self.base_url}/customers/{customer_id}", headers={HEADER: request_id}, timeout=self.timeout
            ) as response:
                if response.status == 404:
                    outcome = "not_found"
                    raise UnknownCustomer(customer_id)
                if response.status != 200:
                    raise CustomerServiceUnavailable(f"it answered {response.status}", retry_after(response))
                customer = await response.json(loads=orjson.loads)
            outcome = "ok"
            return {field: customer[field] for field in EMBEDDED_FIELDS}
        except TimeoutError:
            outcome = "timeout"
            raise CustomerServiceUnavailable(f"no answer within {self.timeout.total:g}s") from None
        except (aiohttp.ClientError, ValueError, KeyError) as exc:
            raise CustomerServiceUnavailable(type(exc).__name__) from None
        finally:
            CUSTOMER_CALL_SECONDS.labels(outcome).observe(time.perf_counter() - started)
