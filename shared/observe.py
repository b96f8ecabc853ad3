"""Per-request observation: the access log line and the request metrics, in one middleware."""

import logging
import time

from aiohttp import web

from shared.metrics import observe_request

access_log = logging.getLogger("access")


@web.middleware
async def observe_middleware(request: web.Request, handler) -> web.StreamResponse:
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    finally:
        elapsed = observe_request(request, status, started)
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
