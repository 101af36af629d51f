"""The pages over a PageSource of hand-made frames: login, isolation, tables = CSV, errors."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from html.parser import HTMLParser
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from amplify_ml.errors import (
    AmplifyError,
    InvalidRequestError,
    LakeError,
    ModelError,
    NotFoundError,
)
from amplify_ml.serving import pages
from tests.pages_source import ACCOUNTS, FramePageSource, lead_offers, page_app

P001_KEY, P002_KEY, OPS_KEY = "key-p001-secret", "key-p002-secret", "key-ops-secret"


class TableParser(HTMLParser):
    """Headers (label, aria-sort) and rows (each cell's data-value) of one table by id."""

    def __init__(self, table_id: str) -> None:
        super().__init__()
        self.table_id = table_id
        self.inside = False
        self.headers: list[tuple[str, str | None]] = []
        self.rows: list[list[str]] = []
        self._th: list[str] | None = None
        self._sort: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "table" and a.get("id") == self.table_id:
            self.inside = True
        if not self.inside:
            return
        if tag == "th":
            self._th, self._sort = [], a.get("aria-sort")
        elif tag == "tr" and self.headers:
            self.rows.append([])
        elif tag == "td":
            self.rows[-1].append(a.get("data-value") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self.inside = False
        elif tag == "th" and self._th is not None:
            self.headers.append(("".join(self._th).strip(), self._sort))
            self._th = None

    def handle_data(self, data: str) -> None:
        if self._th is not None:
            self._th.append(data)


def table(html: str, table_id: str) -> TableParser:
    parser = TableParser(table_id)
    parser.feed(html)
    return parser


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


@pytest.fixture
def source() -> FramePageSource:
    return FramePageSource()


@pytest.fixture
def login(source: FramePageSource) -> Callable[..., TestClient]:
    """A client logged in through the form with ``key`` (cookie kept by the client)."""

    def make(key: str, src: FramePageSource | None = None) -> TestClient:
        client = TestClient(page_app(src or source))
        r = client.post("/pages/login", data={"key": key}, follow_redirects=False)
        assert r.status_code == 303, r.text
        return client

    return make


# -- login and the cookie -------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/pages/leads", "/pages/fleet?top=5", "/pages/leads.csv", "/pages/supplies.csv"]
)
def test_without_a_key_every_page_redirects_to_the_login_form(
    source: FramePageSource, path: str
) -> None:
    client = TestClient(page_app(source))
    r = client.get(path, follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/pages/login?next=" + path.replace("/", "%2F").replace(
        "?", "%3F"
    ).replace("=", "%3D")
    assert source.calls == [] and source.audits == []


def test_the_login_form_asks_for_the_key_and_carries_where_to_go_back(
    source: FramePageSource,
) -> None:
    r = TestClient(page_app(source)).get("/pages/login?next=%2Fpages%2Ffleet%3Ftop%3D5")
    assert r.status_code == 200
    assert '<input id="key" name="key" type="password"' in r.text
    assert '<input type="hidden" name="next" value="/pages/fleet?top=5">' in r.text
    assert 'action="/pages/login"' in r.text


@pytest.mark.parametrize(
    ("key", "home", "who"),
    [(P001_KEY, "/pages/leads", ("k_p001", "P001")), (OPS_KEY, "/pages/fleet", ("k_ops", None))],
)
def test_login_sets_an_httponly_strict_cookie_and_opens_the_roles_page(
    source: FramePageSource, key: str, home: str, who: tuple[str, str | None]
) -> None:
    client = TestClient(page_app(source))
    r = client.post("/pages/login", data={"key": key}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == home
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"amplify_key={key};")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain http (tests); https sets it, below
    assert source.audits == [(who[0], "POST /pages/login", who[1], 303)]
    assert client.get(home).status_code == 200


def test_login_over_https_sets_a_secure_cookie(source: FramePageSource) -> None:
    client = TestClient(page_app(source), base_url="https://testserver")
    r = client.post("/pages/login", data={"key": P001_KEY}, follow_redirects=False)
    assert "Secure" in r.headers["set-cookie"]


WRONG = "That key is not valid (unknown or revoked). Check it and try again."


@pytest.mark.parametrize(
    ("key", "problem", "audited"),
    [
        # a refused login is audited with the key id typed, never the secret
        ("not-a-key", WRONG, [("-", "POST /pages/login", None, 401)]),
        ("k_p001.wrong-secret", WRONG, [("k_p001", "POST /pages/login", None, 401)]),
        ("   ", "Enter your API key.", []),
    ],
)
def test_a_wrong_or_empty_key_shows_the_form_again_with_401(
    source: FramePageSource, key: str, problem: str, audited: list[tuple[Any, ...]]
) -> None:
    r = TestClient(page_app(source)).post(
        "/pages/login", data={"key": key, "next": "/pages/fleet"}, follow_redirects=False
    )
    assert r.status_code == 401
    assert f'<p class="problem" role="alert">{problem}</p>' in r.text
    assert "set-cookie" not in r.headers
    assert "not-a-key" not in r.text and "wrong-secret" not in r.text  # never echoed
    assert 'name="next" value="/pages/fleet"' in r.text
    assert source.audits == audited
    assert "wrong-secret" not in repr(source.audits)


@pytest.mark.parametrize(
    ("next_", "location"),
    [
        ("/pages/fleet?top=5", "/pages/fleet?top=5"),
        ("https://evil.example/pages/leads", "/pages/leads"),
        ("//evil.example/pages/leads", "/pages/leads"),
        ("/pages/login", "/pages/leads"),
        ("/other/place", "/pages/leads"),
    ],
)
def test_login_goes_back_to_the_page_asked_for_never_off_site(
    source: FramePageSource, next_: str, location: str
) -> None:
    r = TestClient(page_app(source)).post(
        "/pages/login", data={"key": P001_KEY, "next": next_}, follow_redirects=False
    )
    assert r.status_code == 303 and r.headers["location"] == location


def test_logout_clears_the_cookie(
    source: FramePageSource, login: Callable[..., TestClient]
) -> None:
    client = login(P001_KEY)
    r = client.post("/pages/logout", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/pages/login?note=logout"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith('amplify_key="";') and "Max-Age=0" in cookie
    assert client.get("/pages/leads", follow_redirects=False).status_code == 303
    assert "You are logged out." in client.get("/pages/login?note=logout").text
    assert source.audits[-1] == ("k_p001", "POST /pages/logout", "P001", 303)


def test_a_revoked_key_goes_back_to_the_login_form_and_loses_its_cookie(
    source: FramePageSource, login: Callable[..., TestClient]
) -> None:
    client = login(P001_KEY)
    del source.keys[P001_KEY]
    r = client.get("/pages/fleet", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/pages/login?next=%2Fpages%2Ffleet&note=expired"
    assert r.headers["set-cookie"].startswith('amplify_key="";')
    note = client.get(r.headers["location"]).text
    assert "Your key is no longer valid (revoked or replaced)" in note


def test_the_index_opens_the_roles_page(login: Callable[..., TestClient]) -> None:
    ops = login(OPS_KEY)
    assert ops.get("/pages/", follow_redirects=False).headers["location"] == "/pages/fleet"
    anonymous = TestClient(ops.app)
    assert anonymous.get("/pages/", follow_redirects=False).headers["location"] == "/pages/login"


# -- the lead list --------------------------------------------------------------------------


def test_the_lead_page_lists_the_partners_leads_in_rank_order(
    source: FramePageSource, login: Callable[..., TestClient]
) -> None:
    r = login(P001_KEY).get("/pages/leads")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    t = table(r.text, "leads-table")
    assert [h for h, _ in t.headers] == [
        "#",
        "Account",
        "Offer",
        "Category",
        "Device",
        "Product",
        "Score",
        "Exp. value",
        "Reasons",
    ]
    assert dict(t.headers)["#"] == "ascending"
    expected = source.leads("P001", category=None, top=50)
    assert len(t.rows) == len(expected) == 30
    assert [r[0] for r in t.rows] == [str(v) for v in range(1, 31)]
    assert [r[1] for r in t.rows] == list(expected["account_id"])
    assert [float(r[7]) for r in t.rows] == list(expected["expected_value"])
    assert "scores as of 2026-09-30 · model version 1" in r.text
    assert '<ul class="reasons"><li>' in r.text
    # the score as a percentage, the expected value rounded
    first = expected.iloc[0]
    assert f">{first['probability']:.0%}<" in r.text
    assert f">{first['expected_value']:,.0f}<" in r.text


def test_category_and_rows_reach_the_source_and_the_csv_link(
    source: FramePageSource, login: Callable[..., TestClient]
) -> None:
    r = login(P001_KEY).get("/pages/leads?category=printer&top=3")
    assert source.calls[-1] == ("leads", "P001", {"category": "printer", "top": 3})
    t = table(r.text, "leads-table")
    assert 0 < len(t.rows) <= 3 and {row[3] for row in t.rows} == {"printer"}
    assert 'href="/pages/leads.csv?partner=P001&amp;category=printer&amp;top=3"' in r.text
    assert '<option value="printer" selected>' in r.text


def _check_csv_equals_table(
    text: str, parsed: TableParser, columns: Sequence[pages.Column]
) -> None:
    rows = csv_rows(text)
    assert len(rows) == len(parsed.rows) > 0
    for row, cells in zip(rows, parsed.rows, strict=True):
        assert len(cells) == len(columns)
        for col, cell in zip(columns, cells, strict=True):
            if col.kind == "reasons":
                assert cell == "; ".join(row[k] for k in col.csv_columns if row[k])
            elif col.numeric:
                assert (cell == row[col.key] == "") or float(cell) == float(row[col.key])
            else:
                assert cell == row[col.key], (col.key, cell, row[col.key])


@pytest.mark.parametrize(
    ("key", "page", "download", "table_id", "columns", "header", "filename"),
    [
        (
            P001_KEY,
            "/pages/leads?category=pc&top=7",
            "/pages/leads.csv?category=pc&top=7",
            "leads-table",
            pages.LEAD_COLUMNS,
            "rank,account_id,offer,category,device_id,recommended_sku,probability,"
            "expected_value,reason_1,reason_2,reason_3",
            "leads-P001-2026-09-30.csv",
        ),
        (
            OPS_KEY,
            "/pages/fleet?top=6",
            "/pages/fleet.csv?top=6",
            "risk-table",
            pages.FLEET_COLUMNS,
            "rank,partner_id,account_id,device_id,family,contract,probability,"
            "likely_component,component_probability,reason_1,reason_2,reason_3",
            "fleet-all-2026-09-30.csv",
        ),
        (
            P001_KEY,
            "/pages/fleet",
            "/pages/supplies.csv",
            "supplies-table",
            tuple(c for c in pages.SUPPLY_COLUMNS if c.key != "partner_id"),
            "account_id,device_id,color,status,ship_by,days_to_ship,p10_days,p50_days,"
            "p90_days,threshold_p50_date,beyond_window",
            "supplies-P001-2026-09-30.csv",
        ),
    ],
)
def test_the_csv_holds_the_rows_and_columns_of_the_table(
    login: Callable[..., TestClient],
    key: str,
    page: str,
    download: str,
    table_id: str,
    columns: Sequence[pages.Column],
    header: str,
    filename: str,
) -> None:
    client = login(key)
    parsed = table(client.get(page).text, table_id)
    r = client.get(download)
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    assert r.headers["content-disposition"] == f'attachment; filename="{filename}"'
    assert r.text.splitlines()[0] == header
    _check_csv_equals_table(r.text, parsed, columns)


def test_operations_pick_a_partner_for_the_lead_list(
    source: FramePageSource, login: Callable[..., TestClient]
) -> None:
    ops = login(OPS_KEY)
    r = ops.get("/pages/leads")
    assert r.status_code == 200 and "Pick a partner to see its lead list." in r.text
    assert '<option value="P001">P001</option><option value="P002">P002</option>' in r.text
    assert [c for c in source.calls if c[0] == "leads"] == []
    one = ops.get("/pages/leads?partner=P002")
    assert {row[1] for row in table(one.text, "leads-table").rows} <= set(ACCOUNTS["P002"])
    assert '<option value="P002" selected>' in one.text
    none = ops.get("/pages/leads?partner=P999")
    assert none.status_code == 404 and "no partner P999 with data: pick one from the list" in (
        none.text
    )
    csv_none = ops.get("/pages/leads.csv")
    assert csv_none.status_code == 422
    assert "pick a partner for the lead list: /pages/leads.csv?partner=&lt;partner id&gt;" in (
        csv_none.text
    )


# -- the fleet ------------------------------------------------------------------------------


def test_the_fleet_page_shows_the_riskiest_device_first_and_the_supplies_due(
    source: FramePageSource, login: Callable[..., TestClient]
) -> None:
    r = login(P001_KEY).get("/pages/fleet")
    assert r.status_code == 200
    risk = table(r.text, "risk-table")
    own = source.devices[source.devices["partner_id"] == "P001"]
    riskiest = own.loc[own["probability"].idxmax()]
    assert risk.rows[0][2] == riskiest["device_id"]
    assert [float(row[5]) for row in risk.rows] == sorted(own["probability"], reverse=True)
    assert dict(risk.headers)["Failure risk"] == "descending"
    assert "Partner" not in dict(risk.headers)  # a partner key sees its own only
    assert f"{riskiest['probability']:.1%}</span>" in r.text
    assert (
        f'<meter min="0" max="1" low="0.1" high="0.3" optimum="0" value="{riskiest["probability"]}">'
        in r.text
    )
    plan = source.supplies("P001")
    counts = plan["status"].value_counts()
    for status, css in (("ship now", "now"), ("soon", "soon"), ("ok", "ok")):
        assert f'<li class="{css}"><b>{counts.get(status, 0)}</b> {status}</li>' in r.text
    due = table(r.text, "supplies-table")
    assert [row[3] for row in due.rows] == [s for s in plan["status"] if s in ("ship now", "soon")]
    # a colour whose P90 lies beyond the model's window is shown as a lower bound
    assert ">≥180.0<" in r.text


def test_operations_see_every_partners_fleet_or_one(
    source: FramePageSource, login: Callable[..., TestClient]
) -> None:
    ops = login(OPS_KEY)
    everyone = table(ops.get("/pages/fleet").text, "risk-table")
    assert dict(everyone.headers)["Partner"] is None
    assert {row[1] for row in everyone.rows} == {"P001", "P002"}
    assert float(everyone.rows[0][6]) == source.devices["probability"].max()
    one = table(ops.get("/pages/fleet?partner=P002&top=2").text, "risk-table")
    assert [row[1] for row in one.rows] == ["P002", "P002"]
    assert source.calls[-2:] == [("fleet", "P002", {"top": 2}), ("supplies", "P002", {})]


def test_too_many_colours_due_for_the_rows_asked_say_so(login: Callable[..., TestClient]) -> None:
    r = login(OPS_KEY).get("/pages/fleet?top=2")
    assert len(table(r.text, "supplies-table").rows) == 2
    assert "Showing the first 2 of 6 colours due: raise Rows to see them all." in r.text


# -- partner isolation ----------------------------------------------------------------------


def _p002_ids(source: FramePageSource) -> set[str]:
    ids = set(ACCOUNTS["P002"])
    for frame in (source.offers, source.devices, source.depletion):
        own = frame[frame["partner_id"] == "P002"]
        ids |= set(own["device_id"].dropna()) | set(own["account_id"])
    return ids


@pytest.mark.parametrize(
    "path",
    [
        "/pages/leads?partner=P002",
        "/pages/leads.csv?partner=P002",
        "/pages/fleet?partner=P002",
        "/pages/fleet.csv?partner=P002",
        "/pages/supplies.csv?partner=P002",
    ],
)
def test_another_partners_id_is_not_found_for_a_partner_key(
    source: FramePageSource, login: Callable[..., TestClient], path: str
) -> None:
    r = login(P001_KEY).get(path)
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
    assert "no such partner for this key: a key sees its own partner only" in r.text
    assert not [i for i in _p002_ids(source) if i in r.text]
    assert not [c for c in source.calls if c[1] == "P002"]
    route = path.split("?")[0]
    assert source.audits[-1] == ("k_p001", f"GET {route}", "P002", 404)


def test_a_partners_pages_and_csvs_never_hold_another_partners_ids(
    source: FramePageSource, login: Callable[..., TestClient]
) -> None:
    client = login(P001_KEY)
    ids = _p002_ids(source)
    assert not ids & set(ACCOUNTS["P001"])  # the check below could not fail otherwise
    for path in (
        "/pages/leads?top=500",
        "/pages/leads.csv?top=500",
        "/pages/fleet?top=500",
        "/pages/fleet.csv?top=500",
        "/pages/supplies.csv?top=500",
        "/pages/leads?partner=P001",
    ):
        text = client.get(path).text
        assert not [i for i in ids if i in text], path
    # while the operations' fleet holds them (the ids are really in the frames)
    assert [i for i in ids if i in login(OPS_KEY).get("/pages/fleet?top=500").text]


# -- errors, empty states, escaping ----------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "error"),
    [
        ("leads", "/pages/leads", InvalidRequestError("top must be at least 1, got 0")),
        ("leads", "/pages/leads.csv", LakeError("the lake is locked by another process: retry")),
        (
            "leads",
            "/pages/leads",
            NotFoundError(
                "no propensity or refresh scores in the workspace: run amplify score "
                "propensity_to_buy refresh_due -w ws"
            ),
        ),
        ("fleet", "/pages/fleet", ModelError("the champion of device_failure cannot be loaded")),
        ("fleet", "/pages/fleet.csv", NotFoundError("no scores of device_failure in ws")),
        ("supplies", "/pages/supplies.csv", InvalidRequestError("not a depletion score table")),
    ],
)
def test_library_errors_render_an_error_page_with_their_status(
    source: FramePageSource,
    login: Callable[..., TestClient],
    method: str,
    path: str,
    error: AmplifyError,
) -> None:
    source.fail[method] = error
    r = login(P001_KEY).get(path)
    assert r.status_code == error.http_status
    assert r.headers["content-type"].startswith("text/html")
    assert f'<p class="message">{error.message}</p>' in r.text
    assert f"<h1>{pages.STATUS_TITLES[error.http_status]}</h1>" in r.text
    assert "Traceback" not in r.text
    assert source.audits[-1] == ("k_p001", f"GET {path}", "P001", error.http_status)


@pytest.mark.parametrize("path", ["/pages/leads?partner=P001", "/pages/fleet"])
def test_a_failing_partner_list_shows_an_error_page_to_operations(
    source: FramePageSource, login: Callable[..., TestClient], path: str
) -> None:
    client = login(OPS_KEY)
    source.fail["partners"] = LakeError("the lake is being rebuilt: retry in a minute")
    r = client.get(path)
    assert r.status_code == 503
    assert '<p class="message">the lake is being rebuilt: retry in a minute</p>' in r.text


def test_missing_scores_of_one_fleet_section_leave_the_other(
    source: FramePageSource, login: Callable[..., TestClient]
) -> None:
    message = "no scores of consumable_depletion in ws: run amplify score consumable_depletion"
    source.fail["supplies"] = NotFoundError(message)
    r = login(P001_KEY).get("/pages/fleet")
    assert r.status_code == 200
    # shown as a sentence: capital first, full stop last
    assert f'<p class="empty">N{message[1:]}.</p>' in r.text
    assert len(table(r.text, "risk-table").rows) == 9
    assert 'class="counts"' not in r.text


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("top=abc", "rows must be a whole number from 1 to 500, got &#39;abc&#39;"),
        ("top=0", "rows must be a whole number from 1 to 500, got &#39;0&#39;"),
        ("top=501", "rows must be a whole number from 1 to 500, got &#39;501&#39;"),
        (
            "category=toys",
            "category must be one of printer, pc, supplies, warranty, service, accessory "
            "(or empty for all), got &#39;toys&#39;",
        ),
    ],
)
def test_bad_filters_answer_422_with_what_is_allowed(
    source: FramePageSource, login: Callable[..., TestClient], query: str, message: str
) -> None:
    r = login(P001_KEY).get(f"/pages/leads?{query}")
    assert r.status_code == 422
    assert f'<p class="message">{message}</p>' in r.text
    assert [c for c in source.calls if c[0] == "leads"] == []


