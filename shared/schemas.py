"""Field types both services' contract schemas are built from.

Each string rule is one regular expression that pydantic enforces and the OpenAPI document
shows as `pattern`, so a client (or schemathesis) reading the document knows exactly what
passes. The character classes are spelled out in ASCII because `\\s` differs between
Python, Rust (pydantic's engine) and JavaScript (JSON Schema's).
"""

import re
from typing import Annotated

from pydantic import AfterValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

# Every input shape of the contract: an unknown field is a 422, never silently ignored.
INPUT = ConfigDict(extra="forbid")

_BLANK = r" \t\n\r\f\v"
# Not empty or only blanks, and no NUL (PostgreSQL text cannot hold it).
TEXT_PATTERN = rf"^[^\x00]*[^\x00{_BLANK}][^\x00]*$"
# local@domain.tld: no blanks, NUL or second @, a dot in the domain.
EMAIL_PATTERN = rf"^[^@\x00{_BLANK}]+@[^@.\x00{_BLANK}]+(\.[^@.\x00{_BLANK}]+)+$"


def _must_match(pattern: str, message: str) -> AfterValidator:
    """The pattern as a check with a readable message (pydantic's own would quote the regex)."""
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.match(value):
            raise PydanticCustomError("string_pattern_mismatch", message)
        return value

    return AfterValidator(check)


def _lower_domain(email: str) -> str:
    """Domains are case-insensitive: one spelling, so uniqueness holds across them."""
    local, domain = email.rsplit("@", 1)
    return f"{local}@{domain.lower()}"


Text200 = Annotated[
    str,
    Field(min_length=1, max_length=200, json_schema_extra={"pattern": TEXT_PATTERN}),
    _must_match(TEXT_PATTERN, "must not be blank or contain NUL characters"),
]
Email = Annotated[
    str,
    Field(max_length=254, json_schema_extra={"pattern": EMAIL_PATTERN}, examples=["ada@example.org"]),
    _must_match(EMAIL_PATTERN, "is not a valid email address"),
    AfterValidator(_lower_domain),
]
# JSON booleans and strings are not numbers here: strict, unlike pydantic's lax default.
Id = Annotated[int, Field(strict=True, ge=1, le=2**31 - 1)]
