"""Server-rendered pages: a partner's lead list, and a fleet's failure risk and supplies.

Jinja2 templates (autoescaped) and a little hand-written CSS and JavaScript (sorting and
filtering of the tables) in ``static/``; no front-end build, nothing from the network. The pages
read through the :class:`PageSource` the app puts at ``app.state.pages``; who is looking comes
from the ``amplify_key`` cookie that the login form sets (the API accepts the same cookie).

Wiring: ``app.include_router(router)``, ``mount_static(app)``, ``app.state.pages = source``.
A partner key sees its own partner only (another partner's id answers 404); an operations key
picks a partner (the lead list) or sees every partner (the fleet). Every request with a valid
key is audited through the source, whatever its status.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Protocol
from urllib.parse import parse_qs, quote, urlsplit

import jinja2
import pandas as pd
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from amplify_ml.datapack.contract import PRODUCT_CATEGORIES
from amplify_ml.errors import (
    AmplifyError,
    ConfigError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    TooManyAttemptsError,
    UnfedError,
)

COOKIE = "amplify_key"
"""The cookie that carries the API key (HttpOnly, SameSite=Strict)."""
PREFIX = "/pages"
HERE = Path(__file__).parent
TOP_DEFAULT = 50
TOP_MAX = 500
DUE = ("ship now", "soon")
"""Supplies statuses listed on the fleet page (``ok`` colours are only counted)."""
MAX_FORM_BYTES = 4096
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
STATUS_TITLES = {
    400: "Bad request",
    401: "Not logged in",
    403: "Not allowed",
    404: "Not found",
    422: "Cannot show this",
    429: "Too many attempts",
    500: "Something is misconfigured",
    503: "Not available right now",
}
LOGIN_NOTES = {
    "expired": "Your key is no longer valid (revoked or replaced): log in with a current one.",
    "logout": "You are logged out.",
}


class PageCaller(Protocol):
    """Who is looking: one API key, bound to a partner or to the vendor's operations."""

    key_id: str
    role: str
    """``partner`` or ``operations``"""
    partner_id: str | None
    """the key's partner; None for operations"""


class PageSource(Protocol):
    """What the pages read; the app provides one at ``app.state.pages``."""

    def caller(self, key: str) -> PageCaller | None:
        """The caller of an API key; None when the key is unknown or revoked."""
        ...

    def partners(self) -> list[str]:
        """Partners with data (operations may pick one)."""
        ...

    def leads(self, partner_id: str, *, category: str | None, top: int) -> pd.DataFrame:
        """A partner's lead list: the frame of :func:`amplify_ml.scoring.leads.leads`."""
        ...

    def fleet(self, partner_id: str | None, *, top: int) -> pd.DataFrame:
        """Devices by failure risk: the frame of :func:`amplify_ml.scoring.fleet.fleet`."""
        ...

    def supplies(self, partner_id: str | None) -> pd.DataFrame:
        """The ship plan: the frame of :func:`amplify_ml.scoring.supplies.ship_plan`."""
        ...

    def audit(self, caller: PageCaller, route: str, partner_id: str | None, status: int) -> None:
        """Record one request: who, which route, which partner's data, the status answered."""
        ...


# -- tables: one description serves the HTML table and its CSV -------------------------------


@dataclass(frozen=True)
class Column:
    """One column of a page's table; ``csv`` are the frame's columns it shows (and exports)."""

    key: str
    label: str
    kind: str = "text"
    """text | id | int | percent | risk | money | days | date | reasons"""
    csv: tuple[str, ...] = ()
    bound: str | None = None
    """a boolean column that marks the value as a lower bound (shown with ≥)"""

    @property
    def csv_columns(self) -> tuple[str, ...]:
        return self.csv or (self.key,)

    @property
    def numeric(self) -> bool:
        return self.kind in {"int", "percent", "risk", "money", "days"}


@dataclass(frozen=True)
class Cell:
    """A table cell: its text, the raw value it sorts by, and list items or a meter value."""

    text: str
    value: str
    items: tuple[str, ...] = ()
    meter: float | None = None


@dataclass(frozen=True)
class Table:
    """A rendered table: id (for the filter box and the sort script), columns, rows."""

    id: str
    label: str
    columns: tuple[Column, ...]
    rows: list[list[Cell]]
    sorted_by: str
    direction: str
    """``ascending`` or ``descending``: the order the rows arrive in"""


