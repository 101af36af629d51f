"""A partner's programme measures next to its peer group and the market."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from amplify_ml.errors import InvalidRequestError
from amplify_ml.scoring.benchmarks import FRAME_COLUMNS
from amplify_ml.serving.deps import Format, PartnerDep, ServiceDep, wants_csv
from amplify_ml.serving.routes.common import AUTH, CSV, csv_response, errors
from amplify_ml.serving.schemas import Benchmark

router = APIRouter(prefix="/v1", tags=["benchmarks"])
FIRST_DAY, LAST_DAY = date(1990, 1, 1), date(2999, 12, 31)


@router.get("/benchmarks", response_model=Benchmark, responses={**CSV, **errors(*AUTH, 404)})
def partner_benchmark(
    request: Request,
    service: ServiceDep,
    partner: PartnerDep,
    fmt: Format = None,
    as_of: Annotated[
        date | None,
        Query(
            description="Last day of the period, 1990-01-01 to 2999-12-31 (default: end of data)."
        ),
    ] = None,
    period_days: Annotated[int, Query(ge=1, le=3660, description="Days in the period.")] = 365,
) -> Any:
    """The partner's measures against k-anonymous peer aggregates and the market."""
    if as_of is not None and not FIRST_DAY <= as_of <= LAST_DAY:
        raise InvalidRequestError(
            f"query.as_of: expected a date from {FIRST_DAY} to {LAST_DAY}, got {as_of}"
        )
    report = service.benchmark(partner, as_of=as_of, period_days=period_days)
    if wants_csv(request, fmt):
        return csv_response(report.to_frame(), FRAME_COLUMNS, f"benchmark-{partner}.csv")
    return report.to_dict()
