"""Small, valid data packs built by hand, for unit tests.

``valid_tables()`` returns every contract table with a few rows that pass every rule, in
contract types. Tests change one value to break one rule and check the message.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd

from amplify_ml.datapack import write_pack

CREATED_AT = datetime(2025, 1, 1, 6, 0, 0, tzinfo=UTC)
PERIOD = (date(2024, 1, 1), date(2024, 12, 31))


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def vendor_tables() -> dict[str, pd.DataFrame]:
    """partners, products, intent_signals, market: valid rows."""
    partners = pd.DataFrame(
        {
            "partner_id": ["P001", "P002", "P003"],
            "name": ["Acme Office GmbH", "Beta Systems SARL", "Gamma IT Ltd"],
            "track": ["power", "synergy", "power_services"],
            "data_sharing": [True, True, False],
            "country": ["DE", "FR", "GB"],
            "joined_on": [date(2019, 3, 1), date(2020, 6, 15), date(2021, 1, 4)],
        }
    )
    products = pd.DataFrame(
        {
            "sku": ["PR-4001", "PC-840", "TN-4001-K", "WR-4001-24", "SV-ONSITE", "AC-DOCK"],
            "category": ["printer", "pc", "supplies", "warranty", "service", "accessory"],
            "family": [
                "LaserJet Pro 4001",
                "EliteBook 840",
                "LaserJet Pro 4001",
                "LaserJet Pro 4001",
                "Onsite Service",
                "USB-C Dock",
            ],
            "list_price": [399.0, 1299.0, 89.5, 120.0, 250.0, 179.0],
            "currency": ["EUR"] * 6,
            "launched_on": [date(2022, 1, 10)] * 6,
            "page_yield": [None, None, 3000, None, None, None],
            "color": [None, None, "black", None, None, None],
            "extends_warranty_months": [None, None, None, 24, None, None],
        }
    )
    products["page_yield"] = products["page_yield"].astype("Int64")
    products["extends_warranty_months"] = products["extends_warranty_months"].astype("Int64")
    intent = pd.DataFrame(
        {
            "partner_id": ["P001", "P001"],
            "account_id": ["A-1", "A-2"],
            "week_of": [date(2024, 6, 3), date(2024, 6, 10)],
            "topic": ["printer", "security"],
            "intensity": [5, 0],
        }
    )
    market = pd.DataFrame(
        {
            "country": ["DE", "DE"],
            "category": ["printer", "pc"],
            "month": [date(2024, 6, 1), date(2024, 6, 1)],
            "units": [12000, 50000],
            "revenue": [4.2e6, 5.1e7],
        }
    )
    return {"partners": partners, "products": products, "intent_signals": intent, "market": market}


def partner_tables(partner_id: str = "P001") -> dict[str, pd.DataFrame]:
    """accounts, sell_through, install_base, telemetry, device_events, service_events,
    opportunities, inventory: valid rows of one partner."""
    p = partner_id
    accounts = pd.DataFrame(
        {
            "account_id": ["A-1", "A-2"],
            "partner_id": [p, p],
            "industry": ["Manufacturing", "Retail"],
            "employee_band": ["50-249", "10-49"],
            "country": ["DE", "DE"],
            "first_seen": [date(2021, 5, 1), date(2022, 2, 1)],
        }
    )
    sell_through = pd.DataFrame(
        {
            "line_id": ["L-1", "L-2", "L-3"],
            "partner_id": [p] * 3,
            "account_id": ["A-1", "A-1", "A-2"],
            "sku": ["PR-4001", "TN-4001-K", "TN-4001-K"],
            "sold_on": [date(2024, 2, 1), date(2024, 5, 2), date(2024, 5, 3)],
            "quantity": [1, 2, -1],
            "net_amount": [350.0, 160.0, -80.0],
            "currency": ["EUR"] * 3,
            "channel": ["field", "online", "online"],
        }
    )
    install_base = pd.DataFrame(
        {
            "device_id": ["D-1", "D-2"],
            "partner_id": [p, p],
            "account_id": ["A-1", "A-1"],
            "sku": ["PR-4001", "PC-840"],
            "installed_on": [date(2024, 2, 5), date(2019, 1, 10)],
            "warranty_ends_on": [date(2026, 2, 5), None],
            "contract": ["mps", "daas"],
            "retired_on": [None, date(2024, 9, 30)],
            "replaced_by": [None, None],
        }
    )
    telemetry = pd.DataFrame(
        {
            "device_id": ["D-1", "D-1", "D-1", "D-2"],
            "observed_at": [
                ts("2024-03-01T08:00:00Z"),
                ts("2024-03-01T08:00:00Z"),
                ts("2024-03-08T08:00:00Z"),
                ts("2024-03-01T09:30:00Z"),
            ],
            "metric": ["page_count", "supply_level_pct.black", "page_count", "battery_health_pct"],
            "value": [1200.0, 80.0, 1650.0, 92.5],
        }
    )
    device_events = pd.DataFrame(
        {
            "device_id": ["D-1"],
            "occurred_at": [ts("2024-03-02T10:00:00Z")],
            "code": ["13.A2.D3"],
            "severity": ["warning"],
        }
    )
    service_events = pd.DataFrame(
        {
            "ticket_id": ["T-1", "T-2"],
            "partner_id": [p, p],
            "account_id": ["A-1", "A-1"],
            "device_id": ["D-1", None],
            "opened_at": [ts("2024-04-01T09:00:00Z"), ts("2024-04-02T09:00:00Z")],
            "closed_at": [ts("2024-04-02T12:00:00Z"), None],
            "kind": ["repair", "incident"],
            "component": ["fuser", None],
            "sla_met": [True, None],
        }
    )
    opportunities = pd.DataFrame(
        {
            "opportunity_id": ["O-1", "O-2"],
            "partner_id": [p, p],
            "account_id": ["A-1", "A-2"],
            "created_on": [date(2024, 1, 10), date(2024, 3, 1)],
            "stage": ["won", "open"],
            "closed_on": [date(2024, 2, 1), None],
            "amount": [5000.0, 1200.0],
            "deal_registered": [True, False],
            "presales_support": [False, True],
        }
    )
    inventory = pd.DataFrame(
        {
            "partner_id": [p, p],
            "sku": ["PR-4001", "TN-4001-K"],
            "as_of": [date(2024, 6, 30), date(2024, 6, 30)],
            "units_on_hand": [4, 0],
        }
    )
    return {
        "accounts": accounts,
        "sell_through": sell_through,
        "install_base": install_base,
        "telemetry": telemetry,
        "device_events": device_events,
        "service_events": service_events,
        "opportunities": opportunities,
        "inventory": inventory,
    }


def valid_tables(partner_id: str = "P001") -> dict[str, pd.DataFrame]:
    """Every contract table, valid, as one partner's view (vendor tables included)."""
    return {**vendor_tables(), **partner_tables(partner_id)}


