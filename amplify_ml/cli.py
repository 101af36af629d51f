"""The ``amplify`` command.

Every subcommand takes ``--workspace`` (default ``$AMPLIFY_WORKSPACE`` or ``.amplify``),
shows progress for long work, prints a short summary, and takes ``--json`` for a
machine-readable one. Exit codes: 0 done, 1 the input broke rules (reported), 2 usage or
a refused input.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from amplify_ml.config import get_settings
from amplify_ml.errors import AmplifyError, NotFoundError

app = typer.Typer(
    name="amplify",
    help="amplify_ml: predictive services from a partner's data pack.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _commands() -> None:
    # MLflow's notes at INFO (creating its database, migrating it) are not the user's business
    # on the command line; its warnings and errors still show. MLflow sets its loggers' level
    # when it is imported (later, by the command), from MLFLOW_LOGGING_LEVEL: a user's own
    # setting of it is kept
    if "MLFLOW_LOGGING_LEVEL" not in os.environ:
        os.environ["MLFLOW_LOGGING_LEVEL"] = "WARNING"
        logging.getLogger("mlflow").setLevel(logging.WARNING)


# Wide tables when the output is a file or a pipe (a terminal sets its own width).
console = Console(stderr=True, soft_wrap=True, width=None if sys.stderr.isatty() else 160)
out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 160)

Workspace = Annotated[
    Path | None,
    typer.Option(
        "--workspace",
        "-w",
        help="Folder for generated output (lake, MLflow, scores). Default: $AMPLIFY_WORKSPACE or .amplify",
        show_default=False,
    ),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print a machine-readable JSON summary.")]


def _workspace(path: Path | None) -> Path:
    ws = path or get_settings().workspace
    ws.mkdir(parents=True, exist_ok=True)
    return ws


def _emit_json(data: Any) -> None:
    out.print_json(json.dumps(data, default=str))


@contextmanager
def _progress(enabled: bool = True) -> Iterator[Callable[[str, int, int], None]]:
    """A callback ``(step, done, total)`` drawing one bar per step on stderr."""
    if not enabled or not console.is_terminal:
        last: dict[str, float] = {}

        def plain(step: str, done: int, total: int) -> None:
            now = time.monotonic()
            if done >= total or now - last.get(step, 0.0) > 5:
                last[step] = now
                console.print(f"  {step}: {done}/{total}", highlight=False)

        yield plain
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        tasks: dict[str, Any] = {}

        def update(step: str, done: int, total: int) -> None:
            if step not in tasks:
                tasks[step] = progress.add_task(step, total=total)
            progress.update(tasks[step], completed=done, total=total)

        yield update


def _fail(exc: AmplifyError) -> None:
    console.print(f"[bold red]error:[/] {exc.message}", highlight=False)
    raise typer.Exit(2)


@app.command()
def synth(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder to write the world into.")],
    scale: Annotated[str, typer.Option(help="tiny, small, medium or large.")] = "small",
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same world.")] = 7,
    dirty: Annotated[
        bool, typer.Option("--dirty", help="Inject known defects and write their expected counts.")
    ] = False,
    fmt: Annotated[str, typer.Option("--format", help="parquet or csv.")] = "parquet",
    workspace: Workspace = None,
    as_json: AsJson = False,
) -> None:
    """Write a synthetic world: one pack per partner, the vendor pack and the oracle."""
    from amplify_ml.datasets import SCALES, generate

    if scale not in SCALES:
        console.print(f"[red]error:[/] unknown scale {scale!r}; choose one of {', '.join(SCALES)}")
        raise typer.Exit(2)
    if fmt not in ("parquet", "csv"):
        console.print(f"[red]error:[/] unknown format {fmt!r}; choose parquet or csv")
        raise typer.Exit(2)
    _workspace(workspace)
    try:
        with _progress(not as_json) as progress:
            world = generate(
                scale, seed=seed, out=out_dir, dirty=dirty, format=fmt, progress=progress
            )  # type: ignore[arg-type]
    except AmplifyError as exc:
        _fail(exc)
    summary = world.to_dict()
    if as_json:
        _emit_json(summary)
        return
    out.print(
        f"wrote the {scale} world (seed {seed}{', dirty' if dirty else ''}) to {out_dir} "
        f"in {summary.get('elapsed_seconds', 0):.1f} s"
    )
    out.print(f"  packs: {len(summary.get('packs', []))}; oracle: {out_dir / 'oracle'}")


def _require_packs(path: Path) -> list[Path]:
    """The pack folders at ``path``, or exit 2 with what is wrong."""
    if not path.exists():
        console.print(f"[red]error:[/] {path} does not exist")
        raise typer.Exit(2)
    from amplify_ml.datapack.ingest import pack_dirs

    dirs = pack_dirs(path)
    if not dirs:
        console.print(f"[red]error:[/] no pack (folder with manifest.json) in {path}")
        raise typer.Exit(2)
    return dirs


@app.command()
def validate(
    pack: Annotated[Path, typer.Argument(help="A pack folder, or a folder of packs (a world).")],
    reference: Annotated[
        Path | None,
        typer.Option(help="The vendor pack (partners, products) the partner packs refer to."),
    ] = None,
    workspace: Workspace = None,
    as_json: AsJson = False,
) -> None:
    """Check packs against the contract; report every broken rule with table, column and rows."""
    from amplify_ml.datapack.validate import validate_pack

    dirs = _require_packs(pack)
    if reference is None:
        vendor = [d for d in dirs if d.name == "vendor"]
        reference = vendor[0] if vendor else None
    reports = []
    try:
        with _progress(not as_json and len(dirs) > 1) as progress:
            for i, d in enumerate(dirs):
                ref = None if d == reference else reference
                reports.append(validate_pack(d, reference=ref))
                progress("validate packs", i + 1, len(dirs))
    except AmplifyError as exc:
        _fail(exc)
    if as_json:
        _emit_json([r.to_dict() for r in reports])
    else:
        for r in reports:
            out.print(r.summary(), highlight=False)
    if any(r.errors for r in reports):
        raise typer.Exit(1)


@app.command()
def contract(as_json: AsJson = False) -> None:
    """Print the data-pack contract v1: tables, columns, types, keys."""
    from amplify_ml.datapack.contract import TABLES, describe_contract

    rows = describe_contract()
    if as_json:
        _emit_json(rows)
        return
    for name, schema in TABLES.items():
        t = Table(title=f"{name} ({schema.owner}{', required' if schema.required else ''})")
        for head in ("column", "type", "nullable", "key", "values / meaning"):
            t.add_column(head)
        for r in rows:
            if r["table"] == name:
                t.add_row(
                    str(r["column"]),
                    str(r["type"]),
                    "yes" if r["nullable"] else "",
                    "pk" if r["key"] else "",
                    str(r["enum"] or r["description"] or ""),
                )
        out.print(t)


def _ingest_table(reports: list[Any]) -> Table:
    """Per table over all ingested packs: rows read, loaded, quarantined by reason, superseded."""
    from amplify_ml.datapack.contract import TABLES

    agg: dict[str, dict[str, Any]] = {}
    for r in reports:
        for name, t in r.tables.items():
            a = agg.setdefault(
                name, {"read": 0, "loaded": 0, "quarantined": 0, "superseded": 0, "reasons": {}}
            )
            for k in ("read", "loaded", "quarantined", "superseded"):
                a[k] += getattr(t, k)
            for reason, n in t.reasons.items():
                a["reasons"][reason] = a["reasons"].get(reason, 0) + n
    table = Table(title="ingested into the lake")
    for head in ("table", "read", "loaded", "quarantined", "superseded", "quarantined by reason"):
        table.add_column(
            head, justify="left" if head.startswith(("table", "quarantined by")) else "right"
        )
    for name in TABLES:
        if name in agg:
            a = agg[name]
            reasons = ", ".join(f"{k} {v:,}" for k, v in sorted(a["reasons"].items()))
            table.add_row(
                name,
                f"{a['read']:,}",
                f"{a['loaded']:,}",
                f"{a['quarantined']:,}",
                f"{a['superseded']:,}",
                reasons,
            )
    return table


def _ingest_dirs(
    dirs: list[Path], ws: Path, progress: Callable[[str, int, int], None]
) -> tuple[list[Any], list[tuple[str, str]]]:
    """Ingest packs in order; refused packs are collected with their reason, not raised."""
    from amplify_ml.datapack.ingest import ingest_packs
    from amplify_ml.lake import Lake

    return ingest_packs(
        dirs,
        Lake.in_workspace(ws),
        memory_limit=get_settings().duckdb_memory_limit,
        progress=progress,
    )


@app.command()
def ingest(
    pack: Annotated[Path, typer.Argument(help="A pack folder, or a folder of packs (a world).")],
    workspace: Workspace = None,
    as_json: AsJson = False,
) -> None:
    """Validate packs, apply consent and privacy rules, load them into the lake, quarantine the rest."""
    dirs = _require_packs(pack)
    ws = _workspace(workspace)
    try:
        with _progress(not as_json and len(dirs) > 1) as progress:
            reports, refused = _ingest_dirs(dirs, ws, progress)
    except AmplifyError as exc:
        _fail(exc)
    if as_json:
        _emit_json(
            {
                "packs": [r.to_dict() for r in reports],
                "refused": [{"pack": n, "reason": m} for n, m in refused],
            }
        )
    else:
        out.print(_ingest_table(reports))
        for r in reports:
            if r.status == "unchanged":
                out.print(f"{r.pack}: already in the lake, nothing changed", highlight=False)
            for w in r.withdrawn_partners:
                out.print(
                    f"[yellow]consent withdrawn:[/] partner {w}'s rows were taken out of the lake"
                )
        for name, message in refused:
            out.print(f"[yellow]refused[/] {name}: {message}", highlight=False)
        total = sum(r.rows_read for r in reports)
        secs = sum(r.elapsed_seconds for r in reports)
        out.print(f"{len(reports)} packs, {total:,} rows in {secs:.1f} s into {ws / 'lake'}")
    if refused:
        raise typer.Exit(2 if len(dirs) == 1 else 1)


pack_app = typer.Typer(help="Build data packs from other exports.", no_args_is_help=True)
app.add_typer(pack_app, name="pack")


@pack_app.command("from-transactions")
def from_transactions(
    file: Annotated[
        Path, typer.Argument(help="The partner's transactions export (CSV, header row).")
    ],
    partner: Annotated[
        str, typer.Option("--partner", help="The partner id (as in the vendor's partners table).")
    ],
    mapping: Annotated[
        str,
        typer.Option(
            "--map",
            help="FIELD=COLUMN pairs: customer_id, date, quantity, amount (required; or unit_price, "
            "amount = quantity x unit price); sku, category, line_id, currency, channel, country, "
            "industry, employee_band, family (optional).",
        ),
    ],
    country: Annotated[
        str,
        typer.Option(
            help="The partner's country, ISO 3166-1 alpha-2 (also the accounts' default)."
        ),
    ],
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", help="Pack folder to write (default: <workspace>/packs/<partner>)."),
    ] = None,
    currency: Annotated[
        str | None, typer.Option(help="ISO 4217 currency of the amounts, unless mapped.")
    ] = None,
    consent: Annotated[
        bool, typer.Option("--consent", help="Record that the partner opted in to share its data.")
    ] = False,
    defaults: Annotated[
        str | None,
        typer.Option(
            "--default",
            help="FIELD=VALUE for what the export lacks: channel, employee_band, category, track, industry, family.",
        ),
    ] = None,
    category_map: Annotated[
        str | None, typer.Option(help="LABEL=CATEGORY pairs for the export's own category labels.")
    ] = None,
    name: Annotated[str | None, typer.Option(help="The partner's company name.")] = None,
    date_format: Annotated[
        str,
        typer.Option(
            help="strptime format of the dates, e.g. %d.%m.%Y; a time of day after the date "
            "(and a UTC offset) is read without one."
        ),
    ] = "%Y-%m-%d",
    decimal: Annotated[str, typer.Option(help="Decimal mark of the amounts: . or ,")] = ".",
    encoding: Annotated[
        str, typer.Option(help="Text encoding of the export, e.g. cp1252 or latin-1.")
    ] = "utf-8",
    delimiter: Annotated[
        str | None,
        typer.Option(
            help="Field separator (default: whichever of , ; tab | splits the header into most "
            "columns); \\t for tab."
        ),
    ] = None,
    workspace: Workspace = None,
    as_json: AsJson = False,
) -> None:
    """Turn a plain transactions export into a valid minimal pack (partners, products, accounts, sell_through)."""
    from amplify_ml.datapack.from_transactions import (
        pack_from_transactions,
        parse_defaults,
        parse_mapping,
        parse_pairs,
    )

    ws = _workspace(workspace)
    target = out_dir or ws / "packs" / partner
    try:
        report = pack_from_transactions(
            file,
            target,
            partner_id=partner,
            mapping=parse_mapping(mapping),
            country=country,
            currency=currency,
            consent=consent,
            defaults=parse_defaults(defaults),
            category_map=parse_pairs(category_map, "--category-map"),
            name=name,
            date_format=date_format,
            decimal=decimal,
            encoding=encoding,
            delimiter="\t" if delimiter == "\\t" else delimiter,
            memory_limit=get_settings().duckdb_memory_limit,
        )
    except AmplifyError as exc:
        _fail(exc)
    if as_json:
        _emit_json(report.to_dict())
        return
    out.print(
        f"wrote {target}: {report.rows_converted:,} of {report.rows_read:,} rows converted "
        f"({', '.join(f'{t} {n:,}' for t, n in report.tables.items())})",
        highlight=False,
    )
    for r in report.refused:
        rows = ", ".join(map(str, r.sample_rows)) + (" ..." if r.rows > len(r.sample_rows) else "")
        out.print(
            f"  refused {r.rows:,} rows ({r.reason}; rows {rows}): {r.message}", highlight=False
        )
    if report.refused_file:
        out.print(f"  refused rows with their reasons: {report.refused_file}", highlight=False)
    for k, v in report.defaults.items():
        out.print(f"  default {k} = {v}", highlight=False)
    out.print(f"next: amplify ingest {target}", highlight=False)


@app.command()
def demo(
    scale: Annotated[str, typer.Option(help="World scale for the demo.")] = "small",
    seed: Annotated[int, typer.Option(help="Random seed.")] = 7,
    fresh: Annotated[bool, typer.Option("--fresh", help="Regenerate the world.")] = False,
    partner: Annotated[
        str | None,
        typer.Option(help="The partner whose lead list and fleet to show (default: the first)."),
    ] = None,
    train_cutoffs: Annotated[
        int | None,
        typer.Option(
            "--train-cutoffs",
            min=2,
            help="Monthly training cutoffs of every backtest (default: each model's own plan).",
        ),
    ] = None,
    eval_cutoffs: Annotated[
        int | None,
        typer.Option(
            "--eval-cutoffs",
            min=1,
            help="Monthly evaluation cutoffs of every backtest (default: each model's own plan).",
        ),
    ] = None,
    no_serve: Annotated[
        bool, typer.Option("--no-serve", help="Stop after the lists: do not start the API.")
    ] = False,
    host: Annotated[str | None, typer.Option(help="API bind address (default: setting).")] = None,
    port: Annotated[int | None, typer.Option(help="API port (default: setting).")] = None,
    workspace: Workspace = None,
    as_json: AsJson = False,
) -> None:
    """The main job end to end, in <workspace>/demo: synthesise (or reuse) a world, ingest it,
    train and backtest the four models against baselines and the oracle, register them in
    MLflow, score, print the results and a partner's lead list, then serve the API."""
    from mlflow.utils.logging_utils import disable_logging, enable_logging

    from amplify_ml.datasets import SCALES
    from amplify_ml.demo import DemoPlan, DemoResult, run_demo

    if scale not in SCALES:
        console.print(f"[red]error:[/] unknown scale {scale!r}; choose one of {', '.join(SCALES)}")
        raise typer.Exit(2)
    settings = get_settings()
    # The demo works in its own workspace, <workspace>/demo, and rebuilds everything it
    # derives from the world on each run, so it never touches a lake of real packs.
    ws = _workspace(workspace) / "demo"
    started = time.monotonic()

    def say(text: str) -> None:
        if not as_json:
            console.print(f"[bold]{text[:3]}[/]{text[3:]}" if text[1:2] == "/" else f"  {text}")

    # the progress bars close before the summary is printed (and serving starts)
    bars = ExitStack()
    progress = bars.enter_context(_progress(not as_json))

    def ready(result: DemoResult) -> None:
        bars.close()
        result.timings["total"] = time.monotonic() - started
        if as_json:
            _emit_json(result.to_dict())
        else:
            _print_demo(result, serving=not no_serve)

    disable_logging()  # MLflow's own event lines; the summary says what was registered
    try:
        run_demo(
            ws,
            scale=scale,
            seed=seed,
            fresh=fresh,
            plan=DemoPlan(train_cutoffs, eval_cutoffs),
            partner=partner,
            serve=not no_serve,
            host=host or settings.host,
            port=port or settings.port,
            memory_limit=settings.duckdb_memory_limit,
            progress=progress,
            say=say,
            ready=ready,
        )
    except AmplifyError as exc:
        _fail(exc)
    finally:
        bars.close()
        enable_logging()


