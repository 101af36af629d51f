"""Pure ASGI middleware (no per-request task or copy of the body): metrics, audit, body limit."""

from __future__ import annotations

import json
import time
from typing import Any

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

AUDITED_PREFIX = "/v1/"


def _route_of(scope: Scope) -> str:
    route = scope.get("route")
    return getattr(route, "path", None) or "unmatched"


class ObserveMiddleware:
    """Counts and times every request by route template and status; writes an audit entry
    for every request under ``/v1/`` (failures included)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            seconds = time.perf_counter() - start
            state: Any = scope["app"].state
            route = _route_of(scope)
            metrics = getattr(state, "metrics", None)
            if metrics is not None:
                metrics.observe(scope["method"], route, status, seconds)
            service = getattr(state, "service", None)
            if service is not None and scope["path"].startswith(AUDITED_PREFIX):
                noted = scope.get("state") or {}
                service.audit.record(
                    key_id=noted.get("key_id"),
                    role=noted.get("role"),
                    partner=noted.get("partner"),
                    method=scope["method"],
                    route=route if route != "unmatched" else scope["path"][:200],
                    path=_path_and_query(scope),
                    status=status,
                    ms=round(seconds * 1000, 3),
                )


def _path_and_query(scope: Scope) -> str:
    query = scope.get("query_string", b"")
    path = scope["path"] + ("?" + query.decode("latin-1") if query else "")
    return path[:300]


class BodyLimitMiddleware:
    """413 for a body over the service's ``max_body_bytes``: at once when Content-Length says
    so, else as soon as the bytes received pass it."""

    def __init__(self, app: ASGIApp, default_limit: int = 1_000_000) -> None:
        self.app = app
        self.default_limit = default_limit

    def _limit(self, scope: Scope) -> int:
        service = getattr(scope["app"].state, "service", None)
        return service.settings.max_body_bytes if service is not None else self.default_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope)
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > limit:
                    await _too_large(send, limit)
                    return
                break
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise HTTPException(413, _too_large_detail(limit))
            return message

        await self.app(scope, limited, send)


def _too_large_detail(limit: int) -> str:
    return (
        f"request body too large: the limit is {limit:,} bytes (AMPLIFY_MAX_BODY_BYTES); "
        "send fewer ids or rows per request"
    )


async def _too_large(send: Send, limit: int) -> None:
    body = json.dumps({"detail": _too_large_detail(limit)}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
