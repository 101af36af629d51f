"""A partner's plain transactions export becomes a valid minimal pack; bad rows are refused."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from amplify_ml.datapack import read_pack
from amplify_ml.datapack.from_transactions import (
    pack_from_transactions,
    parse_defaults,
    parse_mapping,
)
from amplify_ml.datapack.validate import validate_pack
from amplify_ml.errors import DataPackError

EXPORT = """Kunde,Datum,Menge,Betrag,Artikel,Warengruppe
K100,05.01.2024,1,"399,00",PR-4001,Drucker
K100,10.02.2024,2,"160,50",TN-1,Toner
K200,01.03.2024,-1,"-80,25",TN-1,toner
K300,31.02.2024,1,"10,00",TN-1,toner
K300,02.03.2024,0,"10,00",TN-1,toner
,03.03.2024,1,"5,00",TN-1,toner
K400,04.03.2024,1,abc,TN-1,toner
K500 jane@x.example,05.03.2024,1,"5,00",TN-1,toner
K600,06.03.2024,1,"1.299,00",PC-1,notebook
K700,07.03.2024,2,"-10,00",TN-1,toner
K800,08.03.2024,1,"10,00",TN-1,Möbel
K900,09.03.2099,1,"10,00",TN-1,toner
K100,11.03.2024,1,"80,00",TN-1,accessory
"""
MAP = {
    "customer_id": "Kunde",
    "date": "Datum",
    "quantity": "Menge",
    "amount": "Betrag",
    "sku": "Artikel",
    "category": "Warengruppe",
}
DEFAULTS = {"channel": "field", "employee_band": "10-49", "track": "synergy"}


def _convert(tmp_path: Path, text: str = EXPORT, *, raw: bytes | None = None, **kw) -> object:
    """The export (``text``, or the bytes ``raw``) converted with the German export's options,
    ``kw`` replacing them."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    src = tmp_path / "sales.csv"
    if raw is not None:
        src.write_bytes(raw)
    else:
        src.write_text(text, encoding="utf-8")
    args = dict(
        partner_id="P050",
        mapping=MAP,
        country="DE",
        currency="EUR",
        consent=True,
        defaults=DEFAULTS,
        date_format="%d.%m.%Y",
        decimal=",",
        today=date(2025, 1, 1),
        category_map={"Drucker": "printer"},
    )
    args.update(kw)
    return pack_from_transactions(src, tmp_path / "pack", **args)


def test_good_rows_become_a_valid_pack_and_bad_rows_are_refused_with_reasons(
    tmp_path: Path,
) -> None:
    report = _convert(tmp_path)
    refused = {r.reason: (r.rows, r.sample_rows) for r in report.refused}
    assert refused == {
        "bad_date": (1, [4]),
        "zero_quantity": (1, [5]),
        "missing_value": (1, [6]),
        "bad_amount": (1, [7]),
        "personal_data": (1, [8]),
        "sign_mismatch": (1, [10]),
        "bad_category": (1, [11]),
        "future_date": (1, [12]),
        "sku_category_conflict": (3, [2, 3, 13]),
    }
    assert (report.rows_read, report.rows_converted) == (13, 2)
    assert report.tables == {"partners": 1, "products": 2, "accounts": 2, "sell_through": 2}
    assert validate_pack(report.pack).ok
    pack = read_pack(report.pack)
    sell = pack.read_table("sell_through")
    assert sell["account_id"].tolist() == ["K100", "K600"]  # rows 1 and 9
    assert sell["line_id"].str.fullmatch(r"tx-[0-9a-f]{20}").all() and sell["line_id"].is_unique
    assert sell["net_amount"].tolist() == [399.0, 1299.0]  # "1.299,00" with decimal ","
    products = pack.read_table("products").set_index("sku")
    assert products.loc["PC-1", "category"] == "pc"  # "notebook" is a known synonym
    assert products.loc["PR-4001", "category"] == "printer"  # mapped with --category-map
    assert products.loc["PC-1", "list_price"] == 1299.0
    partners = pack.read_table("partners")
    assert partners[["partner_id", "track", "data_sharing", "country"]].values.tolist() == [
        ["P050", "synergy", True, "DE"]
    ]
    manifest = json.loads((report.pack / "manifest.json").read_text())
    assert manifest["defaults"] == {**DEFAULTS, "industry": "unspecified", "family": "unspecified"}
    assert manifest["derived"]["products.list_price"].startswith("median observed net unit price")


