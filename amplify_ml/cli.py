"""The ``amplify`` command.

Every subcommand takes ``--workspace`` (default ``$AMPLIFY_WORKSPACE`` or ``.amplify``),
shows progress for long work, prints a short summary, and takes ``--json`` for a
machine-readable one. Exit codes: 0 done, 1 the input broke rules (reported), 2 usage or
a refused input.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from amplify_ml.config import get_settings
from amplify_ml.errors import AmplifyError

app = typer.Typer(
    name="amplify",
    help="amplify_ml: predictive services from a partner's data pack.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)

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


def _pack_dirs(root: Path) -> list[Path]:
    """Pack folders below ``root`` (a world's packs/ folder, or a folder of packs)."""
    base = root / "packs" if (root / "packs").is_dir() else root
    if (base / "manifest.json").exists():
        return [base]
    dirs = sorted(p for p in base.iterdir() if (p / "manifest.json").exists())
    # the vendor pack first: it is the reference of the others
    return sorted(dirs, key=lambda p: (p.name != "vendor", p.name))


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

    if not pack.exists():
        console.print(f"[red]error:[/] {pack} does not exist")
        raise typer.Exit(2)
    dirs = _pack_dirs(pack)
    if not dirs:
        console.print(f"[red]error:[/] no pack (folder with manifest.json) in {pack}")
        raise typer.Exit(2)
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


def _summary_table(reports: list[Any]) -> Table:
    """Per table over all packs: rows read, valid, set aside, rejected, date range."""
    agg: dict[str, dict[str, Any]] = {}
    for r in reports:
        for name, t in r.tables.items():
            a = agg.setdefault(
                name,
                {"packs": 0, "read": 0, "valid": 0, "dup": 0, "rej": 0, "start": None, "end": None},
            )
            a["packs"] += 1
            a["read"] += t.rows_read
            a["valid"] += t.rows_valid
            a["dup"] += t.rows_duplicate
            a["rej"] += t.rows_rejected
            if t.start and (a["start"] is None or t.start < a["start"]):
                a["start"] = t.start
            if t.end and (a["end"] is None or t.end > a["end"]):
                a["end"] = t.end
    table = Table(title="data pack summary (all packs)")
    for head in ("table", "packs", "rows", "valid", "duplicates", "rejected", "from", "to"):
        table.add_column(head, justify="right" if head not in ("table", "from", "to") else "left")
    from amplify_ml.datapack.contract import TABLES

    for name in TABLES:
        if name in agg:
            a = agg[name]
            table.add_row(
                name,
                str(a["packs"]),
                f"{a['read']:,}",
                f"{a['valid']:,}",
                f"{a['dup']:,}",
                f"{a['rej']:,}",
                (a["start"] or "")[:10],
                (a["end"] or "")[:10],
            )
    return table


@app.command()
def demo(
    scale: Annotated[str, typer.Option(help="World scale for the demo.")] = "small",
    seed: Annotated[int, typer.Option(help="Random seed.")] = 7,
    fresh: Annotated[
        bool, typer.Option("--fresh", help="Regenerate the world even if present.")
    ] = False,
    workspace: Workspace = None,
    as_json: AsJson = False,
) -> None:
    """The main job end to end on embedded defaults: synthesise a world, validate its packs."""
    from amplify_ml.datapack.validate import validate_pack
    from amplify_ml.datasets import generate

    ws = _workspace(workspace)
    world_dir = ws / "demo" / f"world-{scale}-{seed}"
    started = time.monotonic()
    try:
        with _progress(not as_json) as progress:
            if fresh or not (world_dir / "world.json").exists():
                console.print(
                    f"[bold]1/2[/] generating the {scale} synthetic world into {world_dir}"
                )
                generate(scale, seed=seed, out=world_dir, progress=progress)  # type: ignore[arg-type]
            else:
                console.print(
                    f"[bold]1/2[/] reusing the world in {world_dir} (--fresh to regenerate)"
                )
            dirs = _pack_dirs(world_dir)
            vendor = world_dir / "packs" / "vendor"
            console.print(f"[bold]2/2[/] validating {len(dirs)} packs against the contract")
            reports = []
            for i, d in enumerate(dirs):
                reports.append(validate_pack(d, reference=None if d == vendor else vendor))
                progress("validate packs", i + 1, len(dirs))
    except AmplifyError as exc:
        _fail(exc)
    elapsed = time.monotonic() - started
    refused = [r for r in reports if r.refused]
    summary = {
        "world": str(world_dir),
        "packs": len(reports),
        "refused": [{"pack": r.pack, "reasons": [v.rule for v in r.errors]} for r in refused],
        "tables": {},
        "elapsed_seconds": round(elapsed, 1),
    }
    for r in reports:
        for name, t in r.tables.items():
            s = summary["tables"].setdefault(name, {"rows": 0, "valid": 0})  # type: ignore[union-attr]
            s["rows"] += t.rows_read
            s["valid"] += t.rows_valid
    if as_json:
        _emit_json(summary)
        return
    out.print(_summary_table(reports))
    for r in refused:
        for v in r.errors:
            out.print(f"[yellow]refused[/] {v.message}", highlight=False)
    out.print(f"demo done in {elapsed:.0f} s; world in {world_dir}")


def main() -> None:
    """Entry point of the ``amplify`` console script."""
    try:
        app()
    except AmplifyError as exc:  # pragma: no cover - commands catch their own
        console.print(f"[bold red]error:[/] {exc.message}", highlight=False)
        sys.exit(2)


if __name__ == "__main__":  # pragma: no cover
    main()
