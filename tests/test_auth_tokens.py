"""Bearer tokens at the customer service, from an issuer made of the test's own keys: what is accepted,
what is refused and how, and how the key set is fetched, kept and refreshed."""

import time

import pytest

from conftest import broker_connected, make_settings
from customer.app import create_app as create_customer_app
from customer.settings import CustomerSettings
from shared.auth.access import AUTH
from shared.auth.tokens import LEEWAY
from shared.testing.plugin import eventually, unique

READ, WRITE = "customers:read", "customers:write"
ALL_SCOPES = "customers:read customers:write orders:read orders:write orders:fulfil ops:dead-letters"


def jwt_settings(test_run, issuer, **more) -> CustomerSettings:
    return make_settings(
        CustomerSettings,
        test_run,
        database_url=test_run.customer_db,
        auth_mode="jwt",
        auth_issuer=issuer.url,
        auth_jwks_url=issuer.jwks_url,
        **more,
    )


@pytest.fixture
async def client(aiohttp_client, test_run, own_issuer):
    client = await aiohttp_client(await create_customer_app(jwt_settings(test_run, own_issuer)))
    await broker_connected(client.app)
    return client


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


async def new_customer(client, issuer) -> int:
    body = {"customer": {"name": unique("Ada"), "address": "1 Loop Road"}}
    response = await client.post("/customers", json=body, headers=bearer(issuer.token(WRITE)))
    assert response.status == 201, await response.text()
    return (await response.json())["id"]


def routes(customer_id: int) -> list[tuple[str, str, dict | None, str]]:
    """(method, path, body, scope) for every customer route."""
    return [
        ("GET", "/customers", None, READ),
        ("GET", f"/customers/{customer_id}", None, READ),
        ("POST", "/customers", {"customer": {"name": unique("Bo"), "address": "2 Loop Road"}}, WRITE),
        ("PATCH", f"/customers/{customer_id}", {"customer": {"address": "3 Loop Road"}}, WRITE),
        ("DELETE", f"/customers/{customer_id}", None, WRITE),
    ]


async def test_each_route_takes_its_scope_and_refuses_every_other(client, own_issuer):
    for index in range(5):
        customer_id = await new_customer(client, own_issuer)
        method, path, body, scope = routes(customer_id)[index]
        others = " ".join(s for s in ALL_SCOPES.split() if s != scope)
        refused = await client.request(method, path, json=body, headers=bearer(own_issuer.token(others)))
        assert refused.status == 403, (method, path)
        assert refused.headers["WWW-Authenticate"] == (
            f'Bearer realm="customer", error="insufficient_scope", scope="{scope}"'
        )
        assert refused.content_type == "application/problem+json"
        assert (await refused.json())["detail"] == f"This token lacks the scope {scope}."
        allowed = await client.request(method, path, json=body, headers=bearer(own_issuer.token(scope)))
        assert allowed.status in (200, 201, 204), (method, path, await allowed.text())


async def test_a_refused_write_changes_nothing(client, own_issuer):
    customer_id = await new_customer(client, own_issuer)
    response = await client.delete(f"/customers/{customer_id}", headers=bearer(own_issuer.token(READ)))
    assert response.status == 403
    assert (await client.get(f"/customers/{customer_id}", headers=bearer(own_issuer.token(READ)))).status == 200
    response = await client.delete(f"/customers/{customer_id}")
    assert response.status == 401
    assert (await client.get(f"/customers/{customer_id}", headers=bearer(own_issuer.token(READ)))).status == 200


async def test_no_token_is_a_401_with_a_bare_challenge(client):
    response = await client.get("/customers")
    assert response.status == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="customer"'
    body = await response.json()
    assert response.content_type == "application/problem+json"
    assert body["title"] == "Unauthorized" and body["detail"] == "A valid bearer token is required."


def bad_tokens(issuer) -> dict[str, str]:
    now = int(time.time())
    stranger = type(issuer)()  # the same kind of issuer with other keys, naming our key ids
    stranger.url = issuer.url
    stranger.rsa_kid = issuer.rsa_kid
    return {
        "expired beyond the leeway": issuer.sign(issuer.claims(READ, exp=now - LEEWAY - 5)),
        "wrong issuer": issuer.sign({**issuer.claims(READ), "iss": "https://someone.else"}),
        "wrong audience": issuer.token(READ, audience="order-service"),
        "no subject": issuer.sign({k: v for k, v in issuer.claims(READ).items() if k != "sub"}),
        "no expiry": issuer.sign({k: v for k, v in issuer.claims(READ).items() if k != "exp"}),
        "alg none": issuer.unsigned(issuer.claims(READ)),
        "HS256 keyed with the public key": issuer.hs256_with_public_key(issuer.claims(READ)),
        "signed by another key under our kid": stranger.sign(issuer.claims(READ)),
        "unknown kid": issuer.sign(issuer.claims(READ), kid="nobody"),
        "not a JWT": "not-a-token",
        "a customer_id that is no id": issuer.token(READ, customer_id="1; DROP"),
    }


