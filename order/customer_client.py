"""The customer service as the order service sees it: one pooled HTTP session, errors translated here,
and a circuit breaker, so a customer service that does not answer costs a POST nothing but its 503."""

import asyncio
import logging
import math
import time

import aiohttp
from opentelemetry.trace import Span
from yarl import URL

from order.metrics import CUSTOMER_BREAKER_OPEN, CUSTOMER_CALL_SECONDS
from order.schemas import EmbeddedCustomer
from shared.auth.service_token import ServiceToken
from shared.metrics import BufferedHistogram
from shared.problems import ServiceUnavailable, ValidationFailed, field_error, problem_type
from shared.request_id import HEADER
from shared.tracing import inject_headers
from shared.tracing_client import answered, client_span

log = logging.getLogger(__name__)

_call_seconds = BufferedHistogram(CUSTOMER_CALL_SECONDS)


class UnknownCustomer(ValidationFailed):
    """The customer the order names does not exist (field `customer_id`)."""

    type = problem_type("unknown-customer")

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


class CircuitBreaker:
    """After `threshold` calls in a row found no customer service (timed out, or could not connect), calls
    are refused at once for `cooldown` seconds; then one call probes it, and its answer closes the breaker
    (its failure opens it again). Without it, a frozen customer service would hold each POST for the whole
    timeout, and with them the admission slots that every other request (GETs too) needs.

    Any answer counts as the service being there, a 5xx or a refusal too: those come back fast.
    """

    def __init__(self, threshold: int, cooldown: float) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self.failures = 0  # in a row
        self.open_until: float | None = None  # event-loop time; None while closed
        self.probing = False

    def before_call(self) -> bool:
        """Raises CustomerServiceUnavailable while open; True when this call is the probe."""
        if self.open_until is None:
            return False
        wait = self.open_until - asyncio.get_running_loop().time()
        if wait > 0 or self.probing:
            raise CustomerServiceUnavailable("it did not answer lately", retry_after=max(1, math.ceil(wait)))
        self.probing = True
        return True

    def answered(self) -> None:
        if self.open_until is not None:
            log.warning("customer service breaker closed: the customer service answers again")
            CUSTOMER_BREAKER_OPEN.set(0)
        self.failures, self.open_until, self.probing = 0, None, False

    def not_answered(self, probe: bool) -> None:
        if self.open_until is not None and not probe:
            return  # a call that started before the breaker opened: the probe decides
        self.failures += 1
        if probe or self.failures >= self.threshold:
            if self.open_until is None:
                log.warning(
                    "customer service breaker open: %d call(s) in a row got no answer; POST /orders is "
                    "refused for %gs at a time, then one call probes",
                    self.failures,
                    self.cooldown,
                )
                CUSTOMER_BREAKER_OPEN.set(1)
            self.open_until = asyncio.get_running_loop().time() + self.cooldown
            self.probing = False

    def call_ended(self, probe: bool) -> None:
        """A probe that ended without telling (cancelled with its request): the next call probes."""
        if probe:
            self.probing = False


class NoServiceToken(ServiceUnavailable):
    def __init__(self, why: str) -> None:
        super().__init__(
            f"The order service has no valid token for the customer service ({why}); nothing was stored, "
            "try again later."
        )


class CustomerClient:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        timeout: float,
        breaker: CircuitBreaker,
        token: ServiceToken | None = None,
    ) -> None:
        self.session = session
        self.token = token  # the service's own (AUTH_MODE=jwt); the caller's token is never passed on
        self.customers_url = URL(base_url.rstrip("/")) / "customers"
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.breaker = breaker

    async def get_customer(self, customer_id: int, request_id: str) -> EmbeddedCustomer:
        """The customer's embeddable fields, validated (EmbeddedCustomer); UnknownCustomer on 404,
        CustomerServiceUnavailable otherwise (at once while the breaker is open)."""
        url = self.customers_url / str(customer_id)
        with client_span("GET", url) as span:
            # The trace context, also for an unsampled request (no span): the customer service then follows
            # the decision instead of sampling a trace of its own.
            headers = inject_headers({HEADER: request_id})
            if self.token is not None:
                token = self.token.current()
                if token is None:
                    raise NoServiceToken(self.token.problem)
                headers["Authorization"] = f"Bearer {token}"
            return await self._get(url, headers, customer_id, span)

    async def _get(self, url: URL, headers: dict, customer_id: int, span: Span) -> EmbeddedCustomer:
        probe = self.breaker.before_call()
        started = time.perf_counter()
        outcome = "error"
        try:
            async with self.session.get(url, headers=headers, timeout=self.timeout) as response:
                self.breaker.answered()
                answered(span, response.status)
                if response.status == 404:
                    outcome = "not_found"
                    raise UnknownCustomer(customer_id)
                if response.status in (401, 403):
                    log.error("the customer service refused the order service's token (%d)", response.status)
                    raise CustomerServiceUnavailable(f"it refused the order service's token ({response.status})")
                if response.status != 200:
                    raise CustomerServiceUnavailable(f"it answered {response.status}", retry_after(response))
                # Parsed and validated in one pass; the customer's other fields are left out.
                customer = EmbeddedCustomer.model_validate_json(await response.read())
            outcome = "ok"
            return customer
        except TimeoutError:
            outcome = "timeout"
            self.breaker.not_answered(probe)
            raise CustomerServiceUnavailable(f"no answer within {self.timeout.total:g}s") from None
        except (aiohttp.ClientError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
            if isinstance(exc, aiohttp.ClientConnectionError):
                self.breaker.not_answered(probe)
            raise CustomerServiceUnavailable(type(exc).__name__) from None
        finally:
            self.breaker.call_ended(probe)
            _call_seconds.observe(time.perf_counter() - started, outcome)