def test_refused_rows_are_kept_beside_the_pack_with_personal_data_redacted(tmp_path: Path) -> None:
    report = _convert(tmp_path)
    refused = pd.read_csv(report.refused_file, dtype=str, keep_default_na=False)
    assert len(refused) == report.rows_refused == 11
    assert refused.loc[refused["row"] == "8", "Kunde"].item() == "<redacted>"
    assert "jane" not in report.refused_file.read_text()
    assert refused.loc[refused["row"] == "11", "reasons"].item() == "bad_category"
    message = next(r.message for r in report.refused if r.reason == "bad_category")
    assert message.endswith("unknown labels: 'Möbel' (map them with --category-map LABEL=CATEGORY)")


def test_an_export_read_in_many_batches_converts_as_in_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Row numbers run on across the batches the export is read in, refused rows keep theirs,
    and sell_through keeps the export's order when written a few rows at a time."""
    import amplify_ml.datapack.from_transactions as ft

    good = EXPORT.splitlines()[1:3]  # K100's printer and toner lines
    lines = [EXPORT.splitlines()[0]]
    for i in range(400):  # 1200 rows: two good, a refused one (no customer), repeated
        day = f"{1 + i % 28:02d}.0{1 + i % 9}.2023"
        lines += [
            good[0].replace("K100", f"K{i}").replace("05.01.2024", day),
            good[1].replace("K100", f"K{i}").replace("10.02.2024", day),
            f',{day},1,"5,00",TN-1,toner',
        ]
    text = "\n".join(lines) + "\n"
    whole = _convert(tmp_path / "whole", text)
    monkeypatch.setattr(ft, "_BLOCK_BYTES", 4096)
    monkeypatch.setattr(ft, "_BATCH_ROWS", 7)
    batches = list(ft.iter_csv_batches(tmp_path / "whole" / "sales.csv", 4096))
    assert len(batches) > 5  # the export is read in many batches
    parts = _convert(tmp_path / "parts", text)
    assert (parts.rows_read, parts.rows_converted) == (1200, 800)
    assert [(r.reason, r.rows, r.sample_rows) for r in parts.refused] == [
        ("missing_value", 400, [3, 6, 9, 12, 15])
    ]
    refused = pd.read_csv(parts.refused_file, dtype=str, keep_default_na=False)
    assert refused["row"].astype(int).tolist() == list(range(3, 1201, 3))
    a = read_pack(whole.pack).read_table("sell_through")
    b = read_pack(parts.pack).read_table("sell_through")
    pd.testing.assert_frame_equal(a, b)
    assert b["account_id"].tolist()[:4] == ["K0", "K0", "K1", "K1"]
    assert b["account_id"].tolist()[-1] == "K399" and b["line_id"].is_unique


def test_a_line_keeps_its_id_from_one_export_to_the_next(tmp_path: Path) -> None:
    """Without a line column, a line's id comes from what it says (and which of its identical
    lines it is): January's export, then February's under the same file name, then a full
    re-export in another order: the lake ends with every line once, none replaced by another."""
    from amplify_ml.datapack.ingest import ingest_pack
    from amplify_ml.lake import Lake
    from tests.factories import vendor_tables, write_vendor_pack

    head = "cust,day,qty,amt\n"
    jan = ["K1,2024-01-05,1,100.0", "K2,2024-01-06,2,50.0", "K2,2024-01-06,2,50.0"]
    feb = ["K1,2024-02-05,1,100.0", "K4,2024-02-06,3,30.0"]
    exports = {
        "jan": jan,
        "feb": feb,
        "all": [feb[1], jan[1], jan[0], feb[0], jan[2]],  # both months, newest first
    }
    lake = Lake(tmp_path / "lake")
    vendor = vendor_tables()
    vendor["partners"] = vendor["partners"].assign(partner_id="P050")
    ingest_pack(write_vendor_pack(tmp_path / "vendor", vendor), lake)
    ids = {}
    for name, rows in exports.items():
        report = _convert(
            tmp_path / name,
            head + "\n".join(rows) + "\n",
            mapping={"customer_id": "cust", "date": "day", "quantity": "qty", "amount": "amt"},
            defaults={**DEFAULTS, "category": "supplies"},
            date_format="%Y-%m-%d",
            decimal=".",
        )
        assert report.derived["sell_through.line_id"].startswith("tx-<sha256 of the line's")
        sell = read_pack(report.pack).read_table("sell_through")
        what = sell["account_id"] + " " + sell["sold_on"].astype(str)
        ids[name] = dict(zip(sell["line_id"], what, strict=True))
        ingest_pack(report.pack, lake)
        if name == "feb":  # February replaced none of January's lines
            assert len(lake.read("sell_through")) == 5 and lake.superseded("sell_through").empty
            # nor K1's first purchase, derived from each export: January's stays
            accounts = lake.read("accounts").set_index("account_id")["first_seen"]
            assert str(accounts["K1"].date()) == "2024-01-05"
            assert str(accounts["K4"].date()) == "2024-02-06"
    # the two identical lines of January are two lines, in every export
    assert len(ids["jan"]) == 3 and ids["all"] == {**ids["jan"], **ids["feb"]}
    live = lake.read("sell_through")
    assert sorted(live["line_id"]) == sorted(ids["all"])  # each line once
    assert live["net_amount"].sum() == 100 + 50 + 50 + 100 + 30


