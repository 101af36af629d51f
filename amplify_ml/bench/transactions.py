"""Benchmark: converting a plain transactions export (``amplify pack from-transactions``).

The export is generated, seeded: ``rows`` invoice lines of a retailer's customers over two
years, in the shape of a common retail export (invoice number, stock code, quantity, a date
with a time of day, unit price, customer id; one line in twenty has no customer and is
refused). The conversion reads it batch by batch into a scratch database on disk, under
DuckDB's memory cap.

Baseline in the same run: the same conversion without a memory cap (DuckDB's default, 80 % of
the machine's memory), which holds what it works on in memory as the converter did before it
had a scratch database. Its peak grows with the export; the capped one's should stay near the
cap. For scale, the peak of merely reading the export into memory as text (pyarrow) is shown
too. Printed, and written to ``<workspace>/bench/transactions-<rows>.json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from amplify_ml.bench import measure, write_result

MAPPING = {
    "customer_id": "CustomerID",
    "date": "InvoiceDate",
    "quantity": "Quantity",
    "unit_price": "UnitPrice",
    "sku": "StockCode",
}
_CHUNK = 500_000


def write_export(path: Path, rows: int, *, seed: int = 7) -> Path:
    """Write ``rows`` invoice lines as CSV (written once, then reused for the same rows and
    seed)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    if path.exists():
        return path
    rng = np.random.default_rng(seed)
    customers = 12346 + np.arange(max(rows // 300, 10))
    weight = rng.lognormal(0.0, 1.2, len(customers))
    weight /= weight.sum()
    start = np.datetime64("2022-01-01T00:00", "m")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".partial")
    writer = None
    for lo in range(0, rows, _CHUNK):
        n = min(_CHUNK, rows - lo)
        line = np.arange(lo, lo + n)
        minutes = rng.integers(0, 730, n) * 1440 + rng.integers(7 * 60, 19 * 60, n)
        when = pa.array((start + minutes.astype("timedelta64[m]")).astype("datetime64[s]"))
        customer = pa.array(rng.choice(customers, n, p=weight).astype(str))
        quantity = rng.choice([1, 2, 3, 4, 6, 12, 24], n) * np.where(rng.random(n) < 0.02, -1, 1)
        table = pa.table(
            {
                "InvoiceNo": pa.array((500000 + line // 12).astype(str)),
                "StockCode": pa.array(
                    np.char.add("SKU", rng.zipf(1.4, n).clip(1, 4000).astype(str))
                ),
                "Quantity": pa.array(quantity.astype(str)),
                "InvoiceDate": pc.strftime(when, format="%m/%d/%Y %H:%M"),
                "UnitPrice": pa.array(np.round(rng.lognormal(1.0, 0.8, n), 2).astype(str)),
                "CustomerID": pc.if_else(pa.array(rng.random(n) < 0.05), "", customer),
            }
        )
        if writer is None:
            writer = pacsv.CSVWriter(
                str(tmp), table.schema, write_options=pacsv.WriteOptions(quoting_style="none")
            )
        writer.write_table(table)
    assert writer is not None
    writer.close()
    tmp.rename(path)
    return path


def _convert(src: str, out: str, memory_limit: str | None) -> dict[str, Any]:
    from amplify_ml.datapack.from_transactions import pack_from_transactions

    report = pack_from_transactions(
        src,
        out,
        partner_id="RETAIL",
        mapping=MAPPING,
        country="GB",
        currency="GBP",
        consent=True,
        defaults={
            "channel": "online",
            "employee_band": "1-9",
            "category": "accessory",
            "track": "synergy",
        },
        date_format="%m/%d/%Y",
        memory_limit=memory_limit,
    )
    return {"rows": report.rows_read, "converted": report.rows_converted}


def _read_whole(src: str) -> dict[str, Any]:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    from amplify_ml.datapack.pack import csv_header

    text = {c: pa.string() for c in csv_header(Path(src))}
    table = pacsv.read_csv(src, convert_options=pacsv.ConvertOptions(column_types=text))
    return {"rows": table.num_rows, "arrow_mib": round(table.nbytes / 2**20)}


def run(rows: int, workspace: Path, *, seed: int = 7, memory_limit: str = "1GB") -> dict[str, Any]:
    """Generate (or reuse) an export of ``rows`` lines, then convert it and read it whole."""
    import shutil

    base = workspace / "bench"
    src = write_export(base / f"transactions-{rows}-{seed}.csv", rows, seed=seed)
    out = base / f"transactions-pack-{rows}"
    shutil.rmtree(out, ignore_errors=True)
    convert = measure(_convert, str(src), str(out), memory_limit)
    shutil.rmtree(out, ignore_errors=True)
    baseline = measure(_convert, str(src), str(out), None)
    shutil.rmtree(out, ignore_errors=True)
    out.with_name(out.name + ".refused.csv").unlink(missing_ok=True)
    read = measure(_read_whole, str(src))
    mib = src.stat().st_size / 2**20

    def side(m: dict[str, Any]) -> dict[str, Any]:
        return {
            **m["result"],
            "seconds": round(m["seconds"], 2),
            "rows_per_second": round(m["result"]["rows"] / m["seconds"]),
            "peak_mib": round(m["peak_mib"]),
        }

    result = {
        "benchmark": "transactions",
        "rows": rows,
        "export_mib": round(mib),
        "memory_limit": memory_limit,
        "convert": side(convert),
        "baseline_no_cap": side(baseline),
        "read_whole": side(read),
    }
    result["peak_vs_no_cap"] = round(convert["peak_mib"] / baseline["peak_mib"], 2)
    result["time_vs_no_cap"] = round(convert["seconds"] / baseline["seconds"], 2)
    path = write_result(base / f"transactions-{rows}.json", result)
    c, b, r = result["convert"], result["baseline_no_cap"], result["read_whole"]
    for label, x in ((f"cap {memory_limit}", c), ("baseline, no cap", b)):
        print(
            f"convert {rows:,} lines ({result['export_mib']} MiB), {label}: {x['converted']:,} "
            f"converted in {x['seconds']} s = {x['rows_per_second']:,} rows/s, "
            f"peak {x['peak_mib']} MiB"
        )
    print(
        f"for scale, reading the export whole as text: {r['seconds']} s, peak {r['peak_mib']} MiB"
    )
    print(
        f"with the cap the conversion peaks at {result['peak_vs_no_cap']}x the uncapped one's "
        f"memory and takes {result['time_vs_no_cap']}x its time; figures in {path}"
    )
    return result
