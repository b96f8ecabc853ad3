"""Bearer tokens (OAuth2 resource server, RFC 6750): who calls, and what each route lets them do.

A token is a JWT signed with RS256 or ES256 by a key of the issuer's JWKS; `iss`, `aud`, `exp` and
`sub` are required (tokens.py). The key set is fetched with the app's own ClientSession (PyJWKClient
would block the event loop), kept while the issuer is away, and fetched again for an unknown key id at
most once per AUTH_JWKS_MIN_REFRESH (keys.py). A verified token is kept until it expires, so a client's
next request costs a dictionary lookup.

Each service declares, beside its routes, the scope each handler needs and what a token bound to one
customer (`customer_id` claim) may do there: `access = {handler: Access(scope, customer=...)}`
(access.py). Every route must be in that table or among the open ones (probes, metrics, docs); the app
refuses to build otherwise, so a new route cannot be left open by forgetting it. Who the caller is
stays in identity.py; a service's own token for calling another in service_token.py; the start
(settings checked, key refresh task) in startup.py.
"""
