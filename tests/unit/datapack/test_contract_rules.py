"""Every contract rule: valid rows pass, one bad row breaks exactly that rule, with a pinned
message. Packs are written as CSV of strings, as a partner's export would be."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from amplify_ml.datapack import TABLES
from amplify_ml.datapack.validate import ValidationReport, validate_pack
from tests.factories import partner_tables, vendor_tables, write_string_pack

VENDOR = set(vendor_tables())


def _validate(tmp_path: Path, table: str, row: int, edits: dict[str, object]) -> ValidationReport:
    vendor, partner = vendor_tables(), partner_tables()
    target = vendor if table in VENDOR else partner
    df = target[table].astype(object)
    for column, value in edits.items():
        df.loc[row, column] = value
    target[table] = df
    vpath = write_string_pack(tmp_path / "vendor", vendor, "vendor")
    if table in VENDOR:
        return validate_pack(vpath)
    ppath = write_string_pack(tmp_path / "P001", partner, "P001")
    return validate_pack(ppath, reference=vpath)


def test_valid_packs_pass(tmp_path: Path) -> None:
    vpath = write_string_pack(tmp_path / "vendor", vendor_tables(), "vendor")
    ppath = write_string_pack(tmp_path / "P001", partner_tables(), "P001")
    vreport = validate_pack(vpath)
    preport = validate_pack(ppath, reference=vpath)
    assert vreport.ok and preport.ok, (vreport.summary(), preport.summary())
    assert preport.warnings == []
    assert {t: r.rows_valid for t, r in preport.tables.items()} == {
        t: len(df) for t, df in partner_tables().items()
    }
    # the vendor pack cannot check intent_signals' accounts: a warning, not a silence
    assert [v.rule for v in vreport.warnings] == ["reference_not_checked"]


# (table, row index, edits, column, rule, message pattern)
CASES = [
    (
        "partners",
        0,
        {"track": "gold"},
        "track",
        "enum",
        r"^partners\.track: 1 row \(row 1\) not one of synergy, power, power_services: got 'gold'$",
    ),
    (
        "partners",
        0,
        {"data_sharing": "maybe"},
        "data_sharing",
        "type",
        r"^partners\.data_sharing: 1 row \(row 1\) not bool: expected true or false: got 'maybe'$",
    ),
    (
        "partners",
        1,
        {"country": "France"},
        "country",
        "format",
        r"^partners\.country: 1 row \(row 2\) not an ISO 3166-1 alpha-2 code such as DE: got 'France'$",
    ),
    (
        "partners",
        0,
        {"joined_on": "2024/01/02"},
        "joined_on",
        "type",
        r"not date: expected a date YYYY-MM-DD: got '2024/01/02'$",
    ),
    ("partners", 0, {"joined_on": "2024-02-30"}, "joined_on", "type", r"got '2024-02-30'$"),
    (
        "partners",
        0,
        {"joined_on": "2031-01-01"},
        "joined_on",
        "future_date",
        r"^partners\.joined_on: 1 row \(row 1\) dated after the pack was created",
    ),
    (
        "partners",
        2,
        {"name": ""},
        "name",
        "required",
        r"^partners\.name: 1 row \(row 3\) empty; the column is required$",
    ),
    (
        "partners",
        0,
        {"name": "Acme, ask jane.doe@acme.example"},
        "name",
        "email_in_text",
        r"^partners\.name: 1 row \(row 1\) holding an e-mail address; .*\(value withheld\)$",
    ),
    (
        "partners",
        0,
        {"name": "Acme +49 30 1234567"},
        "name",
        "phone_in_text",
        r"^partners\.name: 1 row \(row 1\) holding a phone number",
    ),
    ("products", 0, {"category": "toner"}, "category", "enum", r"got 'toner'$"),
    (
        "products",
        0,
        {"list_price": "-1.0"},
        "list_price",
        "below_min",
        r"^products\.list_price: 1 row \(row 1\) below the minimum 0$",
    ),
    (
        "products",
        0,
        {"list_price": "12,5"},
        "list_price",
        "type",
        r"expected a number with '\.' as decimal point, such as 12\.5: got '12,5'$",
    ),
    ("products", 0, {"list_price": "nan"}, "list_price", "type", r"got 'nan'$"),
    (
        "products",
        0,
        {"currency": "euro"},
        "currency",
        "format",
        r"not an ISO 4217 code such as EUR: got 'euro'$",
    ),
    ("products", 2, {"page_yield": "0"}, "page_yield", "below_min", r"below the minimum 1$"),
    (
        "products",
        2,
        {"page_yield": "3000.5"},
        "page_yield",
        "type",
        r"not int: expected a whole number such as 12 or -3: got '3000\.5'$",
    ),
    (
        "products",
        2,
        {"color": "red"},
        "color",
        "enum",
        r"not one of black, cyan, magenta, yellow: got 'red'$",
    ),
    (
        "products",
        0,
        {"page_yield": "100"},
        "page_yield",
        "supplies_only",
        r"^products\.page_yield: 1 row \(row 1\) breaking the rule: page_yield and color are for "
        r"supplies only",
    ),
    (
        "products",
        0,
        {"extends_warranty_months": "12"},
        "extends_warranty_months",
        "warranty_only",
        r"extends_warranty_months is for warranty products only$",
    ),
    (
        "accounts",
        1,
        {"employee_band": "5-10"},
        "employee_band",
        "enum",
        r"not one of 1-9, 10-49, 50-249, 250-999, 1000\+: got '5-10'$",
    ),
    (
        "accounts",
        1,
        {"industry": "Retail (buyer: j.smith@shop.example)"},
        "industry",
        "email_in_text",
        r"^accounts\.industry: 1 row \(row 2\) holding an e-mail address",
    ),
    (
        "accounts",
        1,
        {"industry": "Retail, call (555) 123-4567"},
        "industry",
        "phone_in_text",
        r"holding a phone number",
    ),
    ("accounts", 0, {"first_seen": "2031-05-01"}, "first_seen", "future_date", r"dated after"),
    (
        "accounts",
        1,
        {"partner_id": "P002"},
        "partner_id",
        "foreign_partner",
        r"^accounts\.partner_id: 1 row \(row 2\) of another partner; a partner pack holds only the "
        r"rows of its source partner$",
    ),
    (
        "sell_through",
        0,
        {"quantity": "0"},
        "quantity",
        "zero",
        r"^sell_through\.quantity: 1 row \(row 1\) zero; the contract forbids 0 here$",
    ),
    ("sell_through", 0, {"quantity": "1.5"}, "quantity", "type", r"got '1\.5'$"),
    (
        "sell_through",
        0,
        {"net_amount": "-5.0"},
        "net_amount",
        "sign_follows_quantity",
        r"net_amount must have the sign of quantity",
    ),
    (
        "sell_through",
        1,
        {"sku": "NOPE-1"},
        "sku",
        "unknown_sku",
        r"^sell_through\.sku: 1 row \(row 2\) where sku is not in the products table$",
    ),
    (
        "sell_through",
        2,
        {"account_id": "A-9"},
        "account_id",
        "unknown_account",
        r"^sell_through\.account_id: 1 row \(row 3\) where account_id is not in the accounts table "
        r"of this partner$",
    ),
    (
        "sell_through",
        0,
        {"channel": "phone"},
        "channel",
        "enum",
        r"not one of field, online, marketplace: got 'phone'$",
    ),
    ("sell_through", 0, {"sold_on": ""}, "sold_on", "required", r"empty; the column is required$"),
    ("sell_through", 0, {"sold_on": "2025-01-02"}, "sold_on", "future_date", r"dated after"),
    ("sell_through", 0, {"currency": "EURO"}, "currency", "format", r"got 'EURO'$"),
    (
        "install_base",
        0,
        {"contract": "lease"},
        "contract",
        "enum",
        r"not one of none, care_pack, mps, daas: got 'lease'$",
    ),
    (
        "install_base",
        1,
        {"retired_on": "2018-01-01"},
        "retired_on",
        "retired_before_installed",
        r"retired_on is before installed_on$",
    ),
    (
        "install_base",
        0,
        {"warranty_ends_on": "2020-01-01"},
        "warranty_ends_on",
        "warranty_before_installed",
        r"warranty_ends_on is before installed_on$",
    ),
    (
        "install_base",
        0,
        {"replaced_by": "D-1"},
        "replaced_by",
        "replaced_by_itself",
        r"replaced_by names the device itself$",
    ),
    (
        "install_base",
        0,
        {"sku": "TN-4001-K"},
        "sku",
        "unknown_sku",
        r"where sku is not in the printer or pc products table$",
    ),
    (
        "install_base",
        0,
        {"device_id": "d1@fleet.example"},
        "device_id",
        "email_in_text",
        r"holding an e-mail address",
    ),
    ("install_base", 1, {"account_id": "A-404"}, "account_id", "unknown_account", r"accounts"),
    ("device_events", 0, {"device_id": "D-404"}, "device_id", "unknown_device", r"install_base"),
    ("service_events", 1, {"account_id": "A-404"}, "account_id", "unknown_account", r"accounts"),
    ("opportunities", 1, {"account_id": "A-404"}, "account_id", "unknown_account", r"accounts"),
    (
        "telemetry",
        0,
        {"observed_at": "2024-03-01 08:00:00"},
        "observed_at",
        "type",
        r"not timestamp: expected a UTC timestamp YYYY-MM-DDTHH:MM:SSZ: got '2024-03-01 08:00:00'$",
    ),
    (
        "telemetry",
        0,
        {"metric": "Page Count"},
        "metric",
        "format",
        r"not a metric name such as page_count or supply_level_pct\.black: got 'Page Count'$",
    ),
    (
        "telemetry",
        0,
        {"value": "-5.0"},
        "value",
        "negative_page_count",
        r"page_count is a cumulative counter and cannot be negative$",
    ),
    (
        "telemetry",
        1,
        {"value": "120.0"},
        "value",
        "percent_out_of_range",
        r"a \*_pct metric must lie between 0 and 100$",
    ),
    (
        "telemetry",
        1,
        {"metric": "supply_level_pct.green"},
        "metric",
        "unknown_supply_color",
        r"supply levels are supply_level_pct\.<color> with color one of black, cyan, magenta, yellow$",
    ),
    (
        "telemetry",
        3,
        {"device_id": "D-9"},
        "device_id",
        "unknown_device",
        r"^telemetry\.device_id: 1 row \(row 4\) where device_id is not in the install_base table",
    ),
    ("telemetry", 2, {"value": "inf"}, "value", "type", r"got 'inf'$"),
    (
        "device_events",
        0,
        {"severity": "fatal"},
        "severity",
        "enum",
        r"not one of info, warning, error: got 'fatal'$",
    ),
    (
        "device_events",
        0,
        {"occurred_at": "2025-06-01T00:00:00Z"},
        "occurred_at",
        "future_date",
        r"dated after",
    ),
    ("service_events", 0, {"kind": "fix"}, "kind", "enum", r"got 'fix'$"),
    (
        "service_events",
        0,
        {"closed_at": "2024-03-01T00:00:00Z"},
        "closed_at",
        "closed_before_opened",
        r"closed_at is before opened_at$",
    ),
    (
        "service_events",
        0,
        {"component": "fuser, tech 0171-1234567"},
        "component",
        "phone_in_text",
        r"^service_events\.component: 1 row \(row 1\) holding a phone number",
    ),
    ("service_events", 0, {"sla_met": "yes"}, "sla_met", "type", r"got 'yes'$"),
    ("service_events", 1, {"device_id": "D-7"}, "device_id", "unknown_device", r"install_base"),
    (
        "opportunities",
        1,
        {"stage": "pending"},
        "stage",
        "enum",
        r"not one of open, won, lost: got 'pending'$",
    ),
    (
        "opportunities",
        0,
        {"closed_on": ""},
        "closed_on",
        "closed_without_date",
        r"a won or lost opportunity needs closed_on$",
    ),
    (
        "opportunities",
        1,
        {"closed_on": "2024-04-01"},
        "closed_on",
        "open_with_close_date",
        r"an open opportunity cannot have closed_on",
    ),
    (
        "opportunities",
        0,
        {"closed_on": "2023-12-01"},
        "closed_on",
        "closed_before_created",
        r"closed_on is before created_on$",
    ),
    ("opportunities", 0, {"amount": "-1.0"}, "amount", "below_min", r"below the minimum 0$"),
    ("opportunities", 0, {"deal_registered": "Y"}, "deal_registered", "type", r"got 'Y'$"),
    (
        "inventory",
        0,
        {"units_on_hand": "-2"},
        "units_on_hand",
        "below_min",
        r"^inventory\.units_on_hand: 1 row \(row 1\) below the minimum 0$",
    ),
    ("inventory", 1, {"sku": "XX"}, "sku", "unknown_sku", r"sku is not in the products table$"),
    (
        "intent_signals",
        0,
        {"week_of": "2024-06-04"},
        "week_of",
        "week_not_monday",
        r"week_of must be the Monday of the week$",
    ),
    ("intent_signals", 0, {"intensity": "-1"}, "intensity", "below_min", r"below the minimum 0$"),
    (
        "intent_signals",
        1,
        {"partner_id": "P003"},
        "partner_id",
        "consent",
        r"^intent_signals\.partner_id: 1 row \(row 2\) of a partner that has not opted in",
    ),
    (
        "intent_signals",
        1,
        {"partner_id": "P999"},
        "partner_id",
        "unknown_partner",
        r"with a partner_id that is not in the partners table$",
    ),
    (
        "market",
        0,
        {"month": "2024-06-15"},
        "month",
        "month_not_first_day",
        r"month must be the first day of the month$",
    ),
    ("market", 1, {"units": "-1"}, "units", "below_min", r"below the minimum 0$"),
    ("market", 1, {"revenue": "1e9x"}, "revenue", "type", r"got '1e9x'$"),
]


@pytest.mark.parametrize(
    ("table", "row", "edits", "column", "rule", "pattern"),
    CASES,
    ids=[f"{c[0]}-{c[3]}-{c[4]}" for c in CASES],
)
def test_each_rule_catches_its_bad_row(
    tmp_path: Path,
    table: str,
    row: int,
    edits: dict[str, object],
    column: str,
    rule: str,
    pattern: str,
) -> None:
    report = _validate(tmp_path, table, row, edits)
    in_table = [v for v in report.errors if v.table == table]
    assert [(v.column, v.rule, v.rows, v.sample_rows) for v in in_table] == [
        (column, rule, 1, (row + 1,))
    ], report.summary()
    assert re.search(pattern, in_table[0].message), in_table[0].message
    assert report.tables[table].rows_rejected == 1
    assert report.tables[table].rows_valid == report.tables[table].rows_read - 1


def test_every_rule_of_the_contract_has_a_case() -> None:
    covered = {(c[0], c[4]) for c in CASES}
    for table in TABLES.values():
        for rule in table.rules:
            assert (table.name, rule.name) in covered, (table.name, rule.name)
        for ref in table.references:
            if ref.target in ("accounts",) and table.name == "intent_signals":
                continue  # vendor pack: accounts are not in it (warned, see test above)
            assert (table.name, ref.rule) in covered, (table.name, ref.rule)
        for col in table.columns:
            if col.enum:
                assert (table.name, "enum") in covered, table.name


@pytest.mark.parametrize("secret", ["jane.doe@acme.example", "+49 30 1234567", "(555) 123-4567"])
def test_messages_never_echo_personal_data(tmp_path: Path, secret: str) -> None:
    report = _validate(tmp_path, "accounts", 0, {"industry": f"Retail {secret}"})
    text = report.summary() + str(report.to_dict())
    assert secret not in text
    assert "jane" not in text


def test_personal_data_in_a_typed_column_is_withheld_from_the_echo(tmp_path: Path) -> None:
    report = _validate(tmp_path, "sell_through", 0, {"quantity": "jane@acme.example"})
    messages = " ".join(v.message for v in report.violations)
    assert "jane" not in messages
    assert "<withheld: looks like personal data>" in messages


def test_telemetry_duplicates_are_set_aside_and_conflicts_refused(tmp_path: Path) -> None:
    partner = partner_tables()
    tel = partner["telemetry"]
    dup = tel.iloc[[0]]  # same key, same value: a duplicate
    conflict = tel.iloc[[2]].assign(value=1700.0)  # same key, another value: a conflict
    partner["telemetry"] = pd.concat([tel, dup, conflict], ignore_index=True)
    vpath = write_string_pack(tmp_path / "vendor", vendor_tables(), "vendor")
    ppath = write_string_pack(tmp_path / "P001", partner, "P001")
    report = validate_pack(ppath, reference=vpath)
    found = {(v.rule, v.rows, v.sample_rows, v.severity) for v in report.violations}
    assert found == {("duplicate", 1, (5,), "info"), ("key_conflict", 2, (3, 6), "error")}
    t = report.tables["telemetry"]
    assert (t.rows_read, t.rows_valid, t.rows_rejected, t.rows_duplicate) == (6, 3, 2, 1)
    assert report.counts() == {("telemetry", "duplicate"): 1, ("telemetry", "key_conflict"): 2}


def test_a_repeated_invoice_line_with_other_values_is_a_conflict(tmp_path: Path) -> None:
    report = _validate(tmp_path, "sell_through", 1, {"line_id": "L-1"})
    errors = [(v.table, v.column, v.rule, v.rows, v.sample_rows) for v in report.errors]
    assert errors == [("sell_through", "line_id", "key_conflict", 2, (1, 2))]
    assert re.search(
        r"sharing a key \(partner_id, line_id\) with different values", report.errors[0].message
    )


def test_missing_column_rejects_the_table_and_names_the_columns(tmp_path: Path) -> None:
    partner = partner_tables()
    partner["inventory"] = partner["inventory"].drop(columns=["as_of"])
    vpath = write_string_pack(tmp_path / "vendor", vendor_tables(), "vendor")
    ppath = write_string_pack(tmp_path / "P001", partner, "P001")
    report = validate_pack(ppath, reference=vpath)
    [v] = report.errors
    assert (v.table, v.rule, v.rows) == ("inventory", "missing_column", 2)
    assert v.message == (
        "inventory: missing contract columns as_of; no row of the table can be read. "
        "Expected columns: partner_id, sku, as_of, units_on_hand"
    )


def test_extra_columns_are_kept_and_personal_ones_dropped(tmp_path: Path) -> None:
    partner = partner_tables()
    partner["accounts"] = partner["accounts"].assign(
        segment=["smb", "enterprise"], contact_email=["", "x"]
    )
    vpath = write_string_pack(tmp_path / "vendor", vendor_tables(), "vendor")
    ppath = write_string_pack(tmp_path / "P001", partner, "P001")
    report = validate_pack(ppath, reference=vpath)
    assert report.ok
    warnings = {(v.rule, v.column) for v in report.warnings}
    assert warnings == {("extra_column", None), ("personal_column", "contact_email")}
    assert "extra columns segment are not in the contract" in report.summary()


def test_extra_text_columns_are_scanned_for_personal_data(tmp_path: Path) -> None:
    partner = partner_tables()
    partner["accounts"] = partner["accounts"].assign(note=["ok", "ring +44 20 7946 0958"])
    vpath = write_string_pack(tmp_path / "vendor", vendor_tables(), "vendor")
    ppath = write_string_pack(tmp_path / "P001", partner, "P001")
    report = validate_pack(ppath, reference=vpath)
    assert [(v.column, v.rule, v.sample_rows) for v in report.errors] == [
        ("note", "phone_in_text", (2,))
    ]


def test_pack_of_a_partner_without_consent_is_refused_unread(tmp_path: Path) -> None:
    vpath = write_string_pack(tmp_path / "vendor", vendor_tables(), "vendor")
    partner = partner_tables("P003")
    partner["accounts"].loc[0, "industry"] = "jane@x.example"  # would be an error if read
    ppath = write_string_pack(tmp_path / "P003", partner, "P003")
    report = validate_pack(ppath, reference=vpath)
    assert report.refused
    [v] = report.violations
    assert (v.table, v.rule, v.rows) == (None, "consent", None)
    assert v.message == (
        "pack P003 is refused: partner P003 has not opted in to share its data "
        "(partners.data_sharing is false), so nothing of the pack is read or stored. Ask the "
        "partner to opt in in the partner program, then send the pack again."
    )
    assert report.tables == {}


def test_pack_of_an_unknown_partner_is_refused(tmp_path: Path) -> None:
    vpath = write_string_pack(tmp_path / "vendor", vendor_tables(), "vendor")
    ppath = write_string_pack(tmp_path / "P777", partner_tables("P777"), "P777")
    report = validate_pack(ppath, reference=vpath)
    assert [(v.rule, v.rows) for v in report.violations] == [("unknown_partner", None)]
    assert report.refused


def test_without_partners_consent_is_not_checked_and_says_so(tmp_path: Path) -> None:
    ppath = write_string_pack(tmp_path / "P001", partner_tables(), "P001")
    report = validate_pack(ppath)
    rules = {v.rule for v in report.warnings}
    assert "consent_not_checked" in rules
    assert "reference_not_checked" in rules  # products absent: skus not checked


def test_parquet_with_wrong_physical_types_is_checked_too(tmp_path: Path) -> None:
    from tests.factories import write_partner_pack, write_vendor_pack

    partner = partner_tables()
    partner["sell_through"] = partner["sell_through"].assign(quantity=[1.0, 2.5, -1.0])
    vpath = write_vendor_pack(tmp_path / "vendor")
    from amplify_ml.datapack import write_pack
    from tests.factories import CREATED_AT, PERIOD

    write_pack(
        tmp_path / "P001", partner, source="P001", period=PERIOD, created_at=CREATED_AT, cast=False
    )
    report = validate_pack(tmp_path / "P001", reference=vpath)
    assert [(v.table, v.column, v.rule, v.sample_rows) for v in report.errors] == [
        ("sell_through", "quantity", "type", (2,))
    ]
    assert write_partner_pack  # the typed writer is exercised in test_pack.py