def _fmt_metric(v: float, digits: int = 3) -> str:
    return "-" if v != v else f"{v:.{digits}f}"


def _print_demo(result: Any, *, serving: bool) -> None:
    """The demo's summary: models against baselines and the oracle, a lead list, supplies and
    fleet, where to look next."""
    from amplify_ml.modeling.train import interval_line

    ing = result.ingest
    out.print(_ingest_table(ing.reports))
    for name, message in ing.refused:
        out.print(f"[yellow]refused[/] {name}: {message}", highlight=False)
    for name, m in result.models.items():
        h = m.headline
        r = m.result
        served = result.scores.results.get(name)
        verdict = (
            "promoted to champion"
            if r.promoted
            else "not promoted (the gate refused it)"
            + (f"; the champion stays version {served.version}" if served else "")
        )
        table = Table(
            title=f"{name}: version {r.version}, {verdict}",
            caption=f"{m.plan}; evaluated on {len(r.backtest.evaluate):,} rows at "
            + ", ".join(str(c) for c in r.backtest.split.evaluate),
        )
        table.add_column("scorer")
        table.add_column(h.label, justify="right")
        table.add_column(h.skill_label, justify="right")
        for row in h.rows:
            label = row.scorer if row.scorer != h.best_baseline else f"{row.scorer} (best baseline)"
            table.add_row(label, _fmt_metric(row.value), _fmt_metric(row.skill))
        out.print(table)
        if (line := interval_line(r.backtest)) is not None:
            out.print(f"  {line}", highlight=False)
        if r.final is not None:
            c = r.final.cutoffs
            out.print(
                f"  the version is refit on all {len(c)} cutoffs with complete labels, {c[0]}.."
                f"{c[-1]}; the figures above are the backtest's",
                highlight=False,
            )
        out.print("  gate: " + "; ".join(r.gate.reasons), highlight=False)
    for name, why in result.scores.skipped.items():
        out.print(f"[yellow]not scored[/] {name}: {why}", highlight=False)
    sc = result.scores.results
    if sc:
        day = next(iter(sc.values())).as_of
        out.print(
            f"scored as of {day}: "
            + ", ".join(f"{n} {r.rows:,} rows (version {r.version})" for n, r in sc.items()),
            highlight=False,
        )
    lists = result.lists
    if lists.leads is not None:
        table = Table(title=f"{lists.partner}: top {len(lists.leads)} leads")
        for c in ("rank", "account_id", "offer", "category", "recommended_sku", "probability"):
            table.add_column(c, justify="right" if c in ("rank", "probability") else "left")
        table.add_column("expected value", justify="right")
        table.add_column("reason")
        for r in lists.leads.itertuples(index=False):
            table.add_row(
                str(r.rank),
                str(r.account_id),
                str(r.offer),
                str(r.category),
                str(r.recommended_sku),
                f"{r.probability:.2f}",
                f"{r.expected_value:,.0f}",
                str(r.reason_1 or ""),
            )
        out.print(table)
    elif "leads" in lists.skipped:
        out.print(f"[yellow]no lead list:[/] {lists.skipped['leads']}", highlight=False)
    out.print(lists.supplies_line(), highlight=False)
    out.print(lists.fleet_line(), highlight=False)
    ws = result.workspace
    out.print(f"\nworkspace: {ws} (world, lake, MLflow store, scores, cards, training sets)")
    out.print(f"MLflow UI: {result.mlflow_ui()}", highlight=False)
    api = result.serving
    if api is not None and api.available:
        for label, url in api.urls.items():
            out.print(f"{label}: {url}", highlight=False)
        for p, key in api.keys.items():
            out.print(f"API key for {p}: {key}", highlight=False)
        out.print(
            api.message if serving else "the API was not started (--no-serve)", highlight=False
        )
    elif api is not None:
        out.print(f"[yellow]{api.message}[/]", highlight=False)
    t = result.timings
    out.print(
        "time: "
        + ", ".join(f"{k} {v:.0f} s" for k, v in t.items() if k != "total")
        + f"; total {t.get('total', sum(t.values())):.0f} s",
        highlight=False,
    )


