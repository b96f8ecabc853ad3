"""The development issuer, as a process: what it publishes, whom it gives tokens, and its refusals."""

import asyncio
import signal
import subprocess
import sys

import aiohttp
import jwt

from shared.devissuer.issuer import audiences
from shared.testing.plugin import eventually


async def post_token(issuer, form: dict, client: tuple[str, str] = ("dev", "dev-secret")) -> tuple[int, dict]:
    headers = {"Authorization": aiohttp.encode_basic_auth(*client)}
    async with aiohttp.ClientSession() as session, session.post(issuer.token_url, data=form, headers=headers) as r:
        return r.status, await r.json()


async def published_kids(issuer) -> list[str]:
    async with aiohttp.ClientSession() as session, session.get(issuer.jwks_url) as response:
        return [key["kid"] for key in (await response.json())["keys"]]


async def test_discovery_names_its_endpoints_and_the_tokens_verify_with_its_key_set(dev_issuer):
    issuer = await dev_issuer()
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{issuer.url}/.well-known/openid-configuration") as response:
            discovery = await response.json()
        async with session.get(issuer.jwks_url) as response:
            key_set = jwt.PyJWKSet.from_dict(await response.json())
    assert discovery["issuer"] == issuer.url
    assert discovery["jwks_uri"] == issuer.jwks_url and discovery["token_endpoint"] == issuer.token_url
    assert discovery["token_endpoint_auth_methods_supported"] == ["client_secret_basic"]
    assert "ops:dead-letters" in discovery["scopes_supported"]
    token = await issuer.token("orders:write", customer_id=7)
    key = key_set[jwt.get_unverified_header(token)["kid"]]
    claims = jwt.decode(token, key, algorithms=["RS256"], audience="order-service", issuer=issuer.url)
    assert claims["scope"] == "orders:write" and claims["customer_id"] == 7 and claims["sub"] == "dev"


async def test_the_order_service_client_gets_its_scope_and_nothing_more(dev_issuer):
    issuer = await dev_issuer()
    client = ("order-service", "order-service-secret")
    status, body = await post_token(issuer, {"grant_type": "client_credentials", "scope": "customers:read"}, client)
    assert status == 200 and body["token_type"] == "Bearer" and body["expires_in"] > 0
    assert jwt.decode(body["access_token"], options={"verify_signature": False})["aud"] == ["customer-service"]
    status, body = await post_token(issuer, {"grant_type": "client_credentials", "scope": "orders:fulfil"}, client)
    assert (status, body["error"]) == (400, "invalid_scope")
    form = {"grant_type": "client_credentials", "scope": "customers:read", "customer_id": "3"}
    status, body = await post_token(issuer, form, client)
    assert (status, body["error"]) == (400, "invalid_request")


async def test_a_wrong_secret_or_grant_is_refused(dev_issuer):
    issuer = await dev_issuer()
    status, body = await post_token(issuer, {"grant_type": "client_credentials"}, ("dev", "guess"))
    assert (status, body["error"]) == (401, "invalid_client")
    status, body = await post_token(issuer, {"grant_type": "password"})
    assert (status, body["error"]) == (400, "unsupported_grant_type")


async def test_rotation_signs_with_the_key_published_ahead_and_keeps_the_previous_one(dev_issuer):
    issuer = await dev_issuer()
    before = await published_kids(issuer)
    old_token = await issuer.token("customers:read")
    signing = jwt.get_unverified_header(old_token)["kid"]
    assert signing == before[1]
    new_kid = await issuer.rotate()
    assert new_kid == before[0]  # the services could fetch it before it signed anything
    after = await published_kids(issuer)
    assert after[1:] == before and jwt.get_unverified_header(await issuer.token("orders:read"))["kid"] == new_kid
    issuer.process.send_signal(signal.SIGHUP)

    async def rotated_again():
        assert (await published_kids(issuer))[1] == after[0]

    await eventually(rotated_again, timeout=10)


async def test_rotation_takes_the_development_clients_credentials(dev_issuer):
    issuer = await dev_issuer()
    async with aiohttp.ClientSession() as session, session.post(f"{issuer.url}/rotate") as response:
        assert response.status == 401


async def test_the_token_command_prints_a_token(dev_issuer):
    issuer = await dev_issuer()
    process = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "shared.devissuer", "token", "--url", issuer.url, "--scope", "orders:read"],
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, stderr
    claims = jwt.decode(stdout.decode().strip(), options={"verify_signature": False})
    assert claims["scope"] == "orders:read" and claims["iss"] == issuer.url


def test_it_refuses_to_listen_beyond_loopback_unless_told():
    result = subprocess.run(
        [sys.executable, "-m", "shared.devissuer", "serve", "--host", "0.0.0.0", "--port", "1"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1 and "refusing to listen on 0.0.0.0" in result.stderr


def test_scopes_choose_the_audiences():
    assert audiences(["orders:read"]) == ["order-service"]
    assert audiences(["customers:read", "ops:dead-letters"]) == ["customer-service"]
    assert audiences([]) == ["customer-service", "order-service"]
