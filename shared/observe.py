"""Per-request observation: the access log line and the request metrics."""

import logging

from aiohttp import web

from shared.metrics import observe_request

access_log = logging.getLogger("access")


def observe(request: web.Request, status: int, started: float) -> None:
    """Count and time the request, and write its access log line (at INFO)."""
    elapsed = observe_request(request, status, started)
    if not access_log.isEnabledFor(logging.INFO):
        return
    # The path only: query strings can hold personal data (emails in filters, say).
    access_log.info(
        "%s %s %s",
        request.method,
        request.path,
        status,
        extra={
            "method": request.method,
            "path": request.path,
            "status": status,
            "duration_ms": round(elapsed * 1000, 2),
            "remote": request.remote,
        },
    )
