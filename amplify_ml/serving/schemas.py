"""Request and public response models of the API.

Requests forbid unknown fields. Responses list the fields a client may rely on and nothing
else (no run ids, file paths, salts or other internals); routes build them from library
frames with :func:`records`.
"""

from __future__ import annotations

import math
from datetime import date
from typing import Annotated, Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

MAX_DEVICE_IDS = 1000
"""Device ids in one batch risk request."""
MAX_SCORE_ROWS = 250
"""Feature rows in one online scoring request (about 3 KB a row: within the 1 MB body limit)."""
MAX_LEADS = 500
"""Rows a lead list holds (``limit`` picks the first)."""
MAX_FLEET = 1000
"""Devices a fleet list holds."""

Id = Annotated[str, StringConstraints(min_length=1, max_length=128)]
ModelName = Literal["propensity_to_buy", "refresh_due", "consumable_depletion", "device_failure"]


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Public(BaseModel):
    model_config = ConfigDict(extra="ignore")


# -- errors -------------------------------------------------------------------------------------
class FieldError(Public):
    field: str = Field(description="Where: query.limit, path.device_id, body.rows[0].x, ...")
    message: str


class ErrorBody(Public):
    """Every error answer: ``detail`` says what failed and what to do."""

    detail: str
    errors: list[FieldError] | None = Field(
        default=None, description="For 422 on request validation: one entry per bad field."
    )


# -- health -------------------------------------------------------------------------------------
class Health(Public):
    status: Literal["ok"]


class LoadError(Public):
    version: str
    message: str
    at: str = Field(description="When the last attempt failed.")
    attempts: int = Field(description="Failed loads of this version in a row.")
    retry_at: str | None = Field(
        description="When the poller tries this version again (it waits twice as long after "
        "each failure, up to an hour); POST /v1/models/refresh tries at once. None: the "
        "server does not poll."
    )


class ModelReadiness(Public):
    serving_version: str | None = Field(description="The registry version answering now.")
    loaded_at: str | None
    champion_version: str | None = Field(
        description="The version behind the alias champion at the last look at the registry."
    )
    load_error: LoadError | None = Field(
        description="The champion version that failed to load (the older one keeps serving)."
    )
    problem: str | None = Field(description="What is wrong and what to do (None: all well).")


class Ready(Public):
    ready: bool = Field(
        description="True when the lake is open and the champion of every model its tables can "
        "feed is loaded (a model whose tables no pack holds says so under models, and does not "
        "count)."
    )
    missing: list[str] = Field(description="What is missing, each with the command that fixes it.")
    lake: Literal["ok", "missing"]
    models: dict[str, ModelReadiness]
    scores: dict[str, str | None] = Field(
        description="Per model, the as-of date of the latest score table (None: never scored)."
    )


# -- leads --------------------------------------------------------------------------------------
class Lead(Public):
    rank: int
    partner_id: str
    account_id: str
    offer: Literal["propensity", "warranty", "refresh"]
    category: str
    device_id: str | None
    recommended_sku: str | None
    probability: float
    expected_value: float
    reasons: list[str] = Field(description="Up to three reasons in plain words.")
    vendor_age_rule: bool | None = Field(
        description="Refresh offers: the vendor's age rule (installed over 5 years ago) holds."
    )
    model_version: str | None
    as_of: date


class LeadList(Public):
    partner_id: str
    count: int
    leads: list[Lead]


# -- devices ------------------------------------------------------------------------------------
class DeviceRisk(Public):
    device_id: str
    partner_id: str
    account_id: str | None
    probability: float = Field(description="Probability of a repair ticket within the horizon.")
    likely_component: str | None = Field(
        default=None,
        description="The part likeliest to be repaired (a champion trained per component; "
        "None otherwise).",
    )
    component_probabilities: dict[str, float] | None = Field(
        default=None,
        description="Each part's own probability of a repair within the horizon, likeliest "
        "first (a champion trained per component; None otherwise).",
    )
    as_of: date
    model_version: str


class DeviceIdsRequest(Request):
    device_ids: list[Id] = Field(
        min_length=1,
        max_length=MAX_DEVICE_IDS,
        description=f"1 to {MAX_DEVICE_IDS} device ids.",
    )


class DeviceRiskBatch(Public):
    risks: list[DeviceRisk]
    not_found: list[str] = Field(
        description="Ids asked for that are not among the scored devices visible to the key."
    )


class SupplyColor(Public):
    color: str
    p10_days: float
    p50_days: float
    p90_days: float
    threshold_p50_date: date
    ship_by: date
    days_to_ship: int
    status: Literal["ship now", "soon", "ok"]
    beyond_window: bool = Field(
        description="P90 beyond the model's window: dates are lower bounds."
    )


class DeviceSupplies(Public):
    device_id: str
    partner_id: str
    account_id: str | None
    as_of: date
    model_version: str | None
    alpha: float
    lead_time_days: int
    colors: list[SupplyColor]


class SupplyRow(SupplyColor):
    partner_id: str
    account_id: str | None
    device_id: str
    as_of: date
    model_version: str | None


class SupplyPlan(Public):
    partner_id: str | None
    counts: dict[str, int]
    count: int
    rows: list[SupplyRow]


