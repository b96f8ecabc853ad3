"""Who calls: the verified caller of the request in progress, and what the code asks of it."""

from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Identity:
    subject: str
    scopes: frozenset[str]
    customer_id: int | None  # a customer's own token; None for staff and services
    expires: float  # epoch seconds, the leeway included


# The caller of the request in progress (aiohttp runs each request in a task of its own); None with
# AUTH_MODE=off, on an open route, and outside requests.
identity_var: ContextVar[Identity | None] = ContextVar("identity", default=None)


ACTOR_AMQP_HEADER = "x-actor"  # on each event: the `sub` of whoever caused it


def current_actor() -> str | None:
    """The caller's `sub`: who did it, for logs and events (never the token)."""
    identity = identity_var.get()
    return identity.subject if identity is not None else None


def bound_customer() -> int | None:
    """The customer the caller's token is bound to, or None (staff, services, AUTH_MODE=off)."""
    identity = identity_var.get()
    return identity.customer_id if identity is not None else None
