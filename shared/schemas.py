"""Field types both services' contract schemas are built from."""

from typing import Annotated

from pydantic import AfterValidator, EmailStr, Field, StringConstraints


def _no_nul(value: str) -> str:
    # PostgreSQL text cannot hold NUL; say so instead of failing in the database.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _email_length(value: str) -> str:
    if len(value) > 254:
        raise ValueError("must be at most 254 characters")
    return value


Text200 = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), AfterValidator(_no_nul)
]
Email = Annotated[
    EmailStr,
    AfterValidator(_email_length),
    Field(json_schema_extra={
        "maxLength": 254,
        "description": "A deliverable-looking address; special-use domains (.test, .local, .invalid, "
                       ".localhost, .onion, .arpa) are rejected.",
    }),
]
# JSON booleans and strings are not numbers here: strict, unlike pydantic's lax default.
Id = Annotated[int, Field(strict=True, ge=1, le=2**31 - 1)]
