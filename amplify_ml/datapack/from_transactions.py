"""Turn a partner's plain transactions export (CSV) into a valid minimal pack.

Many partners can export nothing but invoice lines: customer, date, quantity, amount, maybe
a product code and a category. :func:`pack_from_transactions` maps those columns onto the
contract and writes ``partners``, ``products``, ``accounts`` and ``sell_through``.

Nothing is invented silently. Values the export cannot give are either

- *derived* from the export and recorded as such in the manifest (``derived``):
  ``accounts.first_seen`` (first purchase), ``products.launched_on`` (first sale),
  ``products.list_price`` (median observed net unit price, not the vendor's list price),
  ``sell_through.line_id`` when no invoice-line column is mapped (from the line's content, so
  the same line in a later export gets the same id, and a later export of new lines replaces
  none); or
- ``sell_through.net_amount`` from ``quantity x unit_price`` when the export gives a unit price
  instead of the line's amount (``unit_price`` mapped instead of ``amount``);
- *given by the user* as ``defaults`` (recorded in the manifest): contract enums that have no
  "unknown" member (``channel``, ``employee_band``, ``category`` when unmapped, the
  partner's ``track``), and labels (``industry``, ``family``) that otherwise read
  ``unspecified``.

Dates are read as written (the local date of the sale) with ``date_format``, followed or not by
a time of day (``HH:MM[:SS[.ffffff]]`` after a space or a ``T``, a trailing ``Z`` or UTC offset
ignored), so an export of timestamps needs no format of its own. When dates do not match, the
refusal shows some of them and the common formats that read them all.

Rows that cannot be mapped are refused with their row number and reason, written to a
``<pack>.refused.csv`` beside the pack (personal data redacted), never dropped silently.
"""

from __future__ import annotations

import codecs
import json
import re
import tempfile
from collections.abc import Mapping
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from amplify_ml.datapack.contract import (
    CHANNELS,
    EMPLOYEE_BANDS,
    PRODUCT_CATEGORIES,
    TRACKS,
)
from amplify_ml.datapack.pack import (
    MANIFEST,
    PackWriter,
    csv_header,
    format_timestamp,
    iter_csv_batches,
)
from amplify_ml.datapack.privacy import duckdb_has_email, duckdb_has_phone, safe_echo
from amplify_ml.errors import DataPackError

REQUIRED_FIELDS = ("customer_id", "date", "quantity", "amount")
"""``amount`` (the line's net amount) may be replaced by ``unit_price`` (amount = quantity x
unit price)."""
OPTIONAL_FIELDS = (
    "unit_price",
    "sku",
    "category",
    "line_id",
    "currency",
    "channel",
    "country",
    "industry",
    "employee_band",
    "family",
)
DEFAULTABLE = ("category", "channel", "employee_band", "industry", "family", "track")

# Common category labels in exports, mapped onto the contract's categories.
CATEGORY_SYNONYMS: Mapping[str, str] = {
    **{c: c for c in PRODUCT_CATEGORIES},
    "printers": "printer",
    "mfp": "printer",
    "multifunction": "printer",
    "pcs": "pc",
    "notebook": "pc",
    "notebooks": "pc",
    "laptop": "pc",
    "laptops": "pc",
    "desktop": "pc",
    "desktops": "pc",
    "workstation": "pc",
    "workstations": "pc",
    "toner": "supplies",
    "ink": "supplies",
    "cartridge": "supplies",
    "cartridges": "supplies",
    "consumables": "supplies",
    "supply": "supplies",
    "care pack": "warranty",
    "care_pack": "warranty",
    "carepack": "warranty",
    "extended warranty": "warranty",
    "warranties": "warranty",
    "services": "service",
    "accessories": "accessory",
}


@dataclass
class RefusedRows:
    """Rows of the export that were refused, per reason, with sample row numbers."""

    reason: str
    rows: int
    sample_rows: list[int]
    message: str