lake_app = typer.Typer(
    help="Look into the lake: packs ingested, tables, quarantine.", no_args_is_help=True
)
app.add_typer(lake_app, name="lake")


@lake_app.command("packs")
def lake_packs(workspace: Workspace = None, as_json: AsJson = False) -> None:
    """Packs ingested, oldest first, with their fingerprints and row counts."""
    from amplify_ml.lake import Lake

    lake = Lake.in_workspace(_workspace(workspace))
    snap = lake.snapshot()
    if as_json:
        _emit_json(
            {
                "version": snap.version,
                "packs": snap.packs,
                "withdrawn_partners": snap.withdrawn_partners,
            }
        )
        return
    t = Table(title=f"packs in {lake.root} (snapshot {snap.version})")
    for head in (
        "pack id",
        "source",
        "created",
        "ingested",
        "rows read",
        "loaded",
        "quarantined",
        "manifest sha256",
    ):
        t.add_column(head)
    for p in snap.packs:
        tables = p["tables"].values()
        t.add_row(
            p["pack_id"],
            p["source"],
            p["created_at"],
            p["ingested_at"],
            f"{sum(x['read'] for x in tables):,}",
            f"{sum(x['loaded'] for x in tables):,}",
            f"{sum(x['quarantined'] for x in tables):,}",
            p["manifest_sha256"][:12],
        )
    out.print(t)
    if snap.withdrawn_partners:
        out.print(f"consent withdrawn (rows taken out): {', '.join(snap.withdrawn_partners)}")


