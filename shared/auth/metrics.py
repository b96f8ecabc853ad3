"""The metrics of authentication: refusals by reason, failed key-set fetches, failed token renewals."""

from shared.metrics import Counter

AUTH_FAILURES = Counter("auth_failures_total", "Requests refused by authentication or authorisation", ["reason"])
JWKS_FETCH_FAILURES = Counter("auth_jwks_fetch_failures_total", "Failed fetches of the issuer's key set")
TOKEN_RENEWAL_FAILURES = Counter(
    "auth_token_renewal_failures_total", "Failed attempts to get the service's own token from the issuer"
)
REASONS = ("missing", "invalid", "expired", "unknown_key", "scope", "customer")
for _reason in REASONS:
    AUTH_FAILURES.labels(_reason)
