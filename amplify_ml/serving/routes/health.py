"""Open routes for the platform: liveness, readiness, Prometheus metrics (no key)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from amplify_ml.features.spec import MODELS
from amplify_ml.serving.schemas import Health, Ready

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health)
async def health() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/ready", response_model=Ready, responses={503: {"model": Ready}})
def ready(request: Request) -> Any:
    """Readiness: the lake is open and each model it can feed has its champion; what is missing."""
    service = getattr(request.app.state, "service", None)
    if service is None:
        body: dict[str, Any] = {
            "ready": False,
            "missing": ["the API is starting: the workspace is not open yet"],
            "lake": "missing",
            "models": {},
            "scores": dict.fromkeys(MODELS),
        }
    else:
        body = service.ready()
    out = Ready.model_validate(body).model_dump(mode="json")
    return JSONResponse(out, status_code=200 if out["ready"] else 503)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def metrics(request: Request) -> Response:
    """Prometheus metrics: requests by route and status, latency, model versions."""
    m = request.app.state.metrics
    return Response(m.render(), media_type=m.content_type)
