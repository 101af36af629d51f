"""Benchmark: validation and ingestion throughput and peak memory on a synthetic world.

Baseline in the same run: copying the same pack files into Parquet with DuckDB and no
checks at all, the floor cost of moving the data. The ratio says what validation, the
consent and privacy rules, quarantine and supersede cost on top.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from amplify_ml.bench import measure, synthetic_world, write_result


def _ingest_world(world: str, lake_root: str, memory_limit: str) -> dict[str, Any]:
    from amplify_ml.datapack.ingest import ingest_pack
    from amplify_ml.errors import DataPackError
    from amplify_ml.lake import Lake

    lake = Lake(lake_root)
    packs = sorted(Path(world, "packs").iterdir(), key=lambda p: (p.name != "vendor", p.name))
    rows = loaded = quarantined = refused = 0
    for p in packs:
        try:
            r = ingest_pack(p, lake, memory_limit=memory_limit)
        except DataPackError:
            refused += 1
            continue
        rows += r.rows_read
        loaded += sum(t.loaded for t in r.tables.values())
        quarantined += sum(t.quarantined for t in r.tables.values())
    return {
        "packs": len(packs),
        "refused": refused,
        "rows": rows,
        "loaded": loaded,
        "quarantined": quarantined,
    }


def _copy_world(world: str, out: str, memory_limit: str) -> dict[str, Any]:
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET memory_limit = '{memory_limit}'")
    rows = 0
    Path(out).mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(sorted(Path(world, "packs").rglob("*.parquet"))):
        src = f"read_parquet('{f}')"
        rows += con.execute(f"SELECT count(*) FROM {src}").fetchone()[0]
        con.execute(
            f"COPY (SELECT * FROM {src}) TO '{out}/{i}.parquet' (FORMAT parquet, COMPRESSION zstd)"
        )
    return {"rows": rows}


def run(scale: str, workspace: Path, *, seed: int = 7, memory_limit: str = "6GB") -> dict[str, Any]:
    """Generate (or reuse) the world at ``scale``, then time ingestion against a plain copy."""
    base = workspace / "bench"
    world = synthetic_world(base, scale, seed)
    lake_root = base / f"lake-{scale}"
    copy_root = base / f"copy-{scale}"
    shutil.rmtree(lake_root, ignore_errors=True)
    shutil.rmtree(copy_root, ignore_errors=True)
    ingest = measure(_ingest_world, str(world), str(lake_root), memory_limit)
    baseline = measure(_copy_world, str(world), str(copy_root), memory_limit)
    shutil.rmtree(copy_root, ignore_errors=True)
    rows = ingest["result"]["rows"]
    result = {
        "benchmark": "ingest",
        "scale": scale,
        "memory_limit": memory_limit,
        "ingest": {
            **ingest["result"],
            "seconds": round(ingest["seconds"], 2),
            "rows_per_second": round(rows / ingest["seconds"]),
            "peak_mib": round(ingest["peak_mib"]),
        },
        "baseline_plain_copy": {
            **baseline["result"],
            "seconds": round(baseline["seconds"], 2),
            "rows_per_second": round(baseline["result"]["rows"] / baseline["seconds"]),
            "peak_mib": round(baseline["peak_mib"]),
        },
    }
    result["ingest_time_vs_plain_copy"] = round(ingest["seconds"] / baseline["seconds"], 2)
    path = write_result(base / f"ingest-{scale}.json", result)
    i, b = result["ingest"], result["baseline_plain_copy"]
    print(
        f"ingest  {scale}: {i['rows']:,} rows in {i['seconds']} s = {i['rows_per_second']:,} rows/s, "
        f"peak {i['peak_mib']} MiB ({i['packs']} packs, {i['refused']} refused, "
        f"{i['quarantined']:,} rows quarantined)"
    )
    print(
        f"baseline plain copy: {b['rows']:,} rows in {b['seconds']} s = {b['rows_per_second']:,} rows/s, "
        f"peak {b['peak_mib']} MiB"
    )
    print(f"ingest takes {result['ingest_time_vs_plain_copy']}x the plain copy; figures in {path}")
    return result
