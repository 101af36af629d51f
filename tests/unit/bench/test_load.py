"""The loopback load generator against a small server in a thread (a few hundred requests)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import pytest
import uvicorn
from fastapi import FastAPI, Response
from fastapi.responses import StreamingResponse

from amplify_ml.bench.load import closed_loop, cycle, open_loop
from amplify_ml.errors import InvalidRequestError


def _app() -> FastAPI:
    app = FastAPI()

    @app.get("/ok")
    def ok() -> dict[str, int]:
        return {"ok": 1}

    @app.get("/fail")
    def fail() -> Response:
        return Response("nope", status_code=503)

    @app.get("/slow")
    async def slow() -> dict[str, int]:
        await asyncio.sleep(0.05)
        return {"slow": 1}

    @app.post("/echo")
    async def echo(body: dict) -> dict:
        return body

    @app.get("/chunks")
    def chunks() -> StreamingResponse:
        return StreamingResponse(iter([b"a" * 10, b"b" * 20]), media_type="text/plain")

    return app


@pytest.fixture(scope="module")
def server():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(_app(), host="127.0.0.1", port=port, log_level="error"))
    t = threading.Thread(target=srv.run, daemon=True)
    t.start()
    deadline = time.monotonic() + 20
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert srv.started, "the test server did not start"
    yield port
    srv.should_exit = True
    t.join(10)


def test_open_loop_sends_every_scheduled_request_and_counts_errors(server) -> None:
    reqs = cycle([("GET", "/ok", b""), ("GET", "/fail", b""), ("GET", "/chunks", b"")])
    r = open_loop("127.0.0.1", server, reqs, rate=200, seconds=0.5, name="mix")
    assert r.requests == 100
    assert r.status_counts == {200: 67, 503: 33}
    assert r.errors == 33
    assert r.error_examples[0] == "503: nope"
    assert 0 < r.percentile(50) <= r.percentile(99)
    d = r.to_dict()
    assert (
        d["requests"] == 100 and d["errors"] == 33 and d["status_counts"] == {"200": 67, "503": 33}
    )


def test_latency_is_measured_from_the_schedule(server) -> None:
    # one connection, 50 ms answers, 40 requests/s: each waits for the ones before it, so the
    # tail grows far beyond the 50 ms a request takes on its own
    r = open_loop(
        "127.0.0.1", server, cycle([("GET", "/slow", b"")]), rate=40, seconds=0.5, connections=1
    )
    assert r.requests == 20 and r.errors == 0
    assert r.percentile(50) >= 50.0
    assert r.percentile(99) > 200.0


def test_closed_loop_with_bodies(server) -> None:
    body = b'{"x": 1}'
    r = closed_loop(
        "127.0.0.1",
        server,
        cycle([("POST", "/echo", body)]),
        seconds=0.3,
        concurrency=4,
        headers={"Content-Type": "application/json"},
    )
    assert r.requests > 10 and r.errors == 0 and set(r.status_counts) == {200}
    assert r.throughput > 0


def test_refused_connections_are_errors_not_crashes() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    r = open_loop("127.0.0.1", port, cycle([("GET", "/ok", b"")]), rate=50, seconds=0.2)
    assert r.requests == 10 and r.errors == 10
    assert r.error_examples[0].startswith(("ConnectionRefusedError", "OSError"))


def test_runs_are_bounded() -> None:
    with pytest.raises(InvalidRequestError, match="more than the 200000 requests"):
        open_loop("127.0.0.1", 1, cycle([("GET", "/", b"")]), rate=10_000, seconds=30)
    with pytest.raises(InvalidRequestError, match="seconds must be between 0 and 600"):
        closed_loop("127.0.0.1", 1, cycle([("GET", "/", b"")]), seconds=601)
    with pytest.raises(InvalidRequestError, match="at least one request"):
        cycle([])