@dataclass
class TransactionsReport:
    """What the conversion did."""

    pack: Path
    partner_id: str
    rows_read: int
    rows_converted: int
    refused: list[RefusedRows] = field(default_factory=list)
    refused_file: Path | None = None
    tables: dict[str, int] = field(default_factory=dict)
    derived: dict[str, str] = field(default_factory=dict)
    defaults: dict[str, str] = field(default_factory=dict)

    @property
    def rows_refused(self) -> int:
        return self.rows_read - self.rows_converted

    def to_dict(self) -> dict[str, Any]:
        return {
            "pack": str(self.pack),
            "partner_id": self.partner_id,
            "rows_read": self.rows_read,
            "rows_converted": self.rows_converted,
            "rows_refused": self.rows_refused,
            "refused": [r.__dict__ for r in self.refused],
            "refused_file": str(self.refused_file) if self.refused_file else None,
            "tables": self.tables,
            "derived": self.derived,
            "defaults": self.defaults,
        }


_REFUSAL_MESSAGES = {
    "missing_value": "a mapped required field (customer_id, date, quantity, amount or "
    "unit_price) is empty",
    "bad_date": "the date does not match the date format (--date-format)",
    "future_date": "the date lies after today",
    "bad_quantity": "quantity is not a whole number",
    "zero_quantity": "quantity is 0; the contract forbids 0 (a return is negative)",
    "bad_amount": "amount (or unit price) is not a number (check --decimal)",
    "sign_mismatch": "amount and quantity have opposite signs (or the unit price is negative)",
    "bad_category": "the category is not one the contract knows (printer, pc, supplies, "
    "warranty, service, accessory or a common synonym)",
    "bad_channel": "the channel is not one of " + ", ".join(CHANNELS),
    "bad_employee_band": "the employee band is not one of " + ", ".join(EMPLOYEE_BANDS),
    "bad_country": "the country is not an ISO 3166-1 alpha-2 code",
    "bad_currency": "the currency is not an ISO 4217 code",
    "sku_category_conflict": "the same sku appears with different categories",
    "line_conflict": "the same invoice line id appears with different values",
    "duplicate": "an exact copy of an earlier row",
    "personal_data": "a text field holds an e-mail address or a phone number (value withheld)",
}


def parse_mapping(text: str) -> dict[str, str]:
    """``customer_id=Kunde,date=Datum`` -> dict; refuses unknown fields and missing ones."""
    mapping: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        if "=" not in part:
            raise DataPackError(f"--map: {part!r} is not FIELD=COLUMN (e.g. customer_id=Kunde)")
        key, col = (s.strip() for s in part.split("=", 1))
        if key not in REQUIRED_FIELDS + OPTIONAL_FIELDS:
            raise DataPackError(
                f"--map: unknown field {key!r}; fields are "
                + ", ".join(REQUIRED_FIELDS + OPTIONAL_FIELDS)
            )
        mapping[key] = col
    if "amount" in mapping and "unit_price" in mapping:
        raise DataPackError(
            "--map: map amount (the line's net amount) or unit_price (amount = quantity x unit "
            "price), not both"
        )
    missing = [
        f
        for f in REQUIRED_FIELDS
        if f not in mapping and not (f == "amount" and "unit_price" in mapping)
    ]
    if missing:
        raise DataPackError(
            f"--map: missing {', '.join(missing)}; the export must give at least "
            "customer_id, date, quantity and amount or unit_price (e.g. --map customer_id=Kunde,"
            "date=Datum,quantity=Menge,amount=Betrag)"
        )
    return mapping


DATE_FORMATS = (
    "%Y-%m-%d",
    "%d.%m.%Y",
    "%d/%m/%Y",
    "%m/%d/%Y",
    "%d-%m-%Y",
    "%Y/%m/%d",
    "%Y%m%d",
    "%d.%m.%y",
    "%d/%m/%y",
    "%m/%d/%y",
    "%d %b %Y",
    "%d-%b-%Y",
    "%b %d, %Y",
)
"""Common date formats of exports, offered when the dates do not match ``--date-format``."""

