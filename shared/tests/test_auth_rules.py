"""The pure parts of shared/auth/: scopes, the customer claim, plain-http warnings."""

import logging

import pytest

from shared.auth.startup import warn_about_plain_http
from shared.auth.tokens import TokenInvalid, customer_of, scopes_of


def test_scopes_come_from_scope_and_scp_alike():
    assert scopes_of({"scope": "a b  c"}) == {"a", "b", "c"}
    assert scopes_of({"scp": ["a", "b", 3]}) == {"a", "b"}
    assert scopes_of({"scope": "a", "scp": ["b"]}) == {"a", "b"}
    assert scopes_of({"scope": ["not", "a", "string"]}) == frozenset()


def test_a_customer_claim_is_a_whole_number_or_the_token_is_invalid():
    assert customer_of({}) is None
    assert customer_of({"customer_id": 7}) == 7 and customer_of({"customer_id": "7"}) == 7
    for bad in (True, -1, "7a", 1.5, [7]):
        with pytest.raises(TokenInvalid):
            customer_of({"customer_id": bad})


@pytest.mark.parametrize(
    ("url", "warned"),
    [
        ("http://idp.internal:8080/realms/shop", True),
        ("http://10.0.0.5/jwks", True),
        ("http://127.0.0.1:3010", False),
        ("http://localhost:3010/jwks", False),
        ("http://[::1]:3010/token", False),
        ("https://idp.example/realms/shop", False),
    ],
)
def test_plain_http_beyond_loopback_is_accepted_with_a_warning(url, warned, caplog):
    caplog.set_level(logging.WARNING, logger="shared.auth.startup")
    warn_about_plain_http("AUTH_ISSUER", url)
    assert any("plain http://" in record.getMessage() for record in caplog.records) == warned
