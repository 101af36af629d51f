"""``amplify serve`` and ``amplify keys``: registered on the main command in amplify_ml.cli.

Self-contained (it imports nothing of amplify_ml.cli) and light: the API's modules load only
when a command runs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from amplify_ml.config import get_settings
from amplify_ml.errors import AmplifyError, NotFoundError

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

keys_app = typer.Typer(
    help="API keys: create (shown once), list, revoke. Only salted hashes are stored.",
    no_args_is_help=True,
)


def _workspace(path: Path | None) -> Path:
    ws = path or get_settings().workspace
    ws.mkdir(parents=True, exist_ok=True)
    return ws


def _fail(exc: AmplifyError) -> None:
    console.print(f"[bold red]error:[/] {exc.message}", highlight=False)
    raise typer.Exit(2)


def serve_cmd(
    host: Annotated[str | None, typer.Option(help="Bind address (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8000).")] = None,
    workspace: Workspace = None,
) -> None:
    """Serve the API (OpenAPI docs at /docs) until Ctrl-C."""
    from amplify_ml.serving import serve

    settings = get_settings()
    ws = _workspace(workspace)
    host = host or settings.host
    port = port or settings.port
    console.print(
        f"serving {ws} on http://{host}:{port} (docs: http://{host}:{port}/docs); Ctrl-C stops",
        highlight=False,
    )
    serve(ws, host=host, port=port)


@keys_app.command("create")
def keys_create(
    partner: Annotated[
        str | None, typer.Option("--partner", help="The partner the key is for.")
    ] = None,
    role: Annotated[
        str, typer.Option("--role", help="partner (with --partner) or operations (all partners).")
    ] = "partner",
    label: Annotated[str | None, typer.Option(help="A note: who holds the key.")] = None,
    workspace: Workspace = None,
    as_json: AsJson = False,
) -> None:
    """Create a key and print it once (store it safely: it cannot be shown again)."""
    from amplify_ml.lake import Lake
    from amplify_ml.serving.keys import KeyStore

    ws = _workspace(workspace)
    try:
        if role == "partner" and partner is not None:
            lake = Lake.in_workspace(ws)
            if lake.exists and partner not in lake.partners():
                raise NotFoundError(
                    f"no partner {partner} in the lake at {lake.root}: check the id (ids are "
                    "case-sensitive) or ingest its pack first (amplify ingest PACK_DIR)"
                )
        record, key = KeyStore.in_workspace(ws).create(
            role=role,  # type: ignore[arg-type]
            partner=partner,
            label=label,
        )
    except AmplifyError as exc:
        _fail(exc)
    if as_json:
        out.print_json(json.dumps({**record.public(), "key": key}))
        return
    who = f"partner {record.partner_id}" if record.partner_id else "the operations role"
    console.print(
        f"key {record.key_id} for {who}; shown once, only its hash is stored:", highlight=False
    )
    typer.echo(key)


@keys_app.command("list")
def keys_list(workspace: Workspace = None, as_json: AsJson = False) -> None:
    """Every key: id, role, partner, created, revoked (never the key itself)."""
    from amplify_ml.serving.keys import KeyStore

    try:
        records = KeyStore.in_workspace(_workspace(workspace)).list()
    except AmplifyError as exc:
        _fail(exc)
    if as_json:
        out.print_json(json.dumps([r.public() for r in records]))
        return
    table = Table(title=f"{len(records)} API keys")
    for c in ("key_id", "role", "partner_id", "label", "created_at", "revoked_at"):
        table.add_column(c)
    for r in records:
        p = r.public()
        table.add_row(*(str(p[c] or "") for c in p))
    out.print(table)


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (amplify keys list).")],
    workspace: Workspace = None,
    as_json: AsJson = False,
) -> None:
    """Revoke a key: a running server refuses it within a second."""
    from amplify_ml.serving.keys import KeyStore

    try:
        record = KeyStore.in_workspace(_workspace(workspace)).revoke(key_id)
    except AmplifyError as exc:
        _fail(exc)
    if as_json:
        out.print_json(json.dumps(record.public()))
        return
    out.print(f"key {record.key_id} revoked at {record.revoked_at}", highlight=False)
