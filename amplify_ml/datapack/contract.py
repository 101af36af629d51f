"""The data-pack contract v1 (DATAPACK.md) as code.

One :class:`TableSchema` per table: columns with types, enums and nullability, the key,
value rules (single column and cross column), references to other tables, and which
columns are free text (scanned for personal data). Validation (``validate.py``) compiles
these into DuckDB SQL; nothing here reads data.

Types are the contract's: ``str``, ``int``, ``float``, ``bool``, ``date``, ``timestamp``
and ``enum``. In the lake they become Arrow types (:data:`ARROW_TYPES`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import pyarrow as pa

CONTRACT_VERSION = "amplify-datapack/1"

ColumnType = Literal["str", "int", "float", "bool", "date", "timestamp", "enum"]
Owner = Literal["partner", "vendor"]

ARROW_TYPES: Mapping[str, pa.DataType] = {
    "str": pa.string(),
    "enum": pa.string(),
    "int": pa.int64(),
    "float": pa.float64(),
    "bool": pa.bool_(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us", tz="UTC"),
}

DUCKDB_TYPES: Mapping[str, str] = {
    "str": "VARCHAR",
    "enum": "VARCHAR",
    "int": "BIGINT",
    "float": "DOUBLE",
    "bool": "BOOLEAN",
    "date": "DATE",
    "timestamp": "TIMESTAMPTZ",
}

SUPPLY_COLORS = ("black", "cyan", "magenta", "yellow")
PRODUCT_CATEGORIES = ("printer", "pc", "supplies", "warranty", "service", "accessory")
DEVICE_CATEGORIES = ("printer", "pc")
EMPLOYEE_BANDS = ("1-9", "10-49", "50-249", "250-999", "1000+")
TRACKS = ("synergy", "power", "power_services")
CONTRACTS = ("none", "care_pack", "mps", "daas")
CHANNELS = ("field", "online", "marketplace")
SEVERITIES = ("info", "warning", "error")
TICKET_KINDS = (
    "incident",
    "repair",
    "part_replacement",
    "preventive",
    "supplies_delivery",
    "install",
    "deinstall",
)
STAGES = ("open", "won", "lost")


@dataclass(frozen=True)
class Column:
    """One contract column.

    ``min``/``max`` bound numeric values (inclusive), ``nonzero`` forbids 0, ``pattern`` is a
    regular expression a string must match in full, ``free_text`` marks columns scanned for
    phone numbers, ``identifier`` marks partner pseudonyms that must not look like e-mail
    addresses, and ``not_future`` marks event dates that cannot lie after the pack was made.
    """

    name: str
    type: ColumnType
    nullable: bool = False
    enum: tuple[str, ...] | None = None
    min: float | None = None
    max: float | None = None
    nonzero: bool = False
    pattern: str | None = None
    pattern_hint: str | None = None
    free_text: bool = False
    identifier: bool = False
    not_future: bool = False
    description: str = ""

    @property
    def arrow_type(self) -> pa.DataType:
        return ARROW_TYPES[self.type]

    @property
    def duckdb_type(self) -> str:
        return DUCKDB_TYPES[self.type]


@dataclass(frozen=True)
class RowRule:
    """A cross-column rule: ``violation_sql`` is a DuckDB predicate over typed columns that is
    true for a row that breaks the rule. ``columns`` are the columns it reports against."""

    name: str
    columns: tuple[str, ...]
    violation_sql: str
    message: str


@dataclass(frozen=True)
class Reference:
    """Values of ``columns`` must exist as ``target_columns`` in ``target`` (when that table is
    available). ``target_filter_sql`` restricts the target rows (e.g. device categories)."""

    columns: tuple[str, ...]
    target: str
    target_columns: tuple[str, ...]
    rule: str
    message: str
    target_filter_sql: str | None = None


@dataclass(frozen=True)
class TableSchema:
    """One contract table."""

    name: str
    owner: Owner
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    required: bool = False
    rules: tuple[RowRule, ...] = ()
    references: tuple[Reference, ...] = ()
    description: str = ""
    time_column: str | None = None
    """The column that dates a row (what point-in-time rules filter on)."""
    value_column: str | None = None
    """For long tables keyed without a pk (telemetry): the measured column. Two rows with the
    same key and value are a duplicate; with another value, a conflict."""

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(f"table {self.name!r} has no contract column {name!r}")

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(col.name for col in self.columns)

    @property
    def has_partner_id(self) -> bool:
        return "partner_id" in self.column_names

    @property
    def arrow_schema(self) -> pa.Schema:
        return pa.schema(
            [pa.field(col.name, col.arrow_type, nullable=col.nullable) for col in self.columns]
        )


_COUNTRY = dict(pattern=r"[A-Z]{2}", pattern_hint="an ISO 3166-1 alpha-2 code such as DE")
_CURRENCY = dict(pattern=r"[A-Z]{3}", pattern_hint="an ISO 4217 code such as EUR")


def _partner_id(**kw: object) -> Column:
    return Column("partner_id", "str", identifier=True, description="partner identifier", **kw)  # type: ignore[arg-type]


def _account_ref() -> Reference:
    return Reference(
        ("partner_id", "account_id"),
        "accounts",
        ("partner_id", "account_id"),
        rule="unknown_account",
        message="account_id is not in the accounts table of this partner",
    )


def _sku_ref(filter_sql: str | None = None, what: str = "products") -> Reference:
    return Reference(
        ("sku",),
        "products",
        ("sku",),
        rule="unknown_sku",
        message=f"sku is not in the {what} table",
        target_filter_sql=filter_sql,
    )


def _device_ref(scoped: bool) -> Reference:
    cols = ("partner_id", "device_id") if scoped else ("device_id",)
    return Reference(
        cols,
        "install_base",
        cols,
        rule="unknown_device",
        message="device_id is not in the install_base table of this partner",
    )


TABLES: Mapping[str, TableSchema] = {
    t.name: t
    for t in (
        TableSchema(
            "partners",
            time_column="joined_on",
            owner="vendor",
            required=True,
            description="Partners of the program, with their consent to share data.",
            columns=(
                _partner_id(),
                Column("name", "str", free_text=True, description="partner company name"),
                Column("track", "enum", enum=TRACKS, description="program track"),
                Column("data_sharing", "bool", description="opted in to share its data pack"),
                Column("country", "str", **_COUNTRY),  # type: ignore[arg-type]
                Column("joined_on", "date", not_future=True, description="joined the program"),
            ),
            key=("partner_id",),
        ),
        TableSchema(
            "products",
            time_column="launched_on",
            owner="vendor",
            required=True,
            description="The vendor's catalogue.",
            columns=(
                Column("sku", "str", description="product number"),
                Column("category", "enum", enum=PRODUCT_CATEGORIES),
                Column("family", "str", free_text=True, description="device family"),
                Column("list_price", "float", min=0.0, description="list price"),
                Column("currency", "str", **_CURRENCY),  # type: ignore[arg-type]
                Column("launched_on", "date"),
                Column("page_yield", "int", nullable=True, min=1, description="rated pages"),
                Column("color", "enum", nullable=True, enum=SUPPLY_COLORS),
                Column("extends_warranty_months", "int", nullable=True, min=1),
            ),
            key=("sku",),
            rules=(
                RowRule(
                    "supplies_only",
                    ("page_yield", "color"),
                    "category <> 'supplies' AND (page_yield IS NOT NULL OR color IS NOT NULL)",
                    "page_yield and color are for supplies only; leave them empty for "
                    "other categories",
                ),
                RowRule(
                    "warranty_only",
                    ("extends_warranty_months",),
                    "category <> 'warranty' AND extends_warranty_months IS NOT NULL",
                    "extends_warranty_months is for warranty products only",
                ),
            ),
        ),
        TableSchema(
            "accounts",
            time_column="first_seen",
            owner="partner",
            required=True,
            description="The partner's customer companies, under the partner's pseudonyms.",
            columns=(
                Column("account_id", "str", identifier=True),
                _partner_id(),
                Column("industry", "str", free_text=True, description="sector label"),
                Column("employee_band", "enum", enum=EMPLOYEE_BANDS),
                Column("country", "str", **_COUNTRY),  # type: ignore[arg-type]
                Column("first_seen", "date", not_future=True),
            ),
            key=("partner_id", "account_id"),
        ),
        TableSchema(
            "sell_through",
            time_column="sold_on",
            owner="partner",
            required=True,
            description="Invoice lines: what the partner sold to whom.",
            columns=(
                Column("line_id", "str", identifier=True),
                _partner_id(),
                Column("account_id", "str", identifier=True),
                Column("sku", "str"),
                Column("sold_on", "date", not_future=True),
                Column("quantity", "int", nonzero=True, description="negative is a return"),
                Column("net_amount", "float", description="sign follows quantity"),
                Column("currency", "str", **_CURRENCY),  # type: ignore[arg-type]
                Column("channel", "enum", enum=CHANNELS),
            ),
            key=("partner_id", "line_id"),
            rules=(
                RowRule(
                    "sign_follows_quantity",
                    ("net_amount",),
                    "net_amount * quantity < 0",
                    "net_amount must have the sign of quantity (a return has both negative)",
                ),
            ),
            references=(_account_ref(), _sku_ref()),
        ),
        TableSchema(
            "install_base",
            time_column="installed_on",
            owner="partner",
            description="Devices installed at the partner's accounts.",
            columns=(
                Column("device_id", "str", identifier=True),
                _partner_id(),
                Column("account_id", "str", identifier=True),
                Column("sku", "str", description="a printer or pc sku"),
                Column("installed_on", "date", not_future=True),
                Column("warranty_ends_on", "date", nullable=True),
                Column("contract", "enum", enum=CONTRACTS),
                Column("retired_on", "date", nullable=True, not_future=True),
                Column("replaced_by", "str", nullable=True, identifier=True),
            ),
            key=("partner_id", "device_id"),
            rules=(
                RowRule(
                    "retired_before_installed",
                    ("retired_on",),
                    "retired_on < installed_on",
                    "retired_on is before installed_on",
                ),
                RowRule(
                    "warranty_before_installed",
                    ("warranty_ends_on",),
                    "warranty_ends_on < installed_on",
                    "warranty_ends_on is before installed_on",
                ),
                RowRule(
                    "replaced_by_itself",
                    ("replaced_by",),
                    "replaced_by = device_id",
                    "replaced_by names the device itself",
                ),
            ),
            references=(
                _account_ref(),
                _sku_ref("category IN ('printer', 'pc')", what="printer or pc products"),
            ),
        ),
        TableSchema(
            "telemetry",
            time_column="observed_at",
            owner="partner",
            description="Device readings, one a row (long format).",
            columns=(
                Column("device_id", "str", identifier=True),
                Column("observed_at", "timestamp", not_future=True),
                Column(
                    "metric",
                    "str",
                    pattern=r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)?",
                    pattern_hint="a metric name such as page_count or supply_level_pct.black",
                ),
                Column("value", "float"),
            ),
            key=("device_id", "observed_at", "metric"),
            value_column="value",
            rules=(
                RowRule(
                    "negative_page_count",
                    ("value",),
                    "metric = 'page_count' AND value < 0",
                    "page_count is a cumulative counter and cannot be negative",
                ),
                RowRule(
                    "percent_out_of_range",
                    ("value",),
                    "metric LIKE '%\\_pct%' ESCAPE '\\' AND (value < 0 OR value > 100)",
                    "a *_pct metric must lie between 0 and 100",
                ),
                RowRule(
                    "unknown_supply_color",
                    ("metric",),
                    "metric LIKE 'supply\\_level\\_pct%' ESCAPE '\\' AND metric NOT IN ("
                    + ", ".join(f"'supply_level_pct.{c}'" for c in SUPPLY_COLORS)
                    + ")",
                    "supply levels are supply_level_pct.<color> with color one of "
                    + ", ".join(SUPPLY_COLORS),
                ),
            ),
            references=(_device_ref(scoped=False),),
        ),
        TableSchema(
            "device_events",
            time_column="occurred_at",
            owner="partner",
            description="Device error and event codes.",
            columns=(
                Column("device_id", "str", identifier=True),
                Column("occurred_at", "timestamp", not_future=True),
                Column("code", "str", description="device error or event code"),
                Column("severity", "enum", enum=SEVERITIES),
            ),
            key=("device_id", "occurred_at", "code"),
            references=(_device_ref(scoped=False),),
        ),
        TableSchema(
            "service_events",
            time_column="opened_at",
            owner="partner",
            description="Service tickets.",
            columns=(
                Column("ticket_id", "str", identifier=True),
                _partner_id(),
                Column("account_id", "str", identifier=True),
                Column("device_id", "str", nullable=True, identifier=True),
                Column("opened_at", "timestamp", not_future=True),
                Column("closed_at", "timestamp", nullable=True, not_future=True),
                Column("kind", "enum", enum=TICKET_KINDS),
                Column("component", "str", nullable=True, free_text=True),
                Column("sla_met", "bool", nullable=True),
            ),
            key=("partner_id", "ticket_id"),
            rules=(
                RowRule(
                    "closed_before_opened",
                    ("closed_at",),
                    "closed_at < opened_at",
                    "closed_at is before opened_at",
                ),
            ),
            references=(_account_ref(), _device_ref(scoped=True)),
        ),
        TableSchema(
            "opportunities",
            time_column="created_on",
            owner="partner",
            description="The partner's sales opportunities.",
            columns=(
                Column("opportunity_id", "str", identifier=True),
                _partner_id(),
                Column("account_id", "str", identifier=True),
                Column("created_on", "date", not_future=True),
                Column("stage", "enum", enum=STAGES),
                Column("closed_on", "date", nullable=True, not_future=True),
                Column("amount", "float", min=0.0),
                Column("deal_registered", "bool"),
                Column("presales_support", "bool"),
            ),
            key=("partner_id", "opportunity_id"),
            rules=(
                RowRule(
                    "closed_before_created",
                    ("closed_on",),
                    "closed_on < created_on",
                    "closed_on is before created_on",
                ),
                RowRule(
                    "closed_without_date",
                    ("closed_on",),
                    "stage IN ('won', 'lost') AND closed_on IS NULL",
                    "a won or lost opportunity needs closed_on",
                ),
                RowRule(
                    "open_with_close_date",
                    ("closed_on",),
                    "stage = 'open' AND closed_on IS NOT NULL",
                    "an open opportunity cannot have closed_on; set stage to won or lost",
                ),
            ),
            references=(_account_ref(),),
        ),
        TableSchema(
            "inventory",
            time_column="as_of",
            owner="partner",
            description="The partner's stock on hand.",
            columns=(
                _partner_id(),
                Column("sku", "str"),
                Column("as_of", "date", not_future=True),
                Column("units_on_hand", "int", min=0),
            ),
            key=("partner_id", "sku", "as_of"),
            references=(_sku_ref(),),
        ),
        TableSchema(
            "intent_signals",
            time_column="week_of",
            owner="vendor",
            description="Online research the vendor saw of a company, weekly, company level.",
            columns=(
                _partner_id(),
                Column("account_id", "str", identifier=True),
                Column("week_of", "date", not_future=True, description="Monday of the week"),
                Column("topic", "str", free_text=True),
                Column("intensity", "int", min=0),
            ),
            key=("partner_id", "account_id", "week_of", "topic"),
            rules=(
                RowRule(
                    "week_not_monday",
                    ("week_of",),
                    "isodow(week_of) <> 1",
                    "week_of must be the Monday of the week",
                ),
            ),
            references=(_account_ref(),),
        ),
        TableSchema(
            "market",
            time_column="month",
            owner="vendor",
            description="Market units and revenue per country, category and month.",
            columns=(
                Column("country", "str", **_COUNTRY),  # type: ignore[arg-type]
                Column("category", "str"),
                Column("month", "date", not_future=True, description="first day of the month"),
                Column("units", "int", min=0),
                Column("revenue", "float", min=0.0),
            ),
            key=("country", "category", "month"),
            rules=(
                RowRule(
                    "month_not_first_day",
                    ("month",),
                    "day(month) <> 1",
                    "month must be the first day of the month",
                ),
            ),
        ),
    )
}

REQUIRED_TABLES: tuple[str, ...] = tuple(n for n, t in TABLES.items() if t.required)
VENDOR_TABLES: tuple[str, ...] = tuple(n for n, t in TABLES.items() if t.owner == "vendor")
PARTNER_TABLES: tuple[str, ...] = tuple(n for n, t in TABLES.items() if t.owner == "partner")

# Extra columns whose names say they hold personal data are refused (privacy rule 1).
PERSONAL_COLUMN_PATTERN = (
    r"(^|_)(e_?mail|phone|telephone|tel|mobile|fax|first_?name|last_?name|surname|"
    r"full_?name|contact(_?name)?|person|street|address|zip|post_?code|postal_?code|birth)(_|$)"
)


def table_schema(name: str) -> TableSchema:
    """The schema of contract table ``name``, or a clear error naming the known tables."""
    try:
        return TABLES[name]
    except KeyError:
        from amplify_ml.errors import DataPackError

        raise DataPackError(
            f"unknown table {name!r}: the contract v1 tables are {', '.join(TABLES)}"
        ) from None


def describe_contract() -> list[dict[str, object]]:
    """Every contract column as a dict (table, column, type, nullable, key, rules)."""
    out: list[dict[str, object]] = []
    for table in TABLES.values():
        for col in table.columns:
            out.append(
                {
                    "table": table.name,
                    "owner": table.owner,
                    "column": col.name,
                    "type": col.type,
                    "nullable": col.nullable,
                    "key": col.name in table.key,
                    "enum": ",".join(col.enum) if col.enum else None,
                    "description": col.description,
                }
            )
    return out