def test_empty_frames_show_what_to_run_instead_of_empty_tables(
    login: Callable[..., TestClient],
) -> None:
    empty = FramePageSource()
    empty.offers = empty.offers[empty.offers["partner_id"] == "P002"]
    empty.devices = empty.devices.head(0)
    empty.depletion = empty.depletion.head(0)
    client = login(P001_KEY, empty)
    r = client.get("/pages/leads")
    assert r.status_code == 200 and "<table" not in r.text
    assert '<p class="empty">No scores yet: run amplify score --all.</p>' in r.text
    cat = client.get("/pages/leads?partner=P001&category=warranty")
    assert "No warranty leads for P001: pick another category or all." in cat.text
    f = client.get("/pages/fleet")
    assert "<table" not in f.text
    assert "No failure-risk scores yet: run amplify score --all." in f.text
    assert "No supplies forecast yet: run amplify score --all." in f.text


def test_nothing_due_says_all_colours_are_ok(login: Callable[..., TestClient]) -> None:
    calm = FramePageSource()
    calm.depletion = calm.depletion.assign(
        p10_days=calm.depletion["p10_days"] + 60, p50_days=calm.depletion["p50_days"] + 60
    )
    r = login(P001_KEY, calm).get("/pages/fleet")
    assert "Nothing to ship now or soon: all 7 colours are ok." in r.text
    assert '<li class="ok"><b>7</b> ok</li>' in r.text


