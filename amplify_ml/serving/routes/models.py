"""The registered models, their versions and metrics; the champions' refresh; online scoring."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse

from amplify_ml.serving.deps import CallerDep, OperationsDep, ServiceDep
from amplify_ml.serving.routes.common import AUTH, errors
from amplify_ml.serving.schemas import (
    ModelDetail,
    ModelList,
    ModelName,
    RefreshResult,
    ScoreRequest,
    ScoreResponse,
)

router = APIRouter(prefix="/v1/models", tags=["models"])

Model = Annotated[ModelName, Path(description="The model.")]


@router.post("/{model}/score", response_model=ScoreResponse, responses=errors(*AUTH, 413))
async def score_rows(service: ServiceDep, who: CallerDep, model: Model, body: ScoreRequest) -> Any:
    """Score feature rows with the model's champion: probabilities or day quantiles."""
    loaded = service.loaded(model)
    predictions = loaded.predict(body.rows)
    return JSONResponse({"model": model, "version": loaded.version, "predictions": predictions})


@router.get("", response_model=ModelList, responses=errors(*AUTH))
def model_list(service: ServiceDep, who: CallerDep) -> Any:
    """Every model: registered versions with aliases and metrics, the version serving."""
    return {"models": service.registry()}


@router.get("/{model}", response_model=ModelDetail, responses=errors(*AUTH))
def model_detail(service: ServiceDep, who: CallerDep, model: Model) -> Any:
    """One model: its versions, the version serving and the features online scoring takes."""
    (entry,) = service.registry([model])
    loaded = service.champions.get(model)
    return {
        **entry,
        "task": loaded.task if loaded else None,
        "outputs": list(loaded.outputs) if loaded else [],
        "features": [f.public() for f in loaded.encoder.features] if loaded else [],
        "combine_by": loaded.champion.combine_by if loaded else None,
    }


@router.post("/refresh", response_model=RefreshResult, responses=errors(*AUTH, 403))
def refresh(service: ServiceDep, who: OperationsDep) -> Any:
    """Look at the registry now and load new champions (operations role)."""
    results = service.champions.refresh()
    return {"results": results, "models": service.champions.status()}
