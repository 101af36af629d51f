"""Lead lists of a partner: who to call, what to offer, why."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request

from amplify_ml.errors import NotFoundError
from amplify_ml.scoring.leads import COLUMNS
from amplify_ml.serving.deps import ACCOUNT_NOT_FOUND, Format, PartnerDep, ServiceDep, wants_csv
from amplify_ml.serving.routes.common import AUTH, CSV, csv_response, errors
from amplify_ml.serving.schemas import MAX_LEADS, LeadList, records

router = APIRouter(prefix="/v1", tags=["leads"])

Limit = Annotated[int, Query(ge=1, le=MAX_LEADS, description="Rows to return, best first.")]
Category = Annotated[
    str | None, Query(min_length=1, max_length=64, description="Only this product category.")
]
Offer = Annotated[
    Literal["propensity", "warranty", "refresh"] | None, Query(description="Only this offer.")
]


def _answer(request: Request, df: Any, partner: str, fmt: str | None, filename: str) -> Any:
    if wants_csv(request, fmt):
        return csv_response(df, COLUMNS, filename)
    return {"partner_id": partner, "count": len(df), "leads": records(df)}


@router.get("/leads", response_model=LeadList, responses={**CSV, **errors(*AUTH, 404)})
def lead_list(
    request: Request,
    service: ServiceDep,
    partner: PartnerDep,
    fmt: Format = None,
    category: Category = None,
    offer: Offer = None,
    limit: Limit = 50,
) -> Any:
    """The partner's ranked lead list (JSON or CSV), optionally one category or offer."""
    df = service.leads(partner)
    if category is not None:
        df = df[df["category"] == category]
    if offer is not None:
        df = df[df["offer"] == offer]
    return _answer(request, df.head(limit), partner, fmt, f"leads-{partner}.csv")


@router.get(
    "/accounts/{account_id}/leads",
    response_model=LeadList,
    responses={**CSV, **errors(*AUTH, 404)},
)
def account_leads(
    request: Request,
    service: ServiceDep,
    partner: PartnerDep,
    account_id: Annotated[str, Path(min_length=1, max_length=128)],
    fmt: Format = None,
) -> Any:
    """The offers of one of the partner's accounts (404 if the account is not the partner's)."""
    if account_id not in service.lake.accounts(partner):
        raise NotFoundError(ACCOUNT_NOT_FOUND)
    df = service.leads(partner)
    df = df[df["account_id"] == account_id]
    return _answer(request, df, partner, fmt, f"leads-{account_id}.csv")