REASONS = Column("reasons", "Reasons", "reasons", csv=("reason_1", "reason_2", "reason_3"))
LEAD_COLUMNS = (
    Column("rank", "#", "int"),
    Column("account_id", "Account", "id"),
    Column("offer", "Offer"),
    Column("category", "Category"),
    Column("device_id", "Device", "id"),
    Column("recommended_sku", "Product", "id"),
    Column("probability", "Score", "percent"),
    Column("expected_value", "Exp. value", "money"),
    REASONS,
)
FLEET_COLUMNS = (
    Column("rank", "#", "int"),
    Column("partner_id", "Partner", "id"),
    Column("account_id", "Account", "id"),
    Column("device_id", "Device", "id"),
    Column("family", "Family"),
    Column("contract", "Contract"),
    Column("probability", "Failure risk", "risk"),
    Column("likely_component", "Likely part"),
    Column("component_probability", "Part risk", "risk"),
    REASONS,
)
SUPPLY_COLUMNS = (
    Column("partner_id", "Partner", "id"),
    Column("account_id", "Account", "id"),
    Column("device_id", "Device", "id"),
    Column("color", "Colour"),
    Column("status", "Status"),
    Column("ship_by", "Ship by", "date"),
    Column("days_to_ship", "Days to ship", "int"),
    Column("p10_days", "P10 days", "days"),
    Column("p50_days", "P50 days", "days"),
    Column("p90_days", "P90 days", "days", bound="beyond_window"),
    Column("threshold_p50_date", "Threshold (P50)", "date"),
)


def _missing(v: Any) -> bool:
    return v is None or (not isinstance(v, str | bytes | bool) and bool(pd.isna(v)))


def _iso(v: Any) -> str:
    return v.isoformat()[:10] if hasattr(v, "isoformat") else str(v)


def _cell(col: Column, rec: Mapping[str, Any]) -> Cell:
    if col.kind == "reasons":
        items = tuple(str(rec[k]) for k in col.csv_columns if not _missing(rec.get(k)))
        return Cell("; ".join(items), "; ".join(items), items=items)
    v = rec.get(col.key)
    if _missing(v):
        return Cell("", "")
    if col.kind == "int":
        return Cell(f"{int(v):,}", str(int(v)))
    if col.numeric:
        x = float(v)
        text = {
            "percent": f"{x:.0%}",
            "risk": f"{x:.1%}",
            "money": f"{x:,.0f}",
            "days": f"{x:.1f}",
        }[col.kind]
        if col.bound is not None and rec.get(col.bound) is True:
            text = "≥" + text
        return Cell(text, repr(x), meter=x if col.kind == "risk" else None)
    if col.kind == "date":
        return Cell(_iso(v), _iso(v))
    return Cell(str(v), str(v))


def build_table(
    table_id: str,
    label: str,
    frame: pd.DataFrame,
    columns: Sequence[Column],
    *,
    sorted_by: str,
    direction: str,
) -> Table:
    """The rows of ``frame`` as cells of ``columns``, in the frame's order."""
    records = frame.reindex(columns=_csv_columns(columns)).to_dict("records")
    return Table(
        table_id,
        label,
        tuple(columns),
        [[_cell(c, r) for c in columns] for r in records],
        sorted_by,
        direction,
    )


def _csv_columns(columns: Sequence[Column]) -> list[str]:
    keys = [k for c in columns for k in c.csv_columns]
    keys += [c.bound for c in columns if c.bound is not None and c.bound not in keys]
    return keys


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _defuse(v: Any) -> Any:
    """A text cell that a spreadsheet would run as a formula, prefixed with ' (OWASP)."""
    return "'" + v if isinstance(v, str) and v.startswith(FORMULA_START) else v


def table_csv(frame: pd.DataFrame, columns: Sequence[Column]) -> str:
    """The CSV of a page's table: the same rows, the frame's names of the columns shown."""
    out = frame.reindex(columns=_csv_columns(columns))
    for k in out.columns:
        if not pd.api.types.is_numeric_dtype(out[k]):
            out[k] = out[k].map(_defuse)
    return out.to_csv(index=False, lineterminator="\n")


# -- requests ------------------------------------------------------------------------------