def test_the_scratch_database_is_removed_after_a_conversion_and_after_a_refusal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tempfile

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    report = _convert(tmp_path, memory_limit="64MB")
    assert report.rows_converted == 2
    with pytest.raises(DataPackError, match="none of the 1 rows could be converted"):
        _convert(tmp_path / "bad", EXPORT.splitlines()[0] + "\n,05.01.2024,1,1,X,toner\n")
    assert list(scratch.iterdir()) == []


def test_every_missing_input_is_named_at_once(tmp_path: Path) -> None:
    with pytest.raises(DataPackError) as info:
        _convert(tmp_path, consent=False, defaults={}, currency=None, country="Germany")
    text = str(info.value)
    for part in (
        "pass --consent once the partner has opted in",
        "--country 'Germany': expected an ISO 3166-1 alpha-2 code",
        "currency: map a column (currency=COL) or pass --currency EUR",
        "channel is required by the contract and has no 'unknown' value",
        "employee_band is required by the contract",
        "track: pass --default track=VALUE",
    ):
        assert part in text


def test_mapped_columns_must_exist(tmp_path: Path) -> None:
    with pytest.raises(DataPackError, match=r"mapped columns 'Artikel' are not in the header"):
        _convert(tmp_path, text="Kunde,Datum,Menge,Betrag,Warengruppe\nK1,01.01.2024,1,1,toner\n")


def test_a_category_default_gives_one_product_per_category(tmp_path: Path) -> None:
    text = "cust,day,qty,amt\nC1,2024-01-02,3,30.0\nC2,2024-01-03,1,12.5\n"
    report = _convert(
        tmp_path,
        text=text,
        mapping={"customer_id": "cust", "date": "day", "quantity": "qty", "amount": "amt"},
        defaults={**DEFAULTS, "category": "supplies"},
        date_format="%Y-%m-%d",
        decimal=".",
    )
    products = read_pack(report.pack).read_table("products")
    assert products[["sku", "category", "list_price"]].values.tolist() == [
        ["CAT-SUPPLIES", "supplies", 11.25]
    ]
    assert report.derived["products.sku"] == "one product per category: CAT-<CATEGORY>"


def test_repeated_invoice_lines(tmp_path: Path) -> None:
    text = (
        "line,cust,day,qty,amt\n"
        "L1,C1,2024-01-02,1,10.0\nL1,C1,2024-01-02,1,10.0\n"
        "L2,C1,2024-01-03,1,10.0\nL2,C1,2024-01-03,2,20.0\n"
        "L3,C2,2024-01-04,1,10.0\n"
    )
    report = _convert(
        tmp_path,
        text=text,
        mapping={
            "customer_id": "cust",
            "date": "day",
            "quantity": "qty",
            "amount": "amt",
            "line_id": "line",
        },
        defaults={**DEFAULTS, "category": "supplies"},
        date_format="%Y-%m-%d",
        decimal=".",
    )
    refused = {r.reason: r.sample_rows for r in report.refused}
    assert refused == {"duplicate": [2], "line_conflict": [3, 4]}
    message = next(r.message for r in report.refused if r.reason == "line_conflict")
    assert message.endswith(
        "if 'line' numbers whole invoices rather than their lines, leave line_id unmapped (each "
        "row then gets its own id)"
    )
    assert report.rows_converted == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("customer_id=a,date=b", r"--map: missing quantity, amount"),
        ("customer=a", r"--map: unknown field 'customer'"),
        ("customer_id", r"--map: 'customer_id' is not FIELD=COLUMN"),
    ],
)
def test_mapping_errors(text: str, message: str) -> None:
    with pytest.raises(DataPackError, match=message):
        parse_mapping(text)