def write_vendor_pack(path: Path, tables: dict[str, pd.DataFrame] | None = None, **kw) -> Path:
    write_pack(
        path, tables or vendor_tables(), source="vendor", period=PERIOD, created_at=CREATED_AT, **kw
    )
    return path


def write_partner_pack(
    path: Path,
    tables: dict[str, pd.DataFrame] | None = None,
    partner_id: str = "P001",
    period: tuple[date, date] = PERIOD,
    **kw,
) -> Path:
    write_pack(
        path,
        tables if tables is not None else partner_tables(partner_id),
        source=partner_id,
        period=period,
        created_at=CREATED_AT,
        **kw,
    )
    return path


def as_strings(df: pd.DataFrame) -> pd.DataFrame:
    """A table as a CSV export would hold it: every value a string, empty for null."""
    out = {}
    for name in df.columns:
        col = df[name]
        values = []
        for v in col.tolist():
            if v is None or (not isinstance(v, str) and pd.isna(v)):
                values.append("")
            elif isinstance(v, bool):
                values.append("true" if v else "false")
            elif isinstance(v, pd.Timestamp):
                values.append(v.strftime("%Y-%m-%dT%H:%M:%SZ"))
            elif isinstance(v, date):
                values.append(v.isoformat())
            elif isinstance(v, float):
                values.append(repr(v))
            else:
                values.append(str(v))
        out[name] = pd.Series(values, dtype=object)
    return pd.DataFrame(out)


def write_string_pack(
    path: Path, tables: dict[str, pd.DataFrame], source: str, created_at: datetime = CREATED_AT
) -> Path:
    """Write tables of strings as a CSV pack, exactly as given (no casting)."""
    write_pack(
        path,
        {name: as_strings(df) for name, df in tables.items()},
        source=source,
        period=PERIOD,
        created_at=created_at,
        format="csv",
        cast=False,
    )
    return path