# -- fleet --------------------------------------------------------------------------------------
class FleetDevice(Public):
    rank: int
    partner_id: str
    account_id: str | None
    device_id: str
    family: str | None
    contract: str | None
    probability: float
    likely_component: str | None = Field(
        description="The part likeliest to fail: the champion's own when it is trained per "
        "component, else from the pooled repair history and the device's recent warnings."
    )
    component_share: float | None = Field(
        description="The likely part's share of the device's risk (of its parts' summed "
        "probabilities, or its naive-Bayes posterior)."
    )
    component_probability: float | None = Field(
        default=None,
        description="The likely part's own probability of a repair within the horizon "
        "(a champion trained per component; None otherwise).",
    )
    component_probabilities: dict[str, float] | None = Field(
        default=None,
        description="Each part's own probability of a repair within the horizon, likeliest "
        "first (a champion trained per component; None otherwise). The device's probability "
        "is 1 - prod(1 - p) over them.",
    )
    reasons: list[str]
    model_version: str | None
    as_of: date


class FleetList(Public):
    partner_id: str | None = Field(description="None: every partner (the operations role).")
    count: int
    devices: list[FleetDevice]


# -- benchmarks ---------------------------------------------------------------------------------
class PeriodOut(Public):
    first: date
    last: date
    days: int


class PeerGroup(Public):
    by: list[str]
    values: dict[str, Any]
    size: int
    k_anonymity: int
    reason: str | None


class MeasureOut(Public):
    name: str
    label: str
    unit: str
    definition: str
    needs: list[str]
    available: bool
    reason: str | None
    value: float | None
    previous: float | None
    previous_reason: str | None = Field(
        default=None, description="Why the previous period's value is unavailable."
    )
    growth: float | None
    peers_with_measure: int
    peer_p25: float | None
    peer_median: float | None
    peer_p75: float | None
    percentile: float | None
    peer_reason: str | None
    market: float | None
    market_reason: str | None
    note: str | None


class Benchmark(Public):
    partner_id: str
    as_of: date
    period: PeriodOut
    previous_period: PeriodOut
    peer_group: PeerGroup
    coverage: PeriodOut | None = Field(
        default=None,
        description="The days the partner's data covers (its packs' periods and its sales). "
        "A total over the period is unavailable unless they span the period; a comparison with "
        "the period before, unless they span both.",
    )
    measures: list[MeasureOut]


# -- models -------------------------------------------------------------------------------------
class ModelVersionOut(Public):
    version: str
    aliases: list[str]
    status: str
    gate: str | None = Field(description="The promotion gate's verdict: passed or refused.")
    created_at: str | None
    metrics: dict[str, float] = Field(description="Overall evaluation metrics of the version.")


class FeatureOut(Public):
    name: str
    type: Literal["number", "integer", "boolean", "category"]
    required: bool
    categories: list[str] | None = None


class ModelOut(Public):
    model: ModelName
    registered_name: str
    serving_version: str | None
    loaded_at: str | None
    champion_version: str | None
    load_error: LoadError | None
    problem: str | None
    versions: list[ModelVersionOut]


class ModelDetail(ModelOut):
    task: str | None = Field(description="binary or days_quantile (of the version serving).")
    outputs: list[str]
    features: list[FeatureOut] = Field(description="What online scoring takes, in order.")
    combine_by: list[str] | None = Field(
        default=None,
        description=(
            "Set when one row of online scoring is a part of a unit with these keys "
            "(device_failure feature set v3: a row per device and component): online scoring "
            "answers per row, and the unit's probability is 1 - prod(1 - p) over its rows, as "
            "GET /v1/devices/{device_id}/risk gives it. Null: a row is a unit."
        ),
    )


class ModelList(Public):
    models: list[ModelOut]


class RefreshResult(Public):
    results: dict[str, str] = Field(
        description="Per model: unchanged, loaded, failed, no champion or registry error."
    )
    models: dict[str, ModelReadiness]


# -- online scoring -----------------------------------------------------------------------------
class ScoreRequest(Request):
    rows: list[dict[str, Any]] = Field(
        min_length=1,
        max_length=MAX_SCORE_ROWS,
        description=(
            f"1 to {MAX_SCORE_ROWS} rows, each an object of feature name to value (numbers, "
            "true/false, strings for categories, null for missing). GET /v1/models/{model} "
            "lists the features; required ones must be present. The answer is one prediction "
            "per row: where the model's rows are parts of a unit (its combine_by, as "
            "device_failure's components), a part's."
        ),
    )


class BinaryPrediction(Public):
    probability: float


class QuantilePrediction(Public):
    p10_days: float
    p50_days: float
    p90_days: float
    beyond_window: bool


class ScoreResponse(Public):
    model: ModelName
    version: str
    predictions: list[BinaryPrediction] | list[QuantilePrediction]


# -- helpers ------------------------------------------------------------------------------------
def clean(value: Any) -> Any:
    """A JSON-able scalar: NaN/NaT/None -> None, numpy scalars -> Python, dates -> ISO."""
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalar
        return clean(value.item())
    return value


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows of ``frame`` as dicts of clean scalars, with ``reason_1..3`` folded into
    ``reasons`` (empty ones left out)."""
    cols = list(frame.columns)
    reason_cols = [c for c in ("reason_1", "reason_2", "reason_3") if c in cols]
    out = []
    for values in frame.itertuples(index=False, name=None):
        row = {c: clean(v) for c, v in zip(cols, values, strict=True)}
        if reason_cols:
            row["reasons"] = [r for r in (row.pop(c) for c in reason_cols) if r]
        out.append(row)
    return out