@cache
def templates() -> Jinja2Templates:
    """The pages' templates (autoescape on, undefined names are errors)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return Jinja2Templates(env=env)


def mount_static(app: FastAPI) -> None:
    """Serve the pages' CSS and JavaScript at ``/pages/static``."""
    app.mount(f"{PREFIX}/static", StaticFiles(directory=HERE / "static"), name="pages-static")


def _source(request: Request) -> PageSource:
    source = getattr(request.app.state, "pages", None)
    if source is None:
        raise ConfigError(
            "the app has no page source: set app.state.pages to a PageSource "
            "(amplify_ml.serving.pages) before serving the pages"
        )
    return source


def _root(request: Request) -> str:
    """The path the app is mounted under (behind a proxy), to prefix links and redirects."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def _redirect(request: Request, path: str) -> RedirectResponse:
    return RedirectResponse(_root(request) + path, status_code=303)


def _secure(response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    return response


def _safe_next(target: str | None) -> str | None:
    """A page to return to after logging in: only paths of these pages, never another site."""
    if not target or len(target) > 2000 or "\\" in target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith(f"{PREFIX}/"):
        return None
    if parts.path.startswith((f"{PREFIX}/login", f"{PREFIX}/logout", f"{PREFIX}/static")):
        return None
    return target


def _home(caller: PageCaller) -> str:
    return f"{PREFIX}/fleet" if caller.role == "operations" else f"{PREFIX}/leads"


@dataclass
class Page:
    """One page request: the source, the caller (None without a valid key) and its audit."""

    request: Request
    source: PageSource
    caller: PageCaller | None
    stale_cookie: bool = False
    failure: AmplifyError | None = None
    """the key could not be checked (the key store failed): shown instead of the login"""

    @property
    def route(self) -> str:
        route = self.request.scope.get("route")
        path = getattr(route, "path", None) or self.request.url.path
        return f"{self.request.method} {path}"

    def audit(self, partner_id: str | None, status: int) -> None:
        if self.caller is not None:
            self.source.audit(self.caller, self.route, partner_id, status)

    def context(self, **values: Any) -> dict[str, Any]:
        root = _root(self.request)
        return {
            "caller": self.caller,
            "prefix": root + PREFIX,
            "static": root + PREFIX + "/static",
            **values,
        }

    def html(
        self, template: str, context: dict[str, Any], *, partner_id: str | None, status: int = 200
    ) -> Response:
        response = templates().TemplateResponse(
            self.request, template, self.context(**context), status_code=status
        )
        self.audit(partner_id, status)
        return _secure(response)

    def error(self, exc: AmplifyError, *, partner_id: str | None) -> Response:
        status = exc.http_status
        return self.html(
            "error.html",
            {
                "title": STATUS_TITLES.get(status, "Error"),
                "status": status,
                "message": exc.message,
                "nav": None,
            },
            partner_id=partner_id,
            status=status,
        )

    def to_login(self) -> Response:
        """303 to the login form, coming back here afterwards; a stale cookie is cleared.
        When the key could not be checked at all, the error page instead (nothing to audit)."""
        if self.failure is not None:
            return self.error(self.failure, partner_id=None)
        root = _root(self.request)
        path = self.request.url.path
        here = (path[len(root) :] if root and path.startswith(root) else path) + (
            f"?{self.request.url.query}" if self.request.url.query else ""
        )
        target = f"{PREFIX}/login?next={quote(here, safe='')}"
        if self.stale_cookie:
            target += "&note=expired"
        response = RedirectResponse(root + target, status_code=303)
        if self.stale_cookie:
            response.delete_cookie(COOKIE, path="/")
        return _secure(response)

    def csv(self, text: str, filename: str, *, partner_id: str | None) -> Response:
        response = Response(
            text,
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )
        self.audit(partner_id, 200)
        return _secure(response)


def _page(request: Request) -> Page:
    source = _source(request)
    key = request.cookies.get(COOKIE)
    try:
        caller = source.caller(key) if key else None
    except AmplifyError as exc:
        return Page(request, source, None, failure=exc)
    return Page(request, source, caller, stale_cookie=bool(key) and caller is None)


PageDep = Annotated[Page, Depends(_page)]


# -- parameters ----------------------------------------------------------------------------


def _top(raw: str | None) -> int:
    if raw is None or raw.strip() == "":
        return TOP_DEFAULT
    try:
        top = int(raw)
    except ValueError:
        top = 0
    if not 1 <= top <= TOP_MAX:
        raise InvalidRequestError(
            f"rows must be a whole number from 1 to {TOP_MAX}, got {raw[:20]!r}"
        )
    return top


def _category(raw: str | None) -> str | None:
    if raw is None or raw == "":
        return None
    if raw not in PRODUCT_CATEGORIES:
        raise InvalidRequestError(
            f"category must be one of {', '.join(PRODUCT_CATEGORIES)} (or empty for all), "
            f"got {raw[:40]!r}"
        )
    return raw


def _partner(caller: PageCaller, source: PageSource, requested: str | None) -> str | None:
    """The partner whose data to show: a partner key's own (another id is not found); for
    operations the one asked for (None: not chosen)."""
    if caller.role == "partner" and caller.partner_id:
        if requested not in (None, "", caller.partner_id):
            raise NotFoundError("no such partner for this key: a key sees its own partner only")
        return caller.partner_id
    if caller.role != "operations":
        raise PermissionDeniedError(
            f"a key with the role {caller.role!r} may not use the pages: "
            "use a partner or an operations key"
        )
    if requested in (None, ""):
        return None
    if requested not in source.partners():
        raise NotFoundError(f"no partner {requested[:40]} with data: pick one from the list")
    return requested


def _sentence(message: str) -> str:
    """An error's message as a page's sentence: capital first, full stop last."""
    message = message.strip()
    if not message:
        return message
    return message[0].upper() + message[1:] + ("" if message.endswith((".", "!", "?")) else ".")


def _as_of(frame: pd.DataFrame) -> date | None:
    if "as_of" not in frame or frame.empty or _missing(frame["as_of"].iloc[0]):
        return None
    return pd.Timestamp(frame["as_of"].iloc[0]).date()


def _versions(frame: pd.DataFrame) -> str:
    if "model_version" not in frame:
        return ""
    return ", ".join(sorted({str(v) for v in frame["model_version"] if not _missing(v)}))


def _filename(kind: str, partner_id: str | None, day: date | None) -> str:
    who = re.sub(r"[^A-Za-z0-9_-]", "_", partner_id) if partner_id else "all"
    return f"{kind}-{who}-{(day or date.today()).isoformat()}.csv"


# -- routes --------------------------------------------------------------------------------

router = APIRouter(prefix=PREFIX, include_in_schema=False)


@router.get("/")
def index(page: PageDep) -> Response:
    """The caller's first page (leads for a partner, the fleet for operations)."""
    if page.caller is None:
        return _secure(_redirect(page.request, f"{PREFIX}/login"))
    page.audit(page.caller.partner_id, 303)
    return _secure(_redirect(page.request, _home(page.caller)))


