"""The FastAPI app: ``amplify_ml.serving.app:app``, or :func:`create_app` for a given workspace.

Creating the app reads nothing: the settings, the workspace, the champions and the audit log
open in the lifespan and close with it. Errors have one shape, ``{"detail": "..."}`` (plus
``errors`` for request validation): :class:`~amplify_ml.errors.AmplifyError` answers with its
``http_status``, request validation with 422 naming each field, anything else with a plain
500 (the details go to the log, never to the client).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware import Middleware

from amplify_ml.config import Settings, get_settings
from amplify_ml.errors import AmplifyError, TooManyAttemptsError
from amplify_ml.serving import pages
from amplify_ml.serving.metrics import Metrics
from amplify_ml.serving.middleware import BodyLimitMiddleware, ObserveMiddleware
from amplify_ml.serving.routes import ROUTERS

log = logging.getLogger("amplify_ml.serving")

DESCRIPTION = """\
Predictions of amplify_ml for the vendor's partners: lead lists, device failure risk, supplies
ship-by dates, fleet risk, benchmarks, and online scoring with the champion models.

Every `/v1` route needs an API key (`X-API-Key: <key>`, `Authorization: Bearer <key>` or the
`amplify_key` cookie). A partner key sees its own partner's data only; anything else answers
404, exactly as an id that does not exist. Lists answer JSON, or CSV with `?format=csv` or
`Accept: text/csv`. `/health`, `/ready` and `/metrics` are open.
"""


def _where(loc: tuple[Any, ...] | list[Any]) -> str:
    """``("body", "rows", 0, "x")`` -> ``body.rows[0].x``."""
    if not loc:
        return "request"
    out = str(loc[0])
    for part in loc[1:]:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _validation_errors(exc: RequestValidationError) -> list[dict[str, str]]:
    found = []
    for e in exc.errors():
        loc = tuple(e.get("loc", ()))
        if e.get("type") == "json_invalid":
            where = "body"
            reason = (e.get("ctx") or {}).get("error", "")
            message = "invalid JSON" + (f" ({reason})" if reason else "")
        else:
            where = _where(loc)
            message = str(e.get("msg", "invalid value"))
        found.append({"field": where, "message": message})
    return found


async def _amplify_error(request: Request, exc: AmplifyError) -> JSONResponse:
    headers = {"WWW-Authenticate": 'Bearer realm="amplify"'} if exc.http_status == 401 else None
    if isinstance(exc, TooManyAttemptsError):
        headers = {"Retry-After": str(exc.retry_after)}
    if exc.http_status >= 500:
        log.warning("%s %s: %s", request.method, request.url.path, exc.message)
    return JSONResponse({"detail": exc.message}, status_code=exc.http_status, headers=headers)


async def _invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = _validation_errors(exc)
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
    if len(errors) > 5:
        detail += f" (+{len(errors) - 5} more)"
    return JSONResponse({"detail": detail, "errors": errors}, status_code=422)


BODY_UNREADABLE = "There was an error parsing the body"  # FastAPI's 400 (e.g. not UTF-8)


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    if exc.status_code == 400 and exc.detail == BODY_UNREADABLE:
        message = "invalid JSON (the body cannot be read as UTF-8 JSON text)"
        return JSONResponse(
            {"detail": f"body: {message}", "errors": [{"field": "body", "message": message}]},
            status_code=422,
        )
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("%s %s failed", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"detail": "internal error; the server log has the details"}, 500)


def create_app(settings: Settings | None = None, *, workspace: str | Path | None = None) -> FastAPI:
    """The API for ``settings``, with ``workspace`` overriding the settings' workspace.

    The settings are read when the app starts: ``app.state.settings`` (set here, and
    replaceable until then), else :func:`get_settings`."""
    from importlib.metadata import version

    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from amplify_ml.serving.page_source import ServicePageSource
        from amplify_ml.serving.service import Service

        chosen = app.state.settings or get_settings()
        if workspace is not None:
            chosen = chosen.model_copy(update={"workspace": Path(workspace)})
        service = await run_in_threadpool(Service.open, chosen, metrics)
        service.start()
        app.state.service = service
        app.state.pages = ServicePageSource(service)
        try:
            yield
        finally:
            app.state.service = None
            app.state.pages = None
            await run_in_threadpool(service.close)

    app = FastAPI(
        title="amplify_ml API",
        version=version("amplify-ml"),
        description=DESCRIPTION,
        lifespan=lifespan,
        middleware=[Middleware(ObserveMiddleware), Middleware(BodyLimitMiddleware)],
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.service = None
    app.add_exception_handler(AmplifyError, _amplify_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _invalid_request)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected)
    for router in ROUTERS:
        app.include_router(router)
    app.include_router(pages.router)
    pages.mount_static(app)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """The schema, with the key schemes declared on every /v1 operation."""
    if app.openapi_schema is None:
        from fastapi.openapi.utils import get_openapi

        from amplify_ml.serving.deps import SECURITY_SCHEMES

        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        schema.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
        for path, operations in schema["paths"].items():
            if path.startswith("/v1/"):
                for op in operations.values():
                    op["security"] = [{name: []} for name in SECURITY_SCHEMES]
        app.openapi_schema = schema
    return app.openapi_schema


app = create_app()