@lake_app.command("quarantine")
def lake_quarantine(
    table: Annotated[str, typer.Argument(help="A contract table, e.g. sell_through.")],
    partner: Annotated[str | None, typer.Option(help="Only this partner's rows.")] = None,
    limit: Annotated[int, typer.Option(help="Rows to show.")] = 20,
    workspace: Workspace = None,
    as_json: AsJson = False,
) -> None:
    """Rejected rows of a table, as text, with their reasons (personal data redacted)."""
    from amplify_ml.datapack.contract import table_schema
    from amplify_ml.lake import Lake

    try:
        table_schema(table)
    except AmplifyError as exc:
        _fail(exc)
    lake = Lake.in_workspace(_workspace(workspace))
    df = lake.quarantine(table, [partner] if partner else None)
    if as_json:
        _emit_json(json.loads(df.head(limit).to_json(orient="records", date_format="iso")))
        return
    if df.empty:
        out.print(f"no quarantined rows in {table}")
        return
    out.print(f"{len(df):,} quarantined rows in {table}; the first {min(limit, len(df))}:")
    out.print(df.head(limit).to_string(index=False), highlight=False)


@app.command()
def build(
    model: Annotated[
        str,
        typer.Argument(
            help="propensity_to_buy, refresh_due, consumable_depletion or device_failure."
        ),
    ],
    cutoff: Annotated[
        list[str],
        typer.Option(
            help="A cutoff date (repeat for more), or START:END for every month start "
            "in between, e.g. 2025-01-01:2025-12-01."
        ),
    ],
    out_file: Annotated[Path, typer.Option("--out", help="Parquet file to write.")],
    engine: Annotated[str, typer.Option(help="duckdb or spark.")] = "duckdb",
    horizon_days: Annotated[
        int | None, typer.Option(help="Label horizon in days (default: the model's).")
    ] = None,
    as_known: Annotated[
        bool, typer.Option("--as-known", help="Also hide rows ingested after each cutoff.")
    ] = False,
    partner: Annotated[
        list[str] | None, typer.Option(help="Only this partner's rows (repeatable).")
    ] = None,
    workspace: Workspace = None,
    as_json: AsJson = False,
) -> None:
    """Build a model's point-in-time training set from the lake and write it as Parquet.

    The metadata (feature-set spec, builders used and skipped, rows, data fingerprint) goes
    inside the file and beside it as FILE.meta.json.
    """
    import warnings

    from amplify_ml.features import FeatureWarning, training_set, write_training_set
    from amplify_ml.features.cutoffs import expand_cutoffs

    ws = _workspace(workspace)
    lake = _lake_or_exit(ws)
    try:
        cutoffs = expand_cutoffs(cutoff)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", FeatureWarning)
            df, meta = training_set(
                model,
                lake,
                cutoffs=cutoffs,
                horizon_days=horizon_days,
                as_known=as_known,
                partners=partner or None,
                engine=engine,  # type: ignore[arg-type]
                memory_limit=get_settings().duckdb_memory_limit,
            )
    except AmplifyError as exc:
        _fail(exc)
    path = write_training_set(df, meta, out_file)
    summary = {
        "model": model,
        "out": str(path),
        "rows": meta.rows,
        "features": len(meta.features),
        "cutoffs": meta.cutoffs,
        "positives": meta.positives,
        "builders_used": [b["builder"] for b in meta.builders_used],
        "builders_skipped": meta.builders_skipped,
        "notes": meta.notes,
        "seconds": meta.seconds,
    }
    if as_json:
        _emit_json(summary)
        return
    for w in caught:
        if issubclass(w.category, FeatureWarning):
            console.print(f"[yellow]warning:[/] {w.message}", highlight=False)
    out.print(
        f"{model}: {meta.rows:,} rows x {len(meta.features)} features over "
        f"{len(meta.cutoffs)} cutoff(s) in {meta.seconds:.1f} s -> {path}",
        highlight=False,
    )
    if meta.positives is not None:
        out.print(f"  positives: {meta.positives:,}", highlight=False)
    for sk in meta.builders_skipped:
        out.print(f"  skipped {sk['builder']}: {sk['reason']}", highlight=False)