@router.get("/login")
def login_form(request: Request, next: str | None = None, note: str | None = None) -> Response:
    """The login form: one field for the API key."""
    return _login_page(request, next=_safe_next(next), note=LOGIN_NOTES.get(note or ""))


def _login_page(
    request: Request,
    *,
    next: str | None,
    note: str | None = None,
    problem: str | None = None,
    status: int = 200,
) -> Response:
    root = _root(request)
    context = {
        "caller": None,
        "prefix": root + PREFIX,
        "static": root + PREFIX + "/static",
        "title": "Log in",
        "nav": None,
        "next": next,
        "note": note,
        "problem": problem,
    }
    response = templates().TemplateResponse(request, "login.html", context, status_code=status)
    return _secure(response)


@dataclass(frozen=True)
class _Refused:
    """The caller of a refused login, for the audit."""

    key_id: str
    role: str = "none"
    partner_id: str | None = None


_KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,40}")


def _typed_key_id(key: str) -> str:
    """The key id part of what was typed (before the dot), or ``-`` when it is not one."""
    head = key.split(".", 1)[0]
    return head if "." in key and _KEY_ID.fullmatch(head) else "-"


@router.post("/login")
async def login(request: Request) -> Response:
    """Check the key and keep it in an HttpOnly, SameSite=Strict cookie."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return _login_page(request, next=None, problem="The form is too large.", status=400)
    form = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    key = (form.get("key") or [""])[0].strip()
    target = _safe_next((form.get("next") or [None])[0])
    if not key:
        return _login_page(request, next=target, problem="Enter your API key.", status=401)
    source = _source(request)
    try:
        caller = await run_in_threadpool(source.caller, key)
    except TooManyAttemptsError as exc:
        await run_in_threadpool(
            source.audit, _Refused(_typed_key_id(key)), "POST /pages/login", None, 429
        )
        page = _login_page(request, next=target, problem=f"{exc}.", status=exc.http_status)
        page.headers["Retry-After"] = str(exc.retry_after)
        return page
    except AmplifyError as exc:
        return _login_page(
            request,
            next=target,
            problem=f"The key cannot be checked: {exc}",
            status=exc.http_status,
        )
    if caller is None:
        # a refused login is audited like a refused API call: the key id typed, never the
        # secret, so repeated guesses show in the audit
        await run_in_threadpool(
            source.audit, _Refused(_typed_key_id(key)), "POST /pages/login", None, 401
        )
        return _login_page(
            request,
            next=target,
            problem="That key is not valid (unknown or revoked). Check it and try again.",
            status=401,
        )
    response = _redirect(request, target or _home(caller))
    response.set_cookie(
        COOKIE,
        key,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    await run_in_threadpool(source.audit, caller, "POST /pages/login", caller.partner_id, 303)
    return _secure(response)


@router.post("/logout")
def logout(page: PageDep) -> Response:
    """Forget the key (clear the cookie) and go back to the login form."""
    if page.caller is not None:
        page.audit(page.caller.partner_id, 303)
    response = _redirect(page.request, f"{PREFIX}/login?note=logout")
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return _secure(response)


def _lead_frame(
    page: Page, partner: str | None, category: str | None, top: int
) -> pd.DataFrame | None:
    if partner is None:
        return None
    return page.source.leads(partner, category=category, top=top)


@router.get("/leads")
def leads_page(
    page: PageDep,
    partner: str | None = None,
    category: str | None = None,
    top: str | None = None,
) -> Response:
    """A partner's lead list: sortable, filterable, downloadable."""
    caller = page.caller
    if caller is None:
        return page.to_login()
    asked = partner or caller.partner_id
    try:
        pid = _partner(caller, page.source, partner)
        cat, n = _category(category), _top(top)
        frame = _lead_frame(page, pid, cat, n)
        partners = page.source.partners() if caller.role == "operations" else []
    except AmplifyError as exc:
        return page.error(exc, partner_id=asked)
    table = None
    if frame is not None and len(frame):
        table = build_table(
            "leads-table",
            f"Lead list of {pid}",
            frame,
            LEAD_COLUMNS,
            sorted_by="rank",
            direction="ascending",
        )
    query = {"partner": pid or "", "category": cat or "", "top": n}
    return page.html(
        "leads.html",
        {
            "title": f"Leads · {pid}" if pid else "Leads",
            "nav": "leads",
            "partner": pid,
            "partners": partners,
            "categories": PRODUCT_CATEGORIES,
            "category": cat,
            "top": n,
            "top_max": TOP_MAX,
            "table": table,
            "as_of": _as_of(frame) if frame is not None else None,
            "versions": _versions(frame) if frame is not None else "",
            "csv_query": "&".join(f"{k}={quote(str(v), safe='')}" for k, v in query.items()),
        },
        partner_id=pid,
    )