def test_a_malicious_account_name_is_escaped_and_defused_in_the_csv(
    login: Callable[..., TestClient],
) -> None:
    evil = FramePageSource()
    bad = lead_offers("P001", 2, 3).assign(
        account_id=['<script>alert("x")</script>', '=HYPERLINK("http://x","y")'],
        reason_1="<img src=x onerror=alert(1)>",
        expected_value=[1e6, 9e5],
    )
    evil.offers = pd.concat([evil.offers, bad], ignore_index=True)
    client = login(P001_KEY, evil)
    html = client.get("/pages/leads").text
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert "<li>&lt;img src=x onerror=alert(1)&gt;</li>" in html
    rows = csv_rows(client.get("/pages/leads.csv").text)
    assert rows[0]["account_id"] == '<script>alert("x")</script>'
    assert rows[1]["account_id"] == '\'=HYPERLINK("http://x","y")'


def test_pages_forbid_inline_scripts_and_caching(login: Callable[..., TestClient]) -> None:
    client = login(P001_KEY)
    for path in ("/pages/leads", "/pages/fleet", "/pages/leads.csv", "/pages/login"):
        r = client.get(path)
        assert "script-src 'self'" in r.headers["content-security-policy"], path
        assert r.headers["cache-control"] == "no-store"
        assert r.headers["x-content-type-options"] == "nosniff"


