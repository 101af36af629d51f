"""Dependencies of the routes (and of the pages built on this app): who calls, what they see.

- :data:`ServiceDep`: the :class:`~amplify_ml.serving.service.Service` opened in the
  lifespan (workspace, lake, score tables, champions, keys, audit).
- :data:`CallerDep`: the verified key behind the request (``X-API-Key`` header,
  ``Authorization: Bearer``, or the ``amplify_key`` cookie the pages use); 401 otherwise.
- :data:`PartnerDep`: the one partner a partner-scoped list is for. A partner key gets its own
  partner; the operations role must name one (``?partner=``).
- :data:`PartnersDep`: the partners whose devices the caller may see (``None``: every partner,
  the operations role without ``?partner=``).

Another partner's id answers exactly like an id that does not exist (404, same message), so
a key learns nothing about other partners. What the request reached is noted on
``request.state`` for the audit log.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from amplify_ml.errors import (
    AuthenticationError,
    InvalidRequestError,
    ModelError,
    NotFoundError,
    PermissionDeniedError,
)
from amplify_ml.serving.keys import Role, parse_key
from amplify_ml.serving.service import Service

NO_KEY = (
    "missing API key: send it in the X-API-Key header or as Authorization: Bearer <key>; "
    "the vendor's operations team issues keys (amplify keys create)"
)
BAD_KEY = "invalid API key: it is unknown, malformed or revoked; ask for a new one"
PARTNER_NOT_FOUND = "partner not found: no partner with this id is visible to your key"
DEVICE_NOT_FOUND = "device not found: no scored device with this id is visible to your key"
ACCOUNT_NOT_FOUND = "account not found: no account with this id is visible to your key"
NAME_A_PARTNER = (
    "query.partner: required for the operations role on this list; name the partner "
    "(?partner=<partner id>)"
)
OPERATIONS_ONLY = "forbidden: only an operations key may do this"
COOKIE = "amplify_key"

SECURITY_SCHEMES = {
    "APIKeyHeader": {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "An API key: <key_id>.<secret>.",
    },
    "HTTPBearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "The same key as a bearer token.",
    },
    "APIKeyCookie": {
        "type": "apiKey",
        "in": "cookie",
        "name": COOKIE,
        "description": "The same key in a cookie (the pages).",
    },
}
"""The ways to send a key, as OpenAPI security schemes (any one will do)."""


@dataclass(frozen=True)
class Caller:
    """The verified key of a request."""

    key_id: str
    role: Role
    partner_id: str | None

    @property
    def is_operations(self) -> bool:
        return self.role == "operations"


async def get_service(request: Request) -> Service:
    """The service opened in the lifespan."""
    service = getattr(request.app.state, "service", None)
    if service is None:
        raise ModelError("the API is starting: the workspace is not open yet; retry shortly")
    return service


ServiceDep = Annotated[Service, Depends(get_service)]


def presented_key(request: Request) -> str | None:
    """The key of the request: ``X-API-Key``, else ``Authorization: Bearer``, else the
    ``amplify_key`` cookie."""
    headers = request.headers
    key = headers.get("x-api-key")
    if key:
        return key
    auth = headers.get("authorization")
    if auth:
        scheme, _, token = auth.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    return request.cookies.get(COOKIE) or None


async def caller(request: Request) -> Caller:
    """The key of the request, verified (401 without one, or with a wrong or revoked one).

    One dependency reading the headers itself (FastAPI's security classes would add three
    sub-dependencies to every request); the schemes are declared in the OpenAPI schema. The
    result is kept on ``request.state.caller``, so the scope dependencies below call this
    function instead of depending on it (each dependency level costs tens of microseconds)."""
    known = getattr(request.state, "caller", None)
    if known is not None:
        return known
    key = presented_key(request)
    if not key:
        raise AuthenticationError(NO_KEY)
    service = await get_service(request)
    parsed = parse_key(key)
    request.state.key_id = parsed[0] if parsed else None
    record, needs_kdf = service.keys.quick(key)
    if needs_kdf:  # the first time a key is seen: the KDF, off the event loop (it counts
        # a refusal itself)
        record = await run_in_threadpool(service.keys.verify, key)
    elif record is None:
        service.keys.refused(key)  # too many refusals of this key id: 429, not 401
    if record is None:
        raise AuthenticationError(BAD_KEY)
    who = Caller(record.key_id, record.role, record.partner_id)
    request.state.role = who.role
    if who.partner_id is not None:
        request.state.partner = who.partner_id
    request.state.caller = who
    return who


CallerDep = Annotated[Caller, Depends(caller)]

PartnerQuery = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=64,
        description="The partner (operations role). A partner key may leave it out or name "
        "its own partner.",
    ),
]


def _check_partner(request: Request, service: Service, who: Caller, partner: str | None) -> None:
    if who.partner_id is not None and partner is not None and partner != who.partner_id:
        raise NotFoundError(PARTNER_NOT_FOUND)
    service.lake.require()
    if partner is not None:
        request.state.partner = partner
        if partner not in service.lake.partners():
            raise NotFoundError(PARTNER_NOT_FOUND)


async def partner_scope(request: Request, partner: PartnerQuery = None) -> str:
    """The partner of a partner-scoped list (the operations role must name one)."""
    who = await caller(request)
    service = await get_service(request)
    if who.is_operations and partner is None:
        raise InvalidRequestError(NAME_A_PARTNER)
    chosen = partner if partner is not None else who.partner_id
    _check_partner(request, service, who, chosen)
    return chosen  # type: ignore[return-value]


PartnerDep = Annotated[str, Depends(partner_scope)]


async def partners_scope(request: Request, partner: PartnerQuery = None) -> frozenset[str] | None:
    """Partners whose devices the caller may see (None: every partner)."""
    who = await caller(request)
    service = await get_service(request)
    chosen = partner if partner is not None else who.partner_id
    if chosen is None:
        return None
    _check_partner(request, service, who, chosen)
    return frozenset({chosen})


PartnersDep = Annotated[frozenset[str] | None, Depends(partners_scope)]


async def operations(who: CallerDep) -> Caller:
    """The caller, if it has the operations role (403 otherwise)."""
    if not who.is_operations:
        raise PermissionDeniedError(OPERATIONS_ONLY)
    return who


OperationsDep = Annotated[Caller, Depends(operations)]


Format = Annotated[
    Literal["json", "csv"] | None,
    Query(
        alias="format",
        description="json or csv; without it the Accept header decides (text/csv for CSV).",
    ),
]


def wants_csv(request: Request, fmt: str | None) -> bool:
    """CSV when ``?format=csv``, or when the Accept header ranks text/csv above JSON."""
    if fmt is not None:
        return fmt == "csv"
    best: dict[str, float] = {}
    for part in request.headers.get("accept", "").split(","):
        media, _, params = part.strip().partition(";")
        q = 1.0
        for p in params.split(";"):
            k, _, v = p.strip().partition("=")
            if k == "q":
                try:
                    q = float(v)
                except ValueError:
                    q = 0.0
        best[media.strip().lower()] = max(q, best.get(media.strip().lower(), 0.0))
    csv_q = best.get("text/csv", 0.0)
    json_q = max(best.get("application/json", 0.0), best.get("*/*", 0.0) * 0.99)
    return csv_q > 0 and csv_q >= json_q
