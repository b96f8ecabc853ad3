"""The TLS parameters of a database URL reach every connection; a certificate failure is named as one."""

import ssl

from shared.database_roles import with_admin_database, with_role
from shared.db import admin_url_for, asyncpg_dsn, connection_config
from shared.tls import certificate_failure, postgres_verifies

TLS = "sslmode=verify-full&sslrootcert=%2Fetc%2Fssl%2Fca.pem"
URL = f"postgres://customer_service:pw@db.internal:5432/customers?minsize=2&{TLS}"


def test_a_raw_session_keeps_the_tls_parameters_and_drops_the_pool_ones():
    assert asyncpg_dsn(URL) == f"postgresql://customer_service:pw@db.internal:5432/customers?{TLS}"


def test_the_derived_owner_and_admin_urls_keep_the_tls_parameters():
    assert asyncpg_dsn(with_role(URL, "customer_owner")).endswith(f"/customers?{TLS}")
    assert admin_url_for(URL) == f"postgres://postgres@db.internal:5432/postgres?{TLS}"
    assert asyncpg_dsn(with_admin_database(None, URL)) == f"postgresql://postgres@db.internal:5432/customers?{TLS}"


def test_the_orm_pool_gets_them_through_its_connect_and_not_as_keywords():
    credentials = connection_config(URL)["credentials"]
    assert "sslmode" not in credentials and "sslrootcert" not in credentials
    assert callable(credentials["connect"]) and credentials["minsize"] == "2"
    assert "connect" not in connection_config("postgres://u@h:5432/d")["credentials"]


def test_which_urls_ask_for_the_certificate_to_be_checked():
    assert postgres_verifies(URL)
    assert postgres_verifies("postgres://u@h/d?sslmode=verify-ca")
    assert postgres_verifies("postgres://u@h/d?sslmode=require&sslrootcert=/ca.pem")
    assert not postgres_verifies("postgres://u@h/d?sslmode=require")
    assert not postgres_verifies("postgres://u@h/d")


def test_a_certificate_failure_is_told_from_an_outage():
    failure = ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")
    failure.verify_message = "unable to get local issuer certificate"
    try:
        raise ConnectionError("no broker") from failure
    except ConnectionError as exc:
        assert certificate_failure(exc) == "certificate verify failed: unable to get local issuer certificate"
    folded = ConnectionError(
        "no broker answered (amqps://h:5671/: AMQPConnectionError: [Errno 1] [SSL: CERTIFICATE_VERIFY_FAILED] "
        "certificate verify failed: unable to get local issuer certificate (_ssl.c:1006))"
    )
    assert certificate_failure(folded) == "certificate verify failed: unable to get local issuer certificate"
    assert certificate_failure(ConnectionRefusedError(111, "Connection refused")) is None