def _cutoff_arg(values: list[str] | None) -> int | list[str] | None:
    """``--train-cutoffs``/``--eval-cutoffs``: a count of monthly cutoffs, or dates/ranges."""
    if not values:
        return None
    if len(values) == 1 and values[0].isdigit():
        return int(values[0])
    return list(values)


TrainCutoffs = Annotated[
    list[str] | None,
    typer.Option(
        "--train-cutoffs",
        help="Training cutoffs: a number of monthly cutoffs before the evaluation ones, or "
        "dates / START:END ranges (repeatable). Default: the model spec's.",
    ),
]
EvalCutoffs = Annotated[
    list[str] | None,
    typer.Option(
        "--eval-cutoffs",
        help="Evaluation cutoffs: the number of latest monthly cutoffs with complete labels, "
        "or dates / START:END ranges (repeatable). Default: the model spec's.",
    ),
]
HorizonDays = Annotated[
    int | None, typer.Option("--horizon-days", help="Label horizon (default: the spec's).")
]
Oracle = Annotated[
    Path | None,
    typer.Option(
        help="A synthetic world's folder (or its oracle/): adds the oracle and skill ratios."
    ),
]


def _models_arg(models: list[str] | None, all_models: bool) -> list[str]:
    from amplify_ml.features.spec import MODELS

    if all_models:
        return list(MODELS)
    if not models:
        console.print(
            f"[red]error:[/] name a model ({', '.join(MODELS)}) or pass --all", highlight=False
        )
        raise typer.Exit(2)
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        console.print(
            f"[red]error:[/] unknown model(s) {', '.join(unknown)}; the models are "
            f"{', '.join(MODELS)}",
            highlight=False,
        )
        raise typer.Exit(2)
    return models


def _lake_or_exit(ws: Path) -> Any:
    from amplify_ml.lake import Lake

    lake = Lake.in_workspace(ws)
    if not lake.exists:
        console.print(
            f"[red]error:[/] no lake in {ws}: ingest packs first (amplify ingest PACK_DIR -w {ws})",
            highlight=False,
        )
        raise typer.Exit(2)
    return lake


def _print_backtest(bt: Any) -> None:
    from amplify_ml.modeling.train import card_columns, interval_line

    t = bt.table()
    cols = [c for c in card_columns(bt) if c in t.columns]
    table = Table(title=f"{bt.model}: evaluation cutoffs {', '.join(map(str, bt.split.evaluate))}")
    table.add_column("scorer")
    for c in cols:
        table.add_column(c, justify="right")
    for scorer, row in t[cols].iterrows():
        table.add_row(str(scorer), *("-" if row[c] != row[c] else f"{row[c]:.3f}" for c in cols))
    out.print(table)
    out.print(
        f"  trained on {len(bt.train):,} rows at {len(bt.split.train)} cutoffs "
        f"{bt.split.train[0]}..{bt.split.train[-1]}; evaluated on {len(bt.evaluate):,} rows",
        highlight=False,
    )
    if (line := interval_line(bt)) is not None:
        out.print(f"  {line}", highlight=False)
    for n in bt.notes:
        out.print(f"  note: {n}", highlight=False)


@app.command()
def train(
    models: Annotated[list[str] | None, typer.Argument(help="Model(s) to train.")] = None,
    all_models: Annotated[
        bool,
        typer.Option(
            "--all",
            help="Train all four models (those whose tables are in the lake; the others "
            "are skipped with the table they need).",
        ),
    ] = False,
    train_cutoffs: TrainCutoffs = None,
    eval_cutoffs: EvalCutoffs = None,
    horizon_days: HorizonDays = None,
    oracle: Oracle = None,
    register: Annotated[
        bool, typer.Option("--register/--no-register", help="Register the version in MLflow.")
    ] = True,
    card_dir: Annotated[
        Path | None,
        typer.Option(help="Folder for MODEL_CARD.md (default: models/<name>/ beside the spec)."),
    ] = None,
    refit: Annotated[
        bool,
        typer.Option(
            "--refit/--no-refit",
            help="Serve the spec fitted again on every cutoff with complete labels (the "
            "evaluation ones too), or the backtest's model itself.",
        ),
    ] = True,
    workspace: Workspace = None,
    as_json: AsJson = False,
) -> None:
    """Backtest, fit, log to MLflow, register; the alias champion moves only if the gate passes.

    The version registered is refit on every cutoff with complete labels, so it knows the
    latest outcomes; the metrics and the gate judge the backtest's model (--no-refit serves
    that one)."""
    from amplify_ml.errors import MissingTableError
    from amplify_ml.features import FeatureBuilder
    from amplify_ml.modeling.train import train as train_model

    names = _models_arg(models, all_models)
    ws = _workspace(workspace)
    lake = _lake_or_exit(ws)
    # only each model's summary is kept: a backtest holds its training and evaluation frames,
    # and on a large lake four of them do not fit in memory together
    summaries: list[dict[str, Any]] = []
    skipped: dict[str, str] = {}
    try:
        import warnings

        limit = get_settings().duckdb_memory_limit
        with warnings.catch_warnings(), FeatureBuilder(lake, memory_limit=limit) as fb:
            warnings.simplefilter("ignore")
            for name in names:
                if not as_json:
                    console.print(f"training {name} ...", highlight=False)
                try:
                    r = train_model(
                        name,
                        lake,
                        workspace=ws,
                        builder=fb,
                        train_cutoffs=_cutoff_arg(train_cutoffs),
                        eval_cutoffs=_cutoff_arg(eval_cutoffs),
                        horizon_days=horizon_days,
                        oracle=oracle,
                        register=register,
                        card_dir=(card_dir / name) if card_dir else None,
                        refit=refit,
                    )
                except MissingTableError as exc:
                    # a sell-through-only pack feeds propensity alone
                    if not all_models:
                        raise
                    skipped[name] = exc.message
                    if not as_json:
                        out.print(f"  skipped {name}: {exc.message}", highlight=False)
                    continue
                summaries.append(r.summary())
                if not as_json:
                    _print_backtest(r.backtest)
                    if r.final is not None:
                        c = r.final.cutoffs
                        out.print(
                            f"  served: refit on {r.final.rows:,} rows at {len(c)} cutoffs "
                            f"{c[0]}..{c[-1]} (outcomes to {r.final.label_end})",
                            highlight=False,
                        )
                    verdict = "promoted to champion" if r.promoted else "not promoted"
                    out.print(
                        f"  MLflow run {r.run_id}"
                        + (f", version {r.version}: {verdict}" if r.version else "")
                        + "; "
                        + "; ".join(r.gate.reasons),
                        highlight=False,
                    )
                    if r.card_path:
                        out.print(f"  model card: {r.card_path}", highlight=False)
                del r
    except AmplifyError as exc:
        _fail(exc)
    if not summaries:
        _fail(AmplifyError("no model can be trained on this lake: " + "; ".join(skipped.values())))
    if as_json:
        _emit_json(summaries + [{"model": m, "skipped": why} for m, why in skipped.items()])