async def test_every_bad_token_is_a_401_invalid_token_that_says_no_more(client, own_issuer):
    for name, token in bad_tokens(own_issuer).items():
        response = await client.get("/customers", headers=bearer(token))
        assert response.status == 401, name
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="customer", error="invalid_token"', name
        assert (await response.json())["detail"] == "The bearer token is not valid.", name
    response = await client.get("/customers", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert response.status == 401


async def test_expired_within_the_leeway_es256_and_scp_lists_are_accepted(client, own_issuer):
    now = int(time.time())
    for token in (
        own_issuer.sign(own_issuer.claims(READ, exp=now - LEEWAY + 10)),
        own_issuer.sign(own_issuer.claims(READ), algorithm="ES256"),
        own_issuer.sign({**own_issuer.claims(), "scp": [READ]}),
        own_issuer.token(READ, audience=["order-service", "customer-service"]),
    ):
        assert (await client.get("/customers", headers=bearer(token))).status == 200


async def test_refusals_are_counted_by_reason(client, own_issuer):
    await client.get("/customers")
    await client.get("/customers", headers=bearer(own_issuer.token(WRITE)))
    await client.get("/customers", headers=bearer(own_issuer.sign(own_issuer.claims(READ), kid="nobody")))
    text = await (await client.get("/metrics")).text()
    for reason in ("missing", "scope", "unknown_key"):
        assert f'auth_failures_total{{reason="{reason}"}} 0.0' not in text, reason
        assert f'auth_failures_total{{reason="{reason}"}}' in text, reason


async def test_probes_metrics_and_documents_stay_open(client):
    for path in ("/health", "/ready", "/metrics", "/openapi.json", "/docs", "/asyncapi.json", "/docs/events"):
        assert (await client.get(path)).status == 200, path
    assert "auth" not in await (await client.get("/ready")).json()


async def test_a_token_bound_to_a_customer_reads_that_customer_only(client, own_issuer):
    mine, theirs = await new_customer(client, own_issuer), await new_customer(client, own_issuer)
    token = own_issuer.token(f"{READ} {WRITE}", customer_id=mine)
    assert (await client.get(f"/customers/{mine}", headers=bearer(token))).status == 200
    for method, path in (
        ("GET", f"/customers/{theirs}"),
        ("GET", "/customers"),
        ("DELETE", f"/customers/{mine}"),
        ("PATCH", f"/customers/{theirs}"),
    ):
        response = await client.request(method, path, json={"customer": {"address": "x"}}, headers=bearer(token))
        assert response.status == 403, (method, path)
        assert (await response.json())["detail"] == "This token may not act on this resource."
    assert (await client.get(f"/customers/{theirs}", headers=bearer(own_issuer.token(READ)))).status == 200


async def test_the_callers_sub_is_the_access_logs_actor(client, own_issuer, request_logs):
    await client.get("/customers", headers=bearer(own_issuer.token(READ, sub="clerk-7")))
    await client.get("/health")
    actors = {record.path: record.actor for record in request_logs.records if record.name == "access"}
    assert actors == {"/customers": "clerk-7", "/health": None}


async def test_a_rotated_key_is_fetched_once_when_a_token_names_it(client, own_issuer):
    assert (await client.get("/customers", headers=bearer(own_issuer.token(READ)))).status == 200
    fetched = own_issuer.jwks_requests
    new_kid = own_issuer.add_key()
    token = own_issuer.sign_with(new_kid, own_issuer.claims(READ))
    for _ in range(3):
        assert (await client.get("/customers", headers=bearer(token))).status == 200
    assert own_issuer.jwks_requests == fetched + 1


async def test_made_up_key_ids_fetch_the_key_set_at_most_once_per_min_refresh(client, own_issuer):
    assert (await client.get("/customers", headers=bearer(own_issuer.token(READ)))).status == 200
    before = own_issuer.jwks_requests
    for n in range(20):
        forged = own_issuer.sign(own_issuer.claims(READ), kid=f"made-up-{n}")
        assert (await client.get("/customers", headers=bearer(forged))).status == 401
    assert own_issuer.jwks_requests - before <= 1


async def test_while_the_issuer_is_down_the_cached_keys_still_verify(client, own_issuer):
    assert (await client.get("/customers", headers=bearer(own_issuer.token(READ)))).status == 200
    own_issuer.down = True
    await client.app[AUTH].keys.fetch()  # a routine refresh fails
    fresh = own_issuer.sign(own_issuer.claims(READ, sub="after-the-outage"), algorithm="ES256")
    assert (await client.get("/customers", headers=bearer(fresh))).status == 200
    text = await (await client.get("/metrics")).text()
    assert "auth_jwks_fetch_failures_total 0.0" not in text


async def test_before_any_key_was_fetched_a_token_gets_503_with_retry_after(aiohttp_client, test_run, own_issuer):
    own_issuer.down = True
    settings = jwt_settings(test_run, own_issuer, auth_jwks_min_refresh=0.2)
    client = await aiohttp_client(await create_customer_app(settings))
    response = await client.get("/customers", headers=bearer(own_issuer.token(READ)))
    assert response.status == 503
    assert int(response.headers["Retry-After"]) >= 1
    assert (await client.get("/customers")).status == 401  # no token is no token, keys or not
    own_issuer.down = False

    async def accepted():
        response = await client.get("/customers", headers=bearer(own_issuer.token(READ)))
        assert response.status == 200

    await eventually(accepted, timeout=10)


async def test_a_key_the_issuer_withdrew_stops_verifying_after_the_next_fetch(client, own_issuer):
    token = own_issuer.token(READ)
    assert (await client.get("/customers", headers=bearer(token))).status == 200
    del own_issuer.published[own_issuer.rsa_kid]
    await client.app[AUTH].keys.fetch()
    assert (await client.get("/customers", headers=bearer(token))).status == 401
