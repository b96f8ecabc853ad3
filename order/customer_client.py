"""The customer service as the order service sees it: one pooled HTTP session, errors translated here."""

import time

import aiohttp

from order.metrics import CUSTOMER_CALL_SECONDS
from order.schemas import EmbeddedCustomer
from shared.metrics import BufferedHistogram
from shared.problems import ServiceUnavailable, ValidationFailed, field_error
from shared.request_id import HEADER

_call_seconds = BufferedHistogram(CUSTOMER_CALL_SECONDS)


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
        """The customer's embeddable fields, validated (EmbeddedCustomer); UnknownCustomer on 404,
        CustomerServiceUnavailable otherwise."""
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
                # Parsed and validated in one pass; the customer's other fields are left out.
                customer = EmbeddedCustomer.model_validate_json(await response.read())
            outcome = "ok"
            return customer.model_dump()
        except TimeoutError:
            outcome = "timeout"
            raise CustomerServiceUnavailable(f"no answer within {self.timeout.total:g}s") from None
        except (aiohttp.ClientError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
            raise CustomerServiceUnavailable(type(exc).__name__) from None
        finally:
            _call_seconds.observe(time.perf_counter() - started, outcome)