@router.get("/leads.csv")
def leads_csv(
    page: PageDep,
    partner: str | None = None,
    category: str | None = None,
    top: str | None = None,
) -> Response:
    """The lead list as shown, as CSV."""
    caller = page.caller
    if caller is None:
        return page.to_login()
    asked = partner or caller.partner_id
    try:
        pid = _partner(caller, page.source, partner)
        if pid is None:
            raise InvalidRequestError(
                "pick a partner for the lead list: /pages/leads.csv?partner=<partner id>"
            )
        frame = page.source.leads(pid, category=_category(category), top=_top(top))
    except AmplifyError as exc:
        return page.error(exc, partner_id=asked)
    return page.csv(
        table_csv(frame, LEAD_COLUMNS), _filename("leads", pid, _as_of(frame)), partner_id=pid
    )


@dataclass
class Section:
    """A section of the fleet page: its table, or why there is none."""

    table: Table | None = None
    empty: str | None = None
    frame: pd.DataFrame | None = None


def _fleet_columns(caller: PageCaller, columns: Sequence[Column]) -> tuple[Column, ...]:
    """Operations see the partner column; a partner key always sees its own."""
    if caller.role == "operations":
        return tuple(columns)
    return tuple(c for c in columns if c.key != "partner_id")


def _risk_section(source: PageSource, caller: PageCaller, pid: str | None, top: int) -> Section:
    try:
        frame = source.fleet(pid, top=top)
    except (NotFoundError, UnfedError) as exc:
        return Section(empty=_sentence(exc.message))
    if frame.empty:
        return Section(empty="No failure-risk scores yet: run amplify score --all.", frame=frame)
    table = build_table(
        "risk-table",
        "Devices by failure risk",
        frame,
        _fleet_columns(caller, FLEET_COLUMNS),
        sorted_by="probability",
        direction="descending",
    )
    return Section(table=table, frame=frame)


