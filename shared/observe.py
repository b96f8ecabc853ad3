"""Per-request observation: the access log line and the request metrics."""

import logging

from aiohttp import web

from shared.auth.identity import current_actor
from shared.logs import access_log, log_access
from shared.metrics import observe_request, requests_in_progress


def observe(request: web.Request, status: int, started: float) -> None:
    """Count and time the request, and write its access log line (at INFO)."""
    elapsed = observe_request(request, status, started)
    if not access_log.isEnabledFor(logging.INFO):
        return
    # The path only: query strings can hold personal data (emails in filters, say).
    method, path = request.method, request.path
    log_access(
        f"{method} {path} {status}",
        {
            "method": method,
            "path": path,
            "status": status,
            "duration_ms": round(elapsed * 1000, 2),
            "remote": request.remote,
            "actor": current_actor(),  # the token's `sub`; null with AUTH_MODE=off and on open routes
        },
        # The last request in progress writes its line (and any held) before its response goes out;
        # a busy worker's lines share writes.
        write_now=requests_in_progress() == 0,
    )
