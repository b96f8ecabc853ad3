"""A development OAuth2 / OpenID Connect issuer: NOT FOR PRODUCTION (docs/auth.md).

Enough of an identity provider to run and test the services with real tokens: a discovery document,
the key set (JWKS), a client-credentials token endpoint (HTTP Basic client authentication), key
rotation on demand, and a command that prints a token. Keys live in memory: a restart makes new ones.
Signing is PyJWT's, with keys from cryptography. The issuer and its keys are in issuer.py, its HTTP
endpoints in app.py, the command line in __main__.py.

    python -m shared.devissuer serve [--port 3010] [--host 127.0.0.1] [--issuer URL] [--allow-remote]
    python -m shared.devissuer token --scope "orders:write" [--customer-id 7] [--url http://127.0.0.1:3010]
    python -m shared.devissuer rotate [--url ...]          (or SIGHUP to the server)

Clients (id:secret:scopes; `*` any scope, and only such a client may ask for a `customer_id`):
`order-service:order-service-secret:customers:read` (the order service's own) and `dev:dev-secret:*`
(the `token` command's), or those given with --client, repeatable.
"""