def test_the_script_and_style_are_served_from_the_package(
    login: Callable[..., TestClient],
) -> None:
    client = login(P001_KEY)
    js = client.get("/pages/static/pages.js")
    assert js.status_code == 200 and "aria-sort" in js.text
    assert "position: sticky" in client.get("/pages/static/pages.css").text


def test_every_page_request_is_audited_with_route_partner_and_status(
    source: FramePageSource, login: Callable[..., TestClient]
) -> None:
    ops = login(OPS_KEY)
    ops.get("/pages/leads?partner=P002")
    ops.get("/pages/fleet")
    ops.get("/pages/fleet.csv?partner=P001")
    ops.get("/pages/supplies.csv")
    ops.get("/pages/leads?top=x")
    ops.post("/pages/logout", follow_redirects=False)
    assert source.audits == [
        ("k_ops", "POST /pages/login", None, 303),
        ("k_ops", "GET /pages/leads", "P002", 200),
        ("k_ops", "GET /pages/fleet", None, 200),
        ("k_ops", "GET /pages/fleet.csv", "P001", 200),
        ("k_ops", "GET /pages/supplies.csv", None, 200),
        ("k_ops", "GET /pages/leads", None, 422),
        ("k_ops", "POST /pages/logout", None, 303),
    ]


def test_links_and_redirects_keep_the_apps_root_path(source: FramePageSource) -> None:
    client = TestClient(page_app(source), root_path="/amplify")
    r = client.get("/pages/leads?top=3", follow_redirects=False)
    assert r.headers["location"] == "/amplify/pages/login?next=%2Fpages%2Fleads%3Ftop%3D3"
    r = client.post(
        "/pages/login", data={"key": P001_KEY, "next": "/pages/fleet"}, follow_redirects=False
    )
    assert r.headers["location"] == "/amplify/pages/fleet"
    html = client.get("/pages/fleet").text
    assert '<link rel="stylesheet" href="/amplify/pages/static/pages.css">' in html
    assert 'href="/amplify/pages/supplies.csv?partner=P001&amp;top=50"' in html


def test_a_key_store_that_fails_shows_its_error_not_a_traceback(
    source: FramePageSource, login: Callable[..., TestClient]
) -> None:
    client = login(P001_KEY)
    source.fail["caller"] = LakeError("the key store is locked: retry in a minute")
    r = client.get("/pages/leads")
    assert r.status_code == 503
    assert '<p class="message">the key store is locked: retry in a minute</p>' in r.text
    form = TestClient(page_app(source)).post("/pages/login", data={"key": P001_KEY})
    assert form.status_code == 503
    assert "The key cannot be checked: the key store is locked: retry in a minute" in form.text
    assert "set-cookie" not in form.headers


def test_a_key_of_another_role_may_not_use_the_pages(
    source: FramePageSource, login: Callable[..., TestClient]
) -> None:
    source.keys["key-odd-secret"] = ("k_odd", "auditor", None)
    r = login("key-odd-secret").get("/pages/fleet")
    assert r.status_code == 403
    assert (
        "a key with the role &#39;auditor&#39; may not use the pages: use a partner or an "
        "operations key"
    ) in r.text
    assert source.calls == []
