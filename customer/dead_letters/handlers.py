"""`/ops/dead-letters`: the dead-letter operations over HTTP, and the operator's page at `/ops/console`.

With AUTH_MODE=jwt each route takes the scope `ops:dead-letters` (customer/routes.py). With AUTH_MODE=off
they answer only when OPS_ALLOW_UNAUTHENTICATED=true (`make run` sets it, compose does not): otherwise
anyone who reaches the port could replay or discard events.
"""

import functools
from importlib.resources import files

from aiohttp import web

from customer.dead_letters import actions, repository
from customer.dead_letters.schemas import (
    AuditOut,
    BulkBody,
    DeadLetterDetail,
    DeadLetterOut,
    DeadLetterQuery,
    DiscardBody,
    Groups,
    ReplayBody,
)
from customer.keys import SETTINGS
from shared.amqp import BROKER
from shared.auth.identity import current_actor
from shared.http import json_response, parse_json, parse_query, path_id
from shared.pagination import check_offset, page_response, resume
from shared.problems import AppError

ANONYMOUS = "anonymous (AUTH_MODE=off)"
AUDIT_SHOWN = 100


class OpsClosed(AppError):
    status, title = 403, "Forbidden"

    def __init__(self) -> None:
        super().__init__(
            "The operator routes answer without a token only where OPS_ALLOW_UNAUTHENTICATED=true (a developer's "
            "machine; make run sets it). Turn tokens on (AUTH_MODE=jwt) and use one with the scope ops:dead-letters."
        )


def _operator(request: web.Request) -> str:
    """Who acts: the token's `sub`; with auth off (and ops allowed there) no one we can name."""
    settings = request.app[SETTINGS]
    if settings.auth_mode == "off" and not settings.ops_allow_unauthenticated:
        raise OpsClosed()
    return current_actor() or ANONYMOUS


async def list_dead_letters(request: web.Request) -> web.Response:
    _operator(request)
    query = parse_query(request, DeadLetterQuery)
    check_offset(query, request.app[SETTINGS].page_max_offset)
    query, after = resume(query)
    rows = await repository.list_dead_letters(query.filters(), query.limit + 1, query.offset, after)
    total = await repository.count_dead_letters(query.filters()) if query.count else None
    return page_response(request, DeadLetterOut, [DeadLetterOut.model_validate(row) for row in rows], query, total)


async def dead_letter_groups(request: web.Request) -> web.Response:
    _operator(request)
    query = parse_query(request, DeadLetterQuery)
    return json_response(Groups(groups=await repository.groups(query.filters())))  # type: ignore[arg-type]


async def get_dead_letter(request: web.Request) -> web.Response:
    actor = _operator(request)
    return json_response(await dead_letter_detail(path_id(request), actor))


async def dead_letter_detail(dead_letter_id: int, actor: str) -> DeadLetterDetail:
    """One dead letter with its body, which holds personal data: who read it is kept in the audit."""
    row = await repository.get_dead_letter(dead_letter_id)
    if row is None:
        raise actions.DeadLetterNotFound(dead_letter_id)
    await repository.record_read(actor, row["key"])
    audit = [AuditOut.model_validate(entry) for entry in await repository.audit_of(row["key"], AUDIT_SHOWN)]
    body = bytes(row["body"]).decode(errors="replace")
    return DeadLetterDetail.model_validate({**row, "body": body, "audit": audit})


async def replay_dead_letter(request: web.Request) -> web.Response:
    actor = _operator(request)
    body = await parse_json(request, ReplayBody)
    channel = request.app[BROKER].channel
    done = await actions.replay(
        channel, request.app[SETTINGS], path_id(request), actor, body.reason, body.body, body.untrusted
    )
    return json_response(done)


async def discard_dead_letter(request: web.Request) -> web.Response:
    actor = _operator(request)
    body = await parse_json(request, DiscardBody)
    return json_response(await actions.discard(path_id(request), actor, body.reason))


async def _bulk(request: web.Request, action: str) -> web.Response:
    actor = _operator(request)
    body = await parse_json(request, BulkBody)
    result = await actions.bulk(
        action,
        request.app[BROKER].channel,
        request.app[SETTINGS],
        body.filter.model_dump(),
        actor,
        body.reason,
        body.dry_run,
        body.limit,
        body.untrusted,
    )
    return json_response(result)


async def replay_dead_letters(request: web.Request) -> web.Response:
    return await _bulk(request, "replay")


async def discard_dead_letters(request: web.Request) -> web.Response:
    return await _bulk(request, "discard")


async def ops_console(request: web.Request) -> web.Response:
    """The page itself holds no data: with tokens on it is open, and asks for one before it reads anything."""
    settings = request.app[SETTINGS]
    if settings.auth_mode == "off" and not settings.ops_allow_unauthenticated:
        raise OpsClosed()
    return web.Response(body=console_html(), content_type="text/html", charset="utf-8")


@functools.cache
def console_html() -> bytes:
    """One self-contained file (its script and style inline): nothing is fetched from anywhere else."""
    return files("customer.dead_letters").joinpath("console.html").read_bytes()