def _due(plan: pd.DataFrame, top: int) -> pd.DataFrame:
    """The colours to ship now or soon, in the plan's order (soonest first)."""
    if "status" not in plan:
        return plan.head(0)
    return plan[plan["status"].isin(DUE)].head(top)


def _supplies_section(
    source: PageSource, caller: PageCaller, pid: str | None, top: int
) -> tuple[Section, dict[str, int]]:
    from amplify_ml.scoring.supplies import status_counts

    try:
        plan = source.supplies(pid)
    except (NotFoundError, UnfedError) as exc:
        return Section(empty=_sentence(exc.message)), {}
    if plan.empty:
        return Section(empty="No supplies forecast yet: run amplify score --all."), {}
    counts = status_counts(plan)
    due = _due(plan, top)
    if due.empty:
        return Section(empty=f"Nothing to ship now or soon: all {len(plan):,} colours are ok."), (
            counts
        )
    table = build_table(
        "supplies-table",
        "Colours to ship now or soon",
        due,
        _fleet_columns(caller, SUPPLY_COLUMNS),
        sorted_by="ship_by",
        direction="ascending",
    )
    return Section(table=table, frame=due), counts


@router.get("/fleet")
def fleet_page(page: PageDep, partner: str | None = None, top: str | None = None) -> Response:
    """Devices by failure risk (riskiest first) and the supplies to ship."""
    caller = page.caller
    if caller is None:
        return page.to_login()
    asked = partner or caller.partner_id
    try:
        pid = _partner(caller, page.source, partner)
        n = _top(top)
        risk = _risk_section(page.source, caller, pid, n)
        supplies, counts = _supplies_section(page.source, caller, pid, n)
        partners = page.source.partners() if caller.role == "operations" else []
    except AmplifyError as exc:
        return page.error(exc, partner_id=asked)
    due_total = counts.get("ship now", 0) + counts.get("soon", 0)
    frame = risk.frame if risk.frame is not None else supplies.frame
    return page.html(
        "fleet.html",
        {
            "title": f"Fleet · {pid or 'all partners'}",
            "nav": "fleet",
            "partner": pid,
            "partners": partners,
            "top": n,
            "top_max": TOP_MAX,
            "risk": risk,
            "supplies": supplies,
            "counts": counts,
            "due_total": due_total,
            "as_of": _as_of(frame) if frame is not None else None,
            "csv_query": f"partner={quote(pid or '', safe='')}&top={n}",
        },
        partner_id=pid,
    )


@router.get("/fleet.csv")
def fleet_csv(page: PageDep, partner: str | None = None, top: str | None = None) -> Response:
    """The devices by failure risk as shown, as CSV."""
    caller = page.caller
    if caller is None:
        return page.to_login()
    asked = partner or caller.partner_id
    try:
        pid = _partner(caller, page.source, partner)
        frame = page.source.fleet(pid, top=_top(top))
    except AmplifyError as exc:
        return page.error(exc, partner_id=asked)
    columns = _fleet_columns(caller, FLEET_COLUMNS)
    return page.csv(
        table_csv(frame, columns), _filename("fleet", pid, _as_of(frame)), partner_id=pid
    )


@router.get("/supplies.csv")
def supplies_csv(page: PageDep, partner: str | None = None, top: str | None = None) -> Response:
    """The colours to ship now or soon as shown on the fleet page, as CSV."""
    caller = page.caller
    if caller is None:
        return page.to_login()
    asked = partner or caller.partner_id
    try:
        pid = _partner(caller, page.source, partner)
        due = _due(page.source.supplies(pid), _top(top))
    except AmplifyError as exc:
        return page.error(exc, partner_id=asked)
    columns = _fleet_columns(caller, SUPPLY_COLUMNS)
    return page.csv(
        table_csv(due, columns), _filename("supplies", pid, _as_of(due)), partner_id=pid
    )
