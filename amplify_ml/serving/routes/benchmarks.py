"""A partner's programme measures next to its peer group and the market."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from amplify_ml.scoring.benchmarks import FRAME_COLUMNS
from amplify_ml.serving.deps import Format, PartnerDep, ServiceDep, wants_csv
from amplify_ml.serving.routes.common import AUTH, CSV, csv_response, errors
from amplify_ml.serving.schemas import Benchmark

router = APIRouter(prefix="/v1", tags=["benchmarks"])


@router.get("/benchmarks", response_model=Benchmark, responses={**CSV, **errors(*AUTH, 404)})
def partner_benchmark(
    request: Request,
    service: ServiceDep,
    partner: PartnerDep,
    fmt: Format = None,
    as_of: Annotated[
        date | None, Query(description="Last day of the period (default: end of the data).")
    ] = None,
    period_days: Annotated[int, Query(ge=1, le=3660, description="Days in the period.")] = 365,
) -> Any:
    """The partner's measures against k-anonymous peer aggregates and the market."""
    report = service.benchmark(partner, as_of=as_of, period_days=period_days)
    if wants_csv(request, fmt):
        return csv_response(report.to_frame(), FRAME_COLUMNS, f"benchmark-{partner}.csv")
    return report.to_dict()