_TIME_OF_DAY = ("", " %H:%M:%S", " %H:%M", " %H:%M:%S.%f", "T%H:%M:%S", "T%H:%M", "T%H:%M:%S.%f")
_UTC_OFFSET = r"([0-9]{2}:[0-9]{2}(:[0-9]{2}([.][0-9]+)?)?) *(Z|[+-][0-9]{2}(:?[0-9]{2})?)$"


def _date_sql(text: str, date_format: str) -> str:
    """SQL for the date of ``text`` read with ``date_format``, followed or not by a time of day
    (a trailing UTC offset dropped: the date is the one written, the sale's local date)."""
    formats = [date_format] if "%H" in date_format else [date_format + t for t in _TIME_OF_DAY]
    bare = f"regexp_replace({text}, {_lit(_UTC_OFFSET)}, '\\1')"
    return f"TRY_STRPTIME({bare}, [{', '.join(map(_lit, formats))}])::DATE"


def _suggest_date_formats(
    con: duckdb.DuckDBPyConnection, values: list[str], today: date
) -> list[str]:
    """The formats of :data:`DATE_FORMATS` that read every one of ``values`` as a date between
    1900 and ``today``."""
    if not values:
        return []
    con.register("_dates", pa.table({"v": values}))
    fits = []
    for fmt in DATE_FORMATS:
        bad = con.execute(
            f"SELECT count(*) FROM (SELECT {_date_sql('v', fmt)} AS d FROM _dates) "
            f"WHERE d IS NULL OR d < DATE '1900-01-01' OR d > DATE {_lit(today.isoformat())}"
        ).fetchone()[0]  # type: ignore[index]
        if bad == 0:
            fits.append(fmt)
    con.unregister("_dates")
    return fits


DELIMITERS = (",", ";", "\t", "|")
"""Field separators :func:`sniff_delimiter` chooses from."""


def sniff_delimiter(file: Path, encoding: str = "utf-8") -> str:
    """The one of :data:`DELIMITERS` that splits the header row into the most columns
    (``,`` when none splits it)."""
    import csv

    csv_header(file, encoding=encoding)  # a clear error for an empty or mis-encoded file
    with file.open("r", encoding=encoding, newline="") as fh:
        line = fh.readline().rstrip("\r\n")
    best, most = ",", 1
    for d in DELIMITERS:
        n = len(next(csv.reader([line], delimiter=d)))
        if n > most:
            best, most = d, n
    return best


def parse_pairs(text: str | None, option: str) -> dict[str, str]:
    """``A=x,B=y`` -> {"A": "x", "B": "y"} for options such as --category-map."""
    pairs: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in (text or "").split(","))):
        if "=" not in part:
            raise DataPackError(f"{option}: {part!r} is not KEY=VALUE")
        key, value = (x.strip() for x in part.split("=", 1))
        pairs[key] = value
    return pairs