@app.command()
def evaluate(
    model: Annotated[str, typer.Argument(help="The model to backtest.")],
    train_cutoffs: TrainCutoffs = None,
    eval_cutoffs: EvalCutoffs = None,
    horizon_days: HorizonDays = None,
    oracle: Oracle = None,
    workspace: Workspace = None,
    as_json: AsJson = False,
) -> None:
    """The backtest table: the model against its baselines (and the oracle) on time splits.

    Nothing is logged or registered (use amplify train for that)."""
    import warnings

    from amplify_ml.modeling.backtest import backtest

    _models_arg([model], False)
    ws = _workspace(workspace)
    lake = _lake_or_exit(ws)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            bt = backtest(
                model,
                lake,
                train_cutoffs=_cutoff_arg(train_cutoffs),
                eval_cutoffs=_cutoff_arg(eval_cutoffs),
                horizon_days=horizon_days,
                oracle=oracle,
                memory_limit=get_settings().duckdb_memory_limit,
            )
    except AmplifyError as exc:
        _fail(exc)
    if as_json:
        m = bt.metrics
        _emit_json(
            {
                "model": model,
                "split": bt.split.to_dict(),
                "overall": {
                    s: {
                        r.metric: r.value
                        for r in m[(m.scope == "all") & (m.scorer == s)].itertuples()
                        if r.value == r.value
                    }
                    for s in bt.table().index
                },
                "notes": bt.notes,
            }
        )
        return
    _print_backtest(bt)


@app.command()
def score(
    models: Annotated[list[str] | None, typer.Argument(help="Model(s) to score.")] = None,
    all_models: Annotated[
        bool,
        typer.Option(
            "--all",
            help="Score all four models (those with a champion and their tables in the "
            "lake; the others are skipped with the reason).",
        ),
    ] = False,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Date to score as of (default: end of data).")
    ] = None,
    engine: Annotated[
        str, typer.Option(help="duckdb (in process) or spark (spark_udf).")
    ] = "duckdb",
    workspace: Workspace = None,
    as_json: AsJson = False,
) -> None:
    """Score with each model's champion; tables go to <workspace>/scores/<model>/."""
    from amplify_ml.scoring.score import score_all

    names = _models_arg(models, all_models)
    ws = _workspace(workspace)
    lake = _lake_or_exit(ws)
    done = []
    skipped: dict[str, str] = {}
    try:
        # one feature session for all of them: what the models share is computed once;
        # --all is every model with a champion that this lake can feed
        done = score_all(
            names,
            lake,
            workspace=ws,
            as_of=as_of,
            engine=engine,
            memory_limit=get_settings().duckdb_memory_limit,
            skipped=skipped if all_models else None,
        )
    except AmplifyError as exc:
        _fail(exc)
    if not as_json:
        for r in done:
            out.print(
                f"{r.model}: {r.rows:,} rows as of {r.as_of} with version {r.version} "
                f"(features {r.seconds_features:.1f} s, model {r.seconds_predict:.1f} s) "
                f"-> {r.path}",
                highlight=False,
            )
        for name, why in skipped.items():
            out.print(f"skipped {name}: {why}", highlight=False)
    if not done:
        _fail(AmplifyError("no model can be scored: " + "; ".join(skipped.values())))
    if as_json:
        _emit_json(
            [
                {
                    "model": r.model,
                    "as_of": r.as_of,
                    "version": r.version,
                    "rows": r.rows,
                    "path": str(r.path),
                }
                for r in done
            ]
            + [{"model": m, "skipped": why} for m, why in skipped.items()]
        )


@app.command()
def supplies(
    partner: Annotated[str | None, typer.Argument(help="Only this partner's devices.")] = None,
    alpha: Annotated[
        float, typer.Option(help="Ship when P(threshold before delivery) passes this.")
    ] = 0.1,
    lead_time: Annotated[int, typer.Option("--lead-time", help="Delivery days.")] = 5,
    soon_days: Annotated[int, typer.Option(help="'soon' when shipping within these days.")] = 7,
    top: Annotated[int, typer.Option(help="Rows to print (the CSV has all).")] = 30,
    csv: Annotated[Path | None, typer.Option(help="Write the whole plan as CSV.")] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Scores of this date.")] = None,
    workspace: Workspace = None,
    as_json: AsJson = False,
) -> None:
    """Per device and colour: days to the threshold (P10/P50/P90), ship-by date and status."""
    from amplify_ml.scoring.score import read_scores
    from amplify_ml.scoring.supplies import ship_plan, status_counts

    ws = _workspace(workspace)
    try:
        scores = read_scores(ws, "consumable_depletion", as_of=as_of)
        if partner is not None and partner not in set(scores["partner_id"]):
            raise NotFoundError(f"no scored devices of partner {partner}")
        plan = ship_plan(
            scores,
            alpha=alpha,
            lead_time_days=lead_time,
            soon_days=soon_days,
            partners=[partner] if partner else None,
        )
    except AmplifyError as exc:
        _fail(exc)
    if csv is not None:
        csv.parent.mkdir(parents=True, exist_ok=True)
        plan.to_csv(csv, index=False)
    if as_json:
        _emit_json(
            {
                "counts": status_counts(plan),
                "rows": json.loads(plan.head(top).to_json(orient="records", date_format="iso")),
            }
        )
        return
    counts = status_counts(plan)
    out.print(
        f"{len(plan):,} device colours: {counts['ship now']} ship now, {counts['soon']} soon, "
        f"{counts['ok']} ok (alpha {alpha}, lead time {lead_time} days)",
        highlight=False,
    )
    out.print(plan.head(top).to_string(index=False), highlight=False)
    if csv is not None:
        out.print(f"plan written to {csv}", highlight=False)


