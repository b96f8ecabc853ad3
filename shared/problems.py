"""RFC 9457 problem+json: one exception family, and the one function that renders it (shared/web.py's
request middleware calls it)."""

import logging
from collections.abc import Iterator, Mapping

import asyncpg
import orjson
from aiohttp import web
from tortoise.exceptions import DBConnectionError

log = logging.getLogger(__name__)

PROBLEM_CONTENT_TYPE = "application/problem+json"
# RFC 9457 `type`: `about:blank` (the status says it all) for the generic kinds, a URI of its own for each kind a
# client may want to tell apart from others of its status (the 409s, the 422s that are not a bad field). Tag URIs
# (RFC 4151): absolute and stable, and nothing a client would try to fetch.
BLANK_TYPE = "about:blank"
PROBLEM_TYPE_PREFIX = "tag:shop-services,2026:problems/"


def problem_type(kind: str) -> str:
    return PROBLEM_TYPE_PREFIX + kind


class AppError(Exception):
    """An error a client can act on; subclasses name the fact and carry the HTTP status."""

    status = 400
    title = "Bad Request"
    type = BLANK_TYPE
    headers: Mapping[str, str] = {}  # sent with the problem (a 401's WWW-Authenticate, say)

    def __init__(self, detail: str, errors: list[dict] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []


class BadRequest(AppError):
    status, title = 400, "Bad Request"


class NotFound(AppError):
    status, title = 404, "Not Found"


class Conflict(AppError):
    status, title = 409, "Conflict"


class RequestTimeout(AppError):
    status, title = 408, "Request Timeout"


class UnsupportedMediaType(AppError):
    status, title = 415, "Unsupported Media Type"


class ValidationFailed(AppError):
    status, title = 422, "Unprocessable Content"


class InternalError(AppError):
    status, title = 500, "Internal Server Error"


class ServiceUnavailable(AppError):
    """A dependency is away or the service is full: nothing was changed, and the client may retry
    after `retry_after` seconds (sent as Retry-After, which well-behaved clients honour)."""

    status, title = 503, "Service Unavailable"

    def __init__(self, detail: str, errors: list[dict] | None = None, retry_after: int = 1) -> None:
        super().__init__(detail, errors)
        self.retry_after = retry_after


# A lost or refused database connection: the client may retry, so 503 rather than 500.
_CONNECTION_ERRORS = (
    OSError,
    TimeoutError,
    DBConnectionError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.TooManyConnectionsError,
    asyncpg.InterfaceError,
    # A session the server terminated while it sat idle in the pool can fail its next statement with
    # "cannot switch to state …; another operation is in progress" (asyncpg issue 1069): the connection
    # was dropped, not the statement wrong.
    asyncpg.InternalClientError,
)


def exception_chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception and what caused it, in turn (the ORM wraps the driver's errors in its own)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        yield current
        seen.add(id(current))
        current = current.__cause__ or current.__context__


# SQLSTATEs of a server that refuses or ends a session: class 08 (connection exception), 53300 (too many
# connections), 55000 (what connecting to a database with ALLOW_CONNECTIONS false answers: "not currently
# accepting connections"; none of the services' statements can raise it), 57P01-57P04 (an administrator's
# or a crash's shutdown, "cannot connect now" while starting, the database dropped).
_REFUSED_SQLSTATES = frozenset({"53300", "55000", "57P01", "57P02", "57P03", "57P04"})


def refused_sqlstate(cause: BaseException) -> str | None:
    """The SQLSTATE of a PostgreSQL error that says the server refused or ended the session, or None."""
    sqlstate = getattr(cause, "sqlstate", None) if isinstance(cause, asyncpg.PostgresError) else None
    if sqlstate and (sqlstate.startswith("08") or sqlstate in _REFUSED_SQLSTATES):
        return sqlstate
    return None


def is_connection_failure(exc: BaseException) -> bool:
    """True if a connection failure is anywhere in the chain: the socket refused, reset or timed out, the
    pool unable to connect, or the server refusing or ending the session."""
    return any(isinstance(cause, _CONNECTION_ERRORS) or refused_sqlstate(cause) for cause in exception_chain(exc))


def describe(exc: BaseException) -> str:
    """`Type [SQLSTATE]: message` of the exception, or of the database error under it: the cause a log
    line names."""
    for cause in exception_chain(exc):
        sqlstate = getattr(cause, "sqlstate", None) if isinstance(cause, asyncpg.PostgresError) else None
        if sqlstate:
            return f"{type(cause).__name__} [{sqlstate}]: {cause}"
    return f"{type(exc).__name__}: {exc}"


def is_statement_timeout(exc: BaseException) -> bool:
    """True if a statement ran past its deadline (statement_timeout, or lock_timeout waiting for a lock)
    anywhere in the chain."""
    return any(
        isinstance(cause, asyncpg.QueryCanceledError | asyncpg.LockNotAvailableError) for cause in exception_chain(exc)
    )


def field_error(field: str, message: str) -> list[dict]:
    return [{"field": field, "message": message}]


def problem_body(
    status: int, title: str, detail: str, errors: list[dict] | None = None, type: str = BLANK_TYPE
) -> dict:
    return {"type": type, "title": title, "status": status, "detail": detail, "errors": errors or []}


def problem(
    status: int, title: str, detail: str, errors: list[dict] | None = None, type: str = BLANK_TYPE
) -> web.Response:
    body = problem_body(status, title, detail, errors, type)
    return web.Response(status=status, body=orjson.dumps(body), content_type=PROBLEM_CONTENT_TYPE)


def _http_exception_detail(exc: web.HTTPException) -> str:
    return {
        404: "No resource at this path.",
        405: "This method is not allowed on this path.",
        413: "The request body is too large.",
    }.get(exc.status, exc.reason)


def example_body(exc: AppError | web.HTTPException) -> dict:
    """The body `problem_for` answers for `exc`: the API documents' examples."""
    if isinstance(exc, AppError):
        return problem_body(exc.status, exc.title, exc.detail, exc.errors, exc.type)
    return problem_body(exc.status, exc.reason, _http_exception_detail(exc))


def _http_exception_problem(exc: web.HTTPException) -> web.Response:
    """The router's 404/405, aiohttp's 413 and friends, in the same problem shape."""
    response = problem(exc.status, exc.reason, _http_exception_detail(exc))
    for name in ("Allow", "Location"):
        if name in exc.headers:
            response.headers[name] = exc.headers[name]
    if exc.status == 413:
        response.force_close()  # the rest of a too-large body is not worth reading to keep the connection
    return response


# Failures a client may retry: a 503 rather than a 500.
_UNAVAILABLE = (
    (is_statement_timeout, "The database did not answer in time"),
    (is_connection_failure, "A backing service is unavailable"),
)


def dependency_failures() -> list[ServiceUnavailable]:
    """What `problem_for` answers for each failure it takes for a lost dependency (the documents' examples)."""
    return [_unavailable(what) for _, what in _UNAVAILABLE]


def _unavailable(what: str) -> ServiceUnavailable:
    return ServiceUnavailable(f"{what}; nothing was changed, try again later.")


def problem_for(request: web.Request, exc: Exception) -> web.Response:
    """The problem response for an error a handler raised."""
    if isinstance(exc, AppError):
        response = problem(exc.status, exc.title, exc.detail, exc.errors, exc.type)
        response.headers.update(exc.headers)
        if isinstance(exc, ServiceUnavailable):
            response.headers["Retry-After"] = str(exc.retry_after)
        return response
    if isinstance(exc, web.HTTPException):
        return _http_exception_problem(exc)
    for applies, what in _UNAVAILABLE:
        if applies(exc):
            log.warning("%s on %s %s: %r", what, request.method, request.path, exc)
            return problem_for(request, _unavailable(what))
    log.error("unhandled error on %s %s", request.method, request.path, exc_info=exc)
    return problem_for(request, INTERNAL_ERROR)


INTERNAL_ERROR = InternalError("An unexpected error occurred.")  # never the exception's own words