def parse_defaults(text: str | None) -> dict[str, str]:
    """``channel=field,employee_band=10-49`` -> dict, checked against the contract's enums."""
    defaults: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in (text or "").split(","))):
        if "=" not in part:
            raise DataPackError(f"--default: {part!r} is not FIELD=VALUE (e.g. channel=field)")
        key, value = (s.strip() for s in part.split("=", 1))
        if key not in DEFAULTABLE:
            raise DataPackError(
                f"--default: {key!r} cannot be defaulted; use one of {', '.join(DEFAULTABLE)}"
            )
        allowed = {
            "channel": CHANNELS,
            "employee_band": EMPLOYEE_BANDS,
            "track": TRACKS,
            "category": PRODUCT_CATEGORIES,
        }.get(key)
        if allowed and value not in allowed:
            raise DataPackError(f"--default {key}={value!r}: expected one of {', '.join(allowed)}")
        defaults[key] = value
    return defaults


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def pack_from_transactions(
    file: str | Path,
    out: str | Path,
    *,
    partner_id: str,
    mapping: Mapping[str, str],
    country: str,
    currency: str | None = None,
    consent: bool = False,
    defaults: Mapping[str, str] | None = None,
    name: str | None = None,
    date_format: str = "%Y-%m-%d",
    decimal: str = ".",
    category_map: Mapping[str, str] | None = None,
    today: date | None = None,
    format: str = "parquet",
    encoding: str = "utf-8",
    delimiter: str | None = None,
    memory_limit: str | None = None,
) -> TransactionsReport:
    """Write a minimal pack (partners, products, accounts, sell_through) from a CSV export.

    ``encoding``: the export's text encoding (spreadsheet exports are often ``cp1252``);
    ``delimiter``: its field separator, by default the one of ``,``, ``;``, tab and ``|``
    that splits its header row into the most columns; ``memory_limit``: DuckDB's memory cap
    (e.g. ``"2GB"``), past which it works on disk in a scratch folder of the system's
    temporary directory (``TMPDIR``), which needs about twice the export's size.

    ``consent`` records that the partner opted in to share its data (``data_sharing``); a
    pack without it would be refused at ingestion, so the conversion refuses to write one.
    Raises :class:`~amplify_ml.errors.DataPackError` with what is missing and how to give it.
    """
    file, out = Path(file), Path(out)
    defaults = dict(defaults or {})
    today = today or datetime.now(UTC).date()
    problems: list[str] = []
    if not consent:
        problems.append(
            "the partner's consent is not recorded: pass --consent once the partner has opted "
            "in to share its data (a pack without consent is refused at ingestion)"
        )
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.\-]*", partner_id):
        problems.append(f"--partner {partner_id!r}: use letters, digits, '_', '.', '-'")
    if not re.fullmatch(r"[A-Z]{2}", country):
        problems.append(f"--country {country!r}: expected an ISO 3166-1 alpha-2 code such as DE")
    if "currency" not in mapping and not (currency and re.fullmatch(r"[A-Z]{3}", currency)):
        problems.append("currency: map a column (currency=COL) or pass --currency EUR (ISO 4217)")
    for fld, hint in (
        ("channel", "field, online or marketplace"),
        ("employee_band", "one of " + ", ".join(EMPLOYEE_BANDS)),
    ):
        if fld not in mapping and fld not in defaults:
            problems.append(
                f"{fld} is required by the contract and has no 'unknown' value: map a column "
                f"({fld}=COL) or pass --default {fld}=VALUE ({hint})"
            )
    if "category" not in mapping and "category" not in defaults:
        problems.append(
            "category: map a column (category=COL) or pass --default category=VALUE "
            "(" + ", ".join(PRODUCT_CATEGORIES) + ")"
        )
    if "track" not in defaults:
        problems.append("track: pass --default track=VALUE (" + ", ".join(TRACKS) + ")")
    if decimal not in (".", ","):
        problems.append(f"--decimal {decimal!r}: use '.' or ','")
    if delimiter is not None and len(delimiter) != 1:
        problems.append(f"--delimiter {delimiter!r}: give one character, e.g. ';' (or '\\t')")
    try:
        codecs.lookup(encoding)
    except LookupError:
        problems.append(f"--encoding {encoding!r}: not an encoding Python knows (e.g. cp1252)")
    if not file.exists():
        problems.append(f"{file}: no such file")
    if problems:
        raise DataPackError(f"cannot convert {file.name}: " + "; ".join(problems))

    if delimiter is None:
        delimiter = sniff_delimiter(file, encoding)
    header = csv_header(file, encoding=encoding, delimiter=delimiter)
    absent = [c for c in mapping.values() if c not in header]
    if absent:
        raise DataPackError(
            f"{file.name}: mapped columns {', '.join(map(repr, absent))} are not in the header; "
            f"the header has {', '.join(map(repr, header))}"
        )
    # the export goes into a scratch database on disk, batch by batch, so an export larger
    # than memory converts: past memory_limit DuckDB writes to the scratch folder
    with (
        tempfile.TemporaryDirectory(prefix="amplify-convert-") as scratch,
        closing(duckdb.connect(str(Path(scratch) / "convert.duckdb"))) as con,
    ):
        con.execute("SET TimeZone = 'UTC'")
        con.execute(f"SET temp_directory = {_lit(str(Path(scratch) / 'spill'))}")
        if memory_limit:
            con.execute(f"SET memory_limit = {_lit(memory_limit)}")
        n_read = _load_raw(con, file, encoding, delimiter)
        if n_read == 0:
            raise DataPackError(f"{file}: no data rows below the header")

        def col(field_name: str) -> str:
            if field_name not in mapping:
                return "NULL::VARCHAR"
            return f"NULLIF(trim(r.{_q(mapping[field_name])}), '')"

        # a number as written: the decimal mark, and the other mark only between groups of three
        # digits ("1.299,00" or "1,299.00"); "10,0" with --decimal . is refused, never read as 100
        grp, dec = (r"\.", ",") if decimal == "," else (",", r"\.")
        written = _lit(f"[+-]?(([0-9]+|[0-9]{{1,3}}({grp}[0-9]{{3}})+)({dec}[0-9]*)?|{dec}[0-9]+)")

        def number(x: str) -> str:
            plain = (
                f"replace(replace({x}, '.', ''), ',', '.')"
                if decimal == ","
                else f"replace({x}, ',', '')"
            )
            return f"CASE WHEN regexp_full_match({x}, {written}) THEN {plain} END"

        qty_text = number(col("quantity"))
        per_unit = "unit_price" in mapping
        amt_text = number(col("unit_price" if per_unit else "amount"))
        synonyms = {
            **CATEGORY_SYNONYMS,
            **{k.strip().lower(): v for k, v in (category_map or {}).items()},
        }
        bad_targets = sorted({v for v in synonyms.values() if v not in PRODUCT_CATEGORIES})
        if bad_targets:
            raise DataPackError(
                f"--category-map: {', '.join(map(repr, bad_targets))} are not contract categories; "
                "use " + ", ".join(PRODUCT_CATEGORIES)
            )
        cat_cases = " ".join(f"WHEN {_lit(k)} THEN {_lit(v)}" for k, v in synonyms.items())
        category = (
            f"CASE lower({col('category')}) {cat_cases} END"
            if "category" in mapping
            else _lit(defaults["category"])
        )
        text_fields = [
            f
            for f in ("customer_id", "sku", "category", "line_id", "industry", "family")
            if f in mapping
        ]
        personal = (
            " OR ".join(
                f"coalesce({duckdb_has_email(col(f))} OR {duckdb_has_phone(col(f))}, false)"
                for f in text_fields
            )
            or "false"
        )
        con.execute(
            f"""
            CREATE TEMP TABLE t AS
            SELECT r._row,
                {col("customer_id")} AS account_id,
                {_date_sql(col("date"), date_format)} AS sold_on,
                {col("date")} IS NOT NULL AS has_date,
                CASE WHEN regexp_full_match({qty_text}, '[+-]?[0-9]+(\\.0+)?')
                     THEN TRY_CAST({qty_text} AS DOUBLE)::BIGINT END AS quantity,
                {col("quantity")} IS NOT NULL AS has_quantity,
                CASE WHEN regexp_full_match({amt_text}, '[+-]?([0-9]+(\\.[0-9]*)?|\\.[0-9]+)')
                     THEN TRY_CAST({amt_text} AS DOUBLE) END AS _amount,
                {col("unit_price" if per_unit else "amount")} IS NOT NULL AS has_amount,
                {category} AS category,
                {col("category")} AS category_raw,
                {col("date")} AS date_raw,
                {col("sku")} AS sku_raw,
                {col("line_id")} AS line_id,
                upper(coalesce({col("currency")}, {_lit(currency or "")})) AS currency,
                lower(coalesce({col("channel")}, {_lit(defaults.get("channel", ""))})) AS channel,
                coalesce({col("employee_band")}, {_lit(defaults.get("employee_band", ""))}) AS employee_band,
                upper(coalesce({col("country")}, {_lit(country)})) AS country,
                coalesce({col("industry")}, {_lit(defaults.get("industry", "unspecified"))}) AS industry,
                coalesce({col("family")}, {_lit(defaults.get("family", "unspecified"))}) AS family,
                {personal} AS personal
            FROM raw r
            """
        )
        # the line's amount: mapped, else quantity x unit price (to the cent's hundredth)
        con.execute(
            "ALTER TABLE t ADD COLUMN net_amount DOUBLE; "
            + (
                "UPDATE t SET net_amount = round(quantity * _amount, 4)"
                if per_unit
                else "UPDATE t SET net_amount = _amount"
            )
        )
        # the sku: mapped, else one product per category
        con.execute(
            "ALTER TABLE t ADD COLUMN sku VARCHAR; "
            "UPDATE t SET sku = coalesce(sku_raw, 'CAT-' || upper(category))"
        )
        if "line_id" not in mapping:
            # the line's own id: what it says and which of its identical lines it is, so the
            # same line in a later export (full, or in another order) gets the same id and an
            # export of the next month's lines replaces nothing
            fields = "account_id, sold_on, sku, quantity, net_amount, currency, channel"
            con.execute(
                f"""
                UPDATE t SET line_id = 'tx-' || left(sha256(concat_ws('|', {fields}, o.k)), 20)
                FROM (SELECT _row, row_number() OVER (PARTITION BY {fields} ORDER BY _row) AS k
                      FROM t) o
                WHERE t._row = o._row
                """
            )
        reasons = {
            "personal_data": "personal",
            "missing_value": "account_id IS NULL OR NOT has_date OR NOT has_quantity OR NOT has_amount",
            "bad_date": "has_date AND sold_on IS NULL",
            "future_date": f"sold_on > DATE {_lit(today.isoformat())}",
            "bad_quantity": "has_quantity AND quantity IS NULL",
            "zero_quantity": "quantity = 0",
            "bad_amount": "has_amount AND _amount IS NULL",
            "sign_mismatch": "quantity * net_amount < 0",
            "bad_category": "category IS NULL",
            "bad_channel": "channel NOT IN (" + ", ".join(map(_lit, CHANNELS)) + ")",
            "bad_employee_band": "employee_band NOT IN ("
            + ", ".join(map(_lit, EMPLOYEE_BANDS))
            + ")",
            "bad_country": "NOT regexp_full_match(country, '[A-Z]{2}')",
            "bad_currency": "NOT regexp_full_match(currency, '[A-Z]{3}')",
        }
        flags = ", ".join(
            f"CASE WHEN coalesce({pred}, false) THEN {_lit(r)} END" for r, pred in reasons.items()
        )
        con.execute(
            f"CREATE TEMP TABLE f AS SELECT *, list_filter([{flags}], x -> x IS NOT NULL) AS reasons FROM t"
        )
        # consistency across rows, among rows otherwise fine
        con.execute(
            """
            UPDATE f SET reasons = list_append(reasons, 'sku_category_conflict')
            WHERE len(reasons) = 0 AND sku IN (
                SELECT sku FROM f WHERE len(reasons) = 0 GROUP BY sku HAVING count(DISTINCT category) > 1)
            """
        )
        con.execute(
            """
            UPDATE f SET reasons = list_append(reasons, CASE WHEN g.n_distinct > 1 THEN 'line_conflict'
                                                            ELSE 'duplicate' END)
            FROM (
                SELECT _row, count(*) OVER (PARTITION BY line_id) AS n,
                       count(DISTINCT hash(account_id, sold_on, quantity, net_amount, sku, currency,
                                           channel)) OVER (PARTITION BY line_id) AS n_distinct,
                       row_number() OVER (PARTITION BY line_id ORDER BY _row) AS k
                FROM f WHERE len(reasons) = 0
            ) g
            WHERE f._row = g._row AND g.n > 1 AND (g.n_distinct > 1 OR g.k > 1)
            """
        )
        refused_rows = con.execute(
            "SELECT r, count(*), list(_row ORDER BY _row)[1:5] FROM "
            "(SELECT _row, unnest(reasons) AS r FROM f) GROUP BY r ORDER BY min(_row)"
        ).fetchall()
        report = TransactionsReport(out, partner_id, n_read, 0)
        for reason, n, sample in refused_rows:
            message = _REFUSAL_MESSAGES[reason]
            if reason == "bad_category":
                labels = [
                    safe_echo(r[0])
                    for r in con.execute(
                        "SELECT DISTINCT category_raw FROM f WHERE category IS NULL AND NOT personal "
                        "AND category_raw IS NOT NULL ORDER BY 1 LIMIT 5"
                    ).fetchall()
                ]
                if labels:
                    message += f"; unknown labels: {', '.join(labels)} (map them with --category-map LABEL=CATEGORY)"
            if reason == "bad_date":
                message += _bad_date_hint(con, date_format, today)
            if reason == "line_conflict":
                message += (
                    f"; if {mapping['line_id']!r} numbers whole invoices rather than their lines, "
                    "leave line_id unmapped (each row then gets its own id)"
                )
            report.refused.append(RefusedRows(reason, int(n), [int(x) for x in sample], message))
        n_refused = con.execute("SELECT count(*) FROM f WHERE len(reasons) > 0").fetchone()[0]  # type: ignore[index]
        if n_refused:
            refused_file = out.with_name(out.name + ".refused.csv")
            cols = [c for c in con.table("raw").columns if c != "_row"]
            masked = ", ".join(
                f"CASE WHEN f.personal THEN '<redacted>' ELSE r.{_q(c)} END AS {_q(c)}"
                for c in cols
            )
            refused_file.parent.mkdir(parents=True, exist_ok=True)
            con.execute(
                f"COPY (SELECT f._row AS row, array_to_string(f.reasons, ';') AS reasons, {masked} "
                f"FROM f JOIN raw r USING (_row) WHERE len(f.reasons) > 0 ORDER BY f._row) "
                f"TO {_lit(str(refused_file))} (HEADER, DELIMITER ',')"
            )
            report.refused_file = refused_file
        good = "FROM f WHERE len(reasons) = 0"
        report.rows_converted = con.execute(f"SELECT count(*) {good}").fetchone()[0]  # type: ignore[index]
        if report.rows_converted == 0:
            why = "; ".join(f"{r.rows:,} rows {r.reason}: {r.message}" for r in report.refused)
            raise DataPackError(
                f"{file.name}: none of the {n_read:,} rows could be converted ({why}); see "
                f"{report.refused_file} for each row's reasons"
            )
        sell_sql = (
            f"SELECT line_id, {_lit(partner_id)} AS partner_id, account_id, sku, sold_on, quantity, "
            f"net_amount, currency, channel {good} ORDER BY _row"
        )
        accounts = con.execute(
            f"SELECT account_id, {_lit(partner_id)} AS partner_id, any_value(industry ORDER BY _row) AS industry, "
            f"any_value(employee_band ORDER BY _row) AS employee_band, "
            f"any_value(country ORDER BY _row) AS country, min(sold_on) AS first_seen "
            f"{good} GROUP BY account_id ORDER BY account_id"
        ).to_arrow_table()
        products = con.execute(
            f"SELECT sku, any_value(category) AS category, any_value(family ORDER BY _row) AS family, "
            f"coalesce(median(net_amount / quantity) FILTER (WHERE quantity > 0 AND net_amount > 0), 0.0) "
            f"AS list_price, any_value(currency ORDER BY _row) AS currency, min(sold_on) AS launched_on, "
            f"NULL::BIGINT AS page_yield, NULL::VARCHAR AS color, NULL::BIGINT AS extends_warranty_months "
            f"{good} GROUP BY sku ORDER BY sku"
        ).to_arrow_table()
        first, last = con.execute(f"SELECT min(sold_on), max(sold_on) {good}").fetchone()  # type: ignore[misc]
        partners = pa.table(
            {
                "partner_id": [partner_id],
                "name": [name or partner_id],
                "track": [defaults["track"]],
                "data_sharing": [True],
                "country": [country],
                "joined_on": [first],
            }
        )
        report.derived = {
            "accounts.first_seen": "first purchase in the export",
            "products.launched_on": "first sale in the export",
            "products.list_price": "median observed net unit price (not the vendor's list price)",
            "partners.joined_on": "first sale in the export",
        }
        if per_unit:
            report.derived["sell_through.net_amount"] = (
                f"quantity x unit price ({mapping['unit_price']!r})"
            )
        if "line_id" not in mapping:
            report.derived["sell_through.line_id"] = _DERIVED_LINE_ID
        if "sku" not in mapping:
            report.derived["products.sku"] = "one product per category: CAT-<CATEGORY>"
        report.defaults = {k: v for k, v in defaults.items()}
        for label in ("industry", "family"):
            if label not in mapping and label not in defaults:
                report.defaults[label] = "unspecified"
        writer = PackWriter(out, source=partner_id, period=(first, last), format=format)  # type: ignore[arg-type]
        with writer:
            writer.write("partners", partners)
            writer.write("products", products)
            writer.write("accounts", accounts)
            # in export order, a batch at a time
            for batch in con.execute(sell_sql).to_arrow_reader(_BATCH_ROWS):
                writer.append("sell_through", pa.Table.from_batches([batch]))
        manifest = writer.close()
        manifest_data = manifest.model_dump(mode="json")
        # record what was derived or defaulted, so nobody mistakes it for data from the partner
        extra = {
            "converted_from": file.name,
            "derived": report.derived,
            "defaults": report.defaults,
        }
        manifest_data["created_at"] = format_timestamp(manifest.created_at)
        manifest_data.update(extra)
        (out / MANIFEST).write_text(json.dumps(manifest_data, indent=2) + "\n", encoding="utf-8")
        report.tables = {t: e.rows for t, e in manifest.tables.items()}
        return report