@app.command()
def leads(
    partner: Annotated[str, typer.Argument(help="The partner whose lead list to show.")],
    top: Annotated[int, typer.Option(help="Rows in the list.")] = 50,
    warranty_months: Annotated[
        int, typer.Option(help="Offer extended warranties ending within these months.")
    ] = 6,
    refresh_threshold: Annotated[
        float, typer.Option(help="Offer a refresh above this probability.")
    ] = 0.3,
    csv: Annotated[Path | None, typer.Option(help="Write the list as CSV.")] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Scores of this date.")] = None,
    workspace: Workspace = None,
    as_json: AsJson = False,
) -> None:
    """A partner's ranked lead list: who to call, what to offer and why."""
    import warnings

    from amplify_ml.scoring.leads import leads as lead_list

    ws = _workspace(workspace)
    lake = _lake_or_exit(ws)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            df = lead_list(
                partner,
                lake,
                workspace=ws,
                top=top,
                warranty_months=warranty_months,
                refresh_threshold=refresh_threshold,
                as_of=as_of,
            )
    except AmplifyError as exc:
        _fail(exc)
    if csv is not None:
        csv.parent.mkdir(parents=True, exist_ok=True)
        df.to_csv(csv, index=False)
    if as_json:
        _emit_json(json.loads(df.to_json(orient="records", date_format="iso")))
        return
    table = Table(title=f"{partner}: top {len(df)} leads")
    for c in (
        "rank",
        "account_id",
        "offer",
        "category",
        "device_id",
        "recommended_sku",
        "probability",
        "expected_value",
        "reason_1",
    ):
        table.add_column(
            c, justify="right" if c in ("rank", "probability", "expected_value") else "left"
        )
    for r in df.itertuples(index=False):
        table.add_row(
            str(r.rank),
            str(r.account_id),
            str(r.offer),
            str(r.category),
            "" if r.device_id is None or r.device_id != r.device_id else str(r.device_id),
            str(r.recommended_sku),
            f"{r.probability:.2f}",
            f"{r.expected_value:,.0f}",
            str(r.reason_1 or ""),
        )
    out.print(table)
    if csv is not None:
        out.print(f"list written to {csv}", highlight=False)


@app.command()
def benchmark(
    partner: Annotated[str, typer.Argument(help="The partner to benchmark.")],
    as_of: Annotated[str | None, typer.Option("--as-of", help="End of the period.")] = None,
    period_days: Annotated[int, typer.Option(help="Length of the period in days.")] = 365,
    peer_by: Annotated[
        str, typer.Option(help="Peer group: partners columns, comma-separated (or empty).")
    ] = "track,country",
    k: Annotated[
        int | None, typer.Option("--k", help="Peers needed to show a peer figure.")
    ] = None,
    definitions: Annotated[
        bool, typer.Option("--definitions", help="Print what each measure means.")
    ] = False,
    workspace: Workspace = None,
    as_json: AsJson = False,
) -> None:
    """A partner's measures next to its peer group and the market."""
    from amplify_ml.scoring.benchmarks import benchmark as run_benchmark

    ws = _workspace(workspace)
    lake = _lake_or_exit(ws)
    try:
        report = run_benchmark(
            lake,
            partner,
            as_of=as_of,
            period_days=period_days,
            peer_by=tuple(c.strip() for c in peer_by.split(",") if c.strip()),
            k_anonymity=k,
        )
    except AmplifyError as exc:
        _fail(exc)
    if as_json:
        _emit_json(report.to_dict())
        return
    out.print(report.render(definitions=definitions), highlight=False)


@app.command("fleet")
def fleet_cmd(
    partner: Annotated[str | None, typer.Argument(help="Only this partner's devices.")] = None,
    top: Annotated[int, typer.Option(help="Rows in the list.")] = 50,
    csv: Annotated[Path | None, typer.Option(help="Write the list as CSV.")] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Scores of this date.")] = None,
    workspace: Workspace = None,
    as_json: AsJson = False,
) -> None:
    """Devices under service contracts by failure risk, with the likely component and why."""
    import warnings

    from amplify_ml.scoring.fleet import fleet

    ws = _workspace(workspace)
    lake = _lake_or_exit(ws)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            df = fleet(lake, workspace=ws, partner=partner, top=top, as_of=as_of)
    except AmplifyError as exc:
        _fail(exc)
    if csv is not None:
        csv.parent.mkdir(parents=True, exist_ok=True)
        df.to_csv(csv, index=False)
    if as_json:
        _emit_json(json.loads(df.to_json(orient="records", date_format="iso")))
        return
    show = df[
        [
            "rank",
            "partner_id",
            "device_id",
            "family",
            "contract",
            "probability",
            "likely_component",
            "reason_1",
        ]
    ].copy()
    show["probability"] = show["probability"].map(lambda v: f"{v:.3f}")
    out.print(show.to_string(index=False), highlight=False)
    if csv is not None:
        out.print(f"list written to {csv}", highlight=False)


BenchScale = Annotated[str, typer.Option(help="World scale: tiny, small or medium.")]
BenchSeeds = Annotated[
    list[int], typer.Option(help="Random seed of a world (repeat the option for several).")
]
BenchModels = Annotated[
    list[str] | None, typer.Option(help="A model (repeat the option); default: all four.")
]
BenchMemory = Annotated[str, typer.Option(help="DuckDB's memory cap.")]
bench_app = typer.Typer(
    help="Performance benchmarks: print figures and write JSON.", no_args_is_help=True
)
app.add_typer(bench_app, name="bench")


@bench_app.command("ingest")
def bench_ingest(
    scale: BenchScale = "small",
    seed: Annotated[int, typer.Option(help="Random seed of the world.")] = 7,
    workspace: Workspace = None,
) -> None:
    """Validation and ingestion throughput (rows/s) and peak memory, against a plain copy."""
    from amplify_ml.bench.ingest import run

    ws = _workspace(workspace)
    run(scale, ws, seed=seed, memory_limit=get_settings().duckdb_memory_limit)


