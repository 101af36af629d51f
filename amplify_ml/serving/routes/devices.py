"""One device's failure risk and supplies forecast; the risk of a batch of devices."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse

from amplify_ml.errors import InvalidRequestError, NotFoundError
from amplify_ml.serving.deps import DEVICE_NOT_FOUND, PartnersDep, ServiceDep
from amplify_ml.serving.routes.common import AUTH, errors
from amplify_ml.serving.schemas import (
    DeviceIdsRequest,
    DeviceRisk,
    DeviceRiskBatch,
    DeviceSupplies,
    records,
)

router = APIRouter(prefix="/v1/devices", tags=["devices"])

DeviceId = Annotated[str, Path(min_length=1, max_length=128, description="The device's id.")]
AMBIGUOUS = (
    "query.partner: this device id is used by several partners; name one (?partner=<partner id>)"
)
Alpha = Annotated[
    float,
    Query(gt=0, lt=1, description="Ship when P(threshold before delivery) passes this."),
]
LeadTime = Annotated[int, Query(ge=0, le=365, description="Delivery days.")]


def _risk(row: dict[str, Any]) -> dict[str, Any]:
    parts = row.get("component_probabilities")
    return {
        "device_id": row["device_id"],
        "partner_id": row["partner_id"],
        "account_id": row.get("account_id"),
        "probability": row["probability"],
        "likely_component": row.get("likely_component"),
        "component_probabilities": json.loads(parts) if isinstance(parts, str) else None,
        "as_of": row["as_of"],
        "model_version": row["model_version"],
    }


def _one(hits: list[int]) -> int:
    if not hits:
        raise NotFoundError(DEVICE_NOT_FOUND)
    if len(hits) > 1:
        raise InvalidRequestError(AMBIGUOUS)
    return hits[0]


@router.get("/{device_id}/risk", response_model=DeviceRisk, responses=errors(*AUTH, 404))
async def device_risk(
    request: Request,
    service: ServiceDep,
    partners: PartnersDep,
    device_id: DeviceId,
) -> Any:
    """One device's probability of needing a repair within the model's horizon."""
    table = service.score_table("device_failure")
    row = table.rows[_one(table.for_device(device_id, partners))]
    request.state.partner = row["partner_id"]
    return JSONResponse(_risk(row))


@router.post("/risk", response_model=DeviceRiskBatch, responses=errors(*AUTH, 404, 413))
async def device_risks(
    request: Request,
    service: ServiceDep,
    partners: PartnersDep,
    body: DeviceIdsRequest,
) -> Any:
    """The risk of up to 1,000 devices; ids not visible to the key are listed as not found."""
    table = service.score_table("device_failure")
    risks, not_found = [], []
    for device_id in dict.fromkeys(body.device_ids):
        hits = table.for_device(device_id, partners)
        if not hits:
            not_found.append(device_id)
        risks += [_risk(table.rows[i]) for i in hits]
    seen = {r["partner_id"] for r in risks}
    if len(seen) == 1:
        request.state.partner = next(iter(seen))
    return JSONResponse({"risks": risks, "not_found": not_found})


@router.get("/{device_id}/supplies", response_model=DeviceSupplies, responses=errors(*AUTH, 404))
def device_supplies(
    request: Request,
    service: ServiceDep,
    partners: PartnersDep,
    device_id: DeviceId,
    alpha: Alpha = 0.1,
    lead_time_days: LeadTime = 5,
) -> Any:
    """A printer's days to each toner threshold (P10/P50/P90) and the day to ship."""
    from amplify_ml.scoring.supplies import ship_plan

    table = service.score_table("consumable_depletion")
    hits = table.for_device(device_id, partners)
    if not hits:
        raise NotFoundError(DEVICE_NOT_FOUND)
    owners = {table.rows[i]["partner_id"] for i in hits}
    if len(owners) > 1:
        raise InvalidRequestError(AMBIGUOUS)
    first = table.rows[hits[0]]
    request.state.partner = first["partner_id"]
    plan = ship_plan(table.frame.iloc[hits], alpha=alpha, lead_time_days=lead_time_days)
    plan = plan.sort_values("color", kind="stable")
    return {
        "device_id": device_id,
        "partner_id": first["partner_id"],
        "account_id": first.get("account_id"),
        "as_of": first["as_of"],
        "model_version": first.get("model_version"),
        "alpha": alpha,
        "lead_time_days": lead_time_days,
        "colors": records(plan),
    }
