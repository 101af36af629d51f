"""The supplies ship plan: which printer colours to ship toner to, and by when."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request

from amplify_ml.scoring.supplies import COLUMNS, status_counts
from amplify_ml.serving.deps import Format, PartnersDep, ServiceDep, wants_csv
from amplify_ml.serving.routes.common import AUTH, CSV, csv_response, errors
from amplify_ml.serving.routes.devices import Alpha, LeadTime
from amplify_ml.serving.schemas import MAX_FLEET, SupplyPlan, records

router = APIRouter(prefix="/v1", tags=["supplies"])


@router.get("/supplies", response_model=SupplyPlan, responses={**CSV, **errors(*AUTH, 404)})
def supply_plan(
    request: Request,
    service: ServiceDep,
    partners: PartnersDep,
    fmt: Format = None,
    status: Annotated[
        Literal["ship now", "soon", "ok"] | None, Query(description="Only this status.")
    ] = None,
    alpha: Alpha = 0.1,
    lead_time_days: LeadTime = 5,
    limit: Annotated[int, Query(ge=1, le=MAX_FLEET, description="Rows, soonest first.")] = 100,
) -> Any:
    """Per device colour: days to the threshold, ship-by date and status, soonest first."""
    plan = service.supply_plan(
        sorted(partners) if partners else None, alpha=alpha, lead_time_days=lead_time_days
    )
    counts = status_counts(plan)
    if status is not None:
        plan = plan[plan["status"] == status]
    plan = plan.head(limit)
    partner = next(iter(partners)) if partners else None
    if wants_csv(request, fmt):
        return csv_response(plan, COLUMNS, f"supplies-{partner or 'all'}.csv")
    return {"partner_id": partner, "counts": counts, "count": len(plan), "rows": records(plan)}