def test_defaults_are_checked_against_the_contract() -> None:
    assert parse_defaults("channel=online, track=power") == {"channel": "online", "track": "power"}
    with pytest.raises(
        DataPackError,
        match=r"--default channel='phone': expected one of field, online, marketplace",
    ):
        parse_defaults("channel=phone")
    with pytest.raises(DataPackError, match=r"--default: 'sku' cannot be defaulted"):
        parse_defaults("sku=X")


def _plain(tmp_path: Path, text: str, **kw) -> object:
    """A plain export: customer, day, qty and amt (or whatever ``mapping`` says), one category."""
    args = dict(
        text=text,
        mapping={"customer_id": "cust", "date": "day", "quantity": "qty", "amount": "amt"},
        defaults={**DEFAULTS, "category": "supplies"},
        date_format="%Y-%m-%d",
        decimal=".",
    )
    args.update(kw)
    return _convert(tmp_path, **args)


def test_timestamps_are_read_as_the_date_they_were_written_on(tmp_path: Path) -> None:
    text = (
        "cust,day,qty,amt\n"
        "C1,2024-07-03 09:39:00,1,10.0\n"
        "C1,2024-07-04 09:39,1,10.0\n"
        "C2,2024-07-05T23:30:00+02:00,1,10.0\n"
        "C2,2024-07-06T00:15:00.250Z,1,10.0\n"
        "C3,2024-07-07,1,10.0\n"
        "C3,2024-07-08 25:00,1,10.0\n"
    )
    report = _plain(tmp_path, text)
    sell = read_pack(report.pack).read_table("sell_through")
    # the sale's local date as written: an offset does not move it to another day
    assert pd.to_datetime(sell["sold_on"]).dt.strftime("%Y-%m-%d").tolist() == [
        "2024-07-03",
        "2024-07-04",
        "2024-07-05",
        "2024-07-06",
        "2024-07-07",
    ]
    assert [(r.reason, r.sample_rows) for r in report.refused] == [("bad_date", [6])]


def test_dates_that_do_not_match_show_examples_and_the_formats_that_read_them(
    tmp_path: Path,
) -> None:
    text = "cust,day,qty,amt\nC1,7/3/2024 9:39,1,10.0\nC1,11/26/2024,1,10.0\nC2,2024-01-05,1,1.0\n"
    report = _plain(tmp_path, text)
    message = next(r.message for r in report.refused if r.reason == "bad_date")
    assert message == (
        "the date does not match the date format (--date-format) '%Y-%m-%d', with or without a "
        "time of day; for example '7/3/2024 9:39', '11/26/2024'; they all read with "
        "--date-format '%m/%d/%Y'"
    )
    # day or month first cannot be told from these: both are offered, and the choice is the user's
    text = "cust,day,qty,amt\nC1,03/07/2024,1,10.0\nC1,2024-01-05,1,1.0\n"
    report = _plain(tmp_path, text)
    message = next(r.message for r in report.refused if r.reason == "bad_date")
    assert message.endswith(
        "they all read with any of --date-format '%d/%m/%Y', '%m/%d/%Y': check which one the "
        "export uses (day or month first)"
    )
    assert report.rows_converted == 1


def test_an_export_nothing_of_which_converts_says_why_in_the_error(tmp_path: Path) -> None:
    with pytest.raises(DataPackError) as info:
        _plain(tmp_path, "cust,day,qty,amt\nC1,05.01.2024,1,10.0\nC2,,1,10.0\n")
    text = str(info.value)
    assert text.startswith("sales.csv: none of the 2 rows could be converted (1 rows bad_date: ")
    assert "they all read with --date-format '%d.%m.%Y'" in text
    assert "1 rows missing_value: a mapped required field" in text
    assert text.endswith("pack.refused.csv for each row's reasons")


