"""The request id: taken from the client or made up, kept in a contextvar, echoed in the response."""

import os
import re
from contextvars import ContextVar

HEADER = "X-Request-ID"
REQUEST_ID_AMQP_HEADER = HEADER.lower()  # the same id on an event's message, from the request that caused it
request_id_var: ContextVar[str] = ContextVar("request_id", default="-")

# A client's id is echoed into headers and logs: any visible ASCII, no spaces or control characters.
_ACCEPTABLE = re.compile(r"^[\x21-\x7e]{1,128}$")  # outbox.request_id holds 128


def new_request_id() -> str:
    return os.urandom(16).hex()  # uuid4().hex's 32 random hex digits, without building a UUID


def accept_request_id(value: str | None) -> str:
    """The client's id when it is a plain token, else a new one."""
    if value and _ACCEPTABLE.match(value):
        return value
    return new_request_id()


def current_request_id() -> str:
    return request_id_var.get()
