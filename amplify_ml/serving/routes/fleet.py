"""The fleet under service contracts by failure risk."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from amplify_ml.scoring.fleet import COLUMNS
from amplify_ml.serving.deps import Format, PartnersDep, ServiceDep, wants_csv
from amplify_ml.serving.routes.common import AUTH, CSV, csv_response, errors
from amplify_ml.serving.schemas import MAX_FLEET, FleetList, records

router = APIRouter(prefix="/v1", tags=["fleet"])


@router.get("/fleet", response_model=FleetList, responses={**CSV, **errors(*AUTH, 404)})
def fleet_list(
    request: Request,
    service: ServiceDep,
    partners: PartnersDep,
    fmt: Format = None,
    limit: Annotated[int, Query(ge=1, le=MAX_FLEET, description="Devices, riskiest first.")] = 50,
) -> Any:
    """Devices under contract by failure risk, with the likely component and reasons."""
    partner = next(iter(partners)) if partners else None
    df = service.fleet(partner).head(limit)
    if wants_csv(request, fmt):
        return csv_response(df, COLUMNS, f"fleet-{partner or 'all'}.csv")
    devices = records(df)
    for d in devices:  # a JSON object in the table
        if isinstance(d.get("component_probabilities"), str):
            d["component_probabilities"] = json.loads(d["component_probabilities"])
    return {"partner_id": partner, "count": len(df), "devices": devices}