def test_a_unit_price_gives_the_line_amount(tmp_path: Path) -> None:
    text = (
        "cust,day,qty,price\n"
        "C1,2024-01-02,3,19.99\n"
        "C1,2024-01-03,-1,19.99\n"  # a return: the amount is negative with the quantity
        "C2,2024-01-04,2,-5.00\n"  # a negative unit price: refused, never flipped
        "C2,2024-01-05,1,\n"
    )
    mapping = {"customer_id": "cust", "date": "day", "quantity": "qty", "unit_price": "price"}
    report = _plain(tmp_path, text, mapping=mapping)
    sell = read_pack(report.pack).read_table("sell_through")
    assert sell[["quantity", "net_amount"]].values.tolist() == [[3, 59.97], [-1, -19.99]]
    refused = {r.reason: r.sample_rows for r in report.refused}
    assert refused == {"sign_mismatch": [3], "missing_value": [4]}
    assert report.derived["sell_through.net_amount"] == "quantity x unit price ('price')"
    products = read_pack(report.pack).read_table("products")
    assert products["list_price"].tolist() == [19.99]


def test_amount_or_unit_price_is_mapped_not_both() -> None:
    assert parse_mapping("customer_id=a,date=b,quantity=c,unit_price=d")["unit_price"] == "d"
    with pytest.raises(DataPackError, match=r"map amount .* or unit_price .*, not both"):
        parse_mapping("customer_id=a,date=b,quantity=c,amount=d,unit_price=e")
    with pytest.raises(DataPackError, match=r"missing amount; .* amount or unit_price"):
        parse_mapping("customer_id=a,date=b,quantity=c")


def test_a_spreadsheet_export_in_cp1252_with_semicolons_and_decimal_commas(tmp_path: Path) -> None:
    text = "Kunde;Datum;Menge;Betrag;Warengruppe\nK1;05.01.2024;1;1.299,00;Zubehör\nK2;06.01.2024;2;10,5;Toner\n"
    args = dict(
        raw=text.encode("cp1252"),
        mapping={k: v for k, v in MAP.items() if k != "sku"},
        category_map={"Zubehör": "accessory"},
    )
    # read as UTF-8 it cannot be: the error names the byte and the option
    with pytest.raises(DataPackError, match=r"not utf-8 text \(byte 0xf6 .*--encoding cp1252"):
        _convert(tmp_path, **args)
    # the separator is the header's; the encoding is the user's to name
    report = _convert(tmp_path, encoding="cp1252", **args)
    sell = read_pack(report.pack).read_table("sell_through")
    assert sell["net_amount"].tolist() == [1299.0, 10.5]
    products = read_pack(report.pack).read_table("products")
    assert sorted(products["category"]) == ["accessory", "supplies"]


def test_sniff_delimiter_takes_the_separator_that_splits_the_header_most(tmp_path: Path) -> None:
    from amplify_ml.datapack.from_transactions import sniff_delimiter

    cases = {
        "a,b,c\n": ",",
        "a;b;c\n": ";",
        "a\tb\tc\n": "\t",
        "a|b\n": "|",
        '"x;y",b,c\n': ",",  # a quoted separator is a name's
        "alone\n": ",",
    }
    for i, (header, expected) in enumerate(cases.items()):
        f = tmp_path / f"{i}.csv"
        f.write_text(header + "1\n", encoding="utf-8")
        assert sniff_delimiter(f) == expected, header


@pytest.mark.parametrize(
    ("decimal", "amount", "quantity", "read"),
    [
        (".", "1,299.50", "1,000", (1000, 1299.5)),
        (".", "10,0", "1", None),  # a decimal comma under --decimal .: refused, never 100
        (".", "12,34,5", "1", None),
        (",", "1.299,50", "1.000", (1000, 1299.5)),
        (",", "10.5", "1", None),  # a decimal point under --decimal ,: refused, never 105
        (".", "10", "1,5", None),  # a quantity of 1,5 is not 15
        (".", ".5", "2", (2, 0.5)),
        (",", "-3,25", "-1", (-1, -3.25)),  # a return
    ],
)
def test_numbers_are_read_only_as_written_with_the_decimal_mark(
    tmp_path: Path, decimal: str, amount: str, quantity: str, read: tuple | None
) -> None:
    text = f'cust,day,qty,amt\nC1,2024-01-02,"{quantity}","{amount}"\nC2,2024-01-03,1,1\n'
    report = _plain(tmp_path, text, decimal=decimal)
    sell = read_pack(report.pack).read_table("sell_through")
    first = sell[sell["account_id"] == "C1"]
    if read is None:
        assert first.empty
        assert {r.reason for r in report.refused} & {"bad_amount", "bad_quantity"}
    else:
        assert first[["quantity", "net_amount"]].values.tolist() == [list(read)]