_DERIVED_LINE_ID = (
    "tx-<sha256 of the line's account, date, SKU, quantity, amount, currency and channel, and "
    "its rank among identical lines of the export>: the same line in a later export gets the "
    "same id"
)
_BATCH_ROWS = 1 << 17
"""Rows per batch written to the pack's sell_through."""
_BLOCK_BYTES = 16 << 20
"""Bytes of the export read per batch."""


def _load_raw(con: duckdb.DuckDBPyConnection, file: Path, encoding: str, delimiter: str) -> int:
    """Copy the export into the table ``raw`` (every field as text, ``_row`` numbering the data
    rows from 1), a batch at a time; returns the rows read."""
    n = 0
    for batch in iter_csv_batches(file, _BLOCK_BYTES, encoding=encoding, delimiter=delimiter):
        rows = pa.array(range(n + 1, n + batch.num_rows + 1), pa.int64())
        chunk = pa.Table.from_batches([batch]).append_column("_row", rows)
        con.register("_chunk", chunk)
        con.execute(
            "INSERT INTO raw SELECT * FROM _chunk"
            if n
            else "CREATE TABLE raw AS SELECT * FROM _chunk"
        )
        con.unregister("_chunk")
        n += batch.num_rows
    return n


def _bad_date_hint(con: duckdb.DuckDBPyConnection, date_format: str, today: date) -> str:
    """Some of the dates that did not match, and the common formats that read them all."""
    rows = con.execute(
        "SELECT date_raw FROM f WHERE list_contains(reasons, 'bad_date') AND NOT personal "
        "GROUP BY date_raw ORDER BY min(_row) LIMIT 200"
    ).fetchall()
    values = [r[0] for r in rows]
    if not values:
        return ""
    hint = f" {date_format!r}, with or without a time of day; for example " + ", ".join(
        safe_echo(v) for v in values[:3]
    )
    fits = _suggest_date_formats(con, values, today)
    if len(fits) == 1:
        hint += f"; they all read with --date-format '{fits[0]}'"
    elif fits:
        hint += (
            "; they all read with any of --date-format "
            + ", ".join(f"'{f}'" for f in fits)
            + ": check which one the export uses (day or month first)"
        )
    return hint