@bench_app.command("transactions")
def bench_transactions(
    rows: Annotated[
        int, typer.Option(min=1, help="Invoice lines of the generated export.")
    ] = 2_000_000,
    seed: Annotated[int, typer.Option(help="Random seed of the export.")] = 7,
    memory_limit: BenchMemory = "1GB",
    workspace: Workspace = None,
) -> None:
    """Converting a transactions export (pack from-transactions): rows/s and peak memory
    under DuckDB's cap, against the same conversion without one."""
    from amplify_ml.bench.transactions import run

    run(rows, _workspace(workspace), seed=seed, memory_limit=memory_limit)


@bench_app.command("features")
def bench_features(
    scale: BenchScale = "small",
    seed: Annotated[int, typer.Option(help="Random seed of the world.")] = 7,
    repeat: Annotated[
        int, typer.Option(help="Runs of each side; the fastest counts (machine noise).")
    ] = 1,
    baseline: Annotated[
        bool | None,
        typer.Option(
            "--baseline/--no-baseline",
            help="Run the pandas baseline (default: at tiny and small only).",
            show_default=False,
        ),
    ] = None,
    memory_limit: Annotated[
        str, typer.Option(help="DuckDB's memory cap; past it, it spills to disk.")
    ] = "3GB",
    spark: Annotated[
        bool,
        typer.Option(
            "--spark", help="Also build them on Spark (local[2]) and check them equal to DuckDB's."
        ),
    ] = False,
    workspace: Workspace = None,
) -> None:
    """The four training sets at 12 monthly cutoffs: time and peak memory against pandas."""
    from amplify_ml.bench.features import run

    ws = _workspace(workspace)
    try:
        run(
            scale,
            ws,
            seed=seed,
            memory_limit=memory_limit,
            baseline=baseline,
            repeat=repeat,
            spark=spark,
        )
    except AssertionError as exc:
        console.print(f"[bold red]error:[/] outputs differ: {exc}", highlight=False)
        raise typer.Exit(1) from None


@bench_app.command("scoring")
def bench_scoring(
    scale: BenchScale = "small",
    seed: Annotated[int, typer.Option(help="Random seed of the worlds.")] = 7,
    spark: Annotated[
        bool,
        typer.Option("--spark", help="Also time spark_udf and Spark end to end (local[2])."),
    ] = False,
    repeat: Annotated[
        int, typer.Option(help="Interleaved rounds of the timings; the fastest counts.")
    ] = 7,
    memory_limit: BenchMemory = "3GB",
    workspace: Workspace = None,
) -> None:
    """Rows scored per second per model, embedded (and Spark) next to Booster.predict on the
    same rows, and the four models end to end as amplify score --all runs them."""
    from amplify_ml.bench.scoring import run

    run(
        scale,
        _workspace(workspace),
        seed=seed,
        memory_limit=memory_limit,
        spark=spark,
        repeat=repeat,
    )


@bench_app.command("quality")
def bench_quality(
    scale: BenchScale = "small",
    seed: BenchSeeds = [7],  # noqa: B006 - Typer reads the default, never mutates it
    model: BenchModels = None,
    memory_limit: BenchMemory = "3GB",
    workspace: Workspace = None,
) -> None:
    """Model quality on synthetic worlds against the targets: each model's backtest against
    its baselines and the oracle (skill ratio, ECE, MAE vs the oracle), per seed and across."""
    from amplify_ml.bench.quality import MODELS, run

    models = _models_arg(model, False) if model else list(MODELS)
    try:
        run(scale, _workspace(workspace), seeds=seed, models=models, memory_limit=memory_limit)
    except AmplifyError as exc:
        _fail(exc)


@bench_app.command("refit")
def bench_refit(
    scale: BenchScale = "small",
    seed: BenchSeeds = [7],  # noqa: B006 - Typer reads the default, never mutates it
    model: BenchModels = None,
    months_back: Annotated[
        int, typer.Option(help="The replayed training day: this many months before the end.")
    ] = 6,
    memory_limit: BenchMemory = "3GB",
    workspace: Workspace = None,
) -> None:
    """Serving the refit against serving the backtest's model: a training replayed months
    back, both models scored on the months after it against the oracle."""
    from amplify_ml.bench.refit import MODELS, run

    models = _models_arg(model, False) if model else list(MODELS)
    try:
        run(
            scale,
            _workspace(workspace),
            seeds=seed,
            models=models,
            months_back=months_back,
            memory_limit=memory_limit,
        )
    except AmplifyError as exc:
        _fail(exc)


@bench_app.command("serving")
def bench_serving(
    rate: Annotated[
        list[float], typer.Option(help="Lookup rates in requests/s (repeat the option).")
    ] = [100.0, 500.0],  # noqa: B006 - Typer reads the default, never mutates it
    seconds: Annotated[float, typer.Option(help="Seconds of load at each rate.")] = 10.0,
    online_seconds: Annotated[float, typer.Option(help="Seconds of online scoring load.")] = 10.0,
    concurrency: Annotated[int, typer.Option(help="Clients of the online scoring runs.")] = 8,
    workers: Annotated[int, typer.Option(help="uvicorn workers of amplify serve.")] = 1,
    mlflow_serve: Annotated[
        bool, typer.Option(help="Also load mlflow models serve with the same row.")
    ] = True,
    seed: Annotated[int, typer.Option(help="Random seed of the small world.")] = 7,
    memory_limit: BenchMemory = "3GB",
    workspace: Workspace = None,
) -> None:
    """Latency and throughput of the API on loopback, online scoring vs mlflow models serve."""
    from amplify_ml.bench.serving import run

    try:
        run(
            _workspace(workspace),
            seed=seed,
            rates=tuple(rate),
            seconds=seconds,
            online_seconds=online_seconds,
            concurrency=concurrency,
            workers=workers,
            mlflow_serve=mlflow_serve,
            memory_limit=memory_limit,
        )
    except AmplifyError as exc:
        _fail(exc)


# the API's commands live beside the API (amplify_ml/serving/cli.py)
from amplify_ml.serving.cli import keys_app, serve_cmd  # noqa: E402

app.command("serve")(serve_cmd)
app.add_typer(keys_app, name="keys")


def main() -> None:
    """Entry point of the ``amplify`` console script."""
    try:
        app()
    except AmplifyError as exc:  # pragma: no cover - commands catch their own
        console.print(f"[bold red]error:[/] {exc.message}", highlight=False)
        sys.exit(2)


if __name__ == "__main__":  # pragma: no cover
    main()
