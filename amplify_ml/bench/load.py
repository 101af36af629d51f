"""A small, bounded HTTP load generator for loopback benchmarks.

Two shapes of load, both bounded in requests and in time, both against one host and port:

- :func:`open_loop`: requests start on a fixed schedule (``rate`` a second) whatever the
  server does; latency is measured from the *scheduled* start, so a server that falls behind
  shows it in the tail (no coordinated omission). This is the shape of "500 requests/s".
- :func:`closed_loop`: ``concurrency`` clients each send the next request when the previous
  answer arrives, for ``seconds``; throughput is what the server sustains.

HTTP/1.1 keep-alive over asyncio streams, no client library: with a few microseconds a
request on the client side, the figures describe the server, not the load generator (two
cores are shared by both here; the report says how busy the client was).
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable, Coroutine, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from amplify_ml.errors import InvalidRequestError

Request = tuple[str, str, bytes]
"""(method, path with query, body)."""

MAX_REQUESTS = 200_000
MAX_SECONDS = 600.0


@dataclass
class LoadResult:
    """What one load run measured; latencies in milliseconds."""

    name: str
    shape: str
    target_rate: float | None
    concurrency: int
    seconds: float
    requests: int
    errors: int
    status_counts: dict[int, int]
    latencies_ms: np.ndarray = field(repr=False)
    client_cpu_seconds: float = 0.0
    error_examples: list[str] = field(default_factory=list)

    @property
    def throughput(self) -> float:
        ok = self.requests - self.errors
        return ok / self.seconds if self.seconds > 0 else 0.0

    def percentile(self, q: float) -> float | None:
        if len(self.latencies_ms) == 0:
            return None
        return float(np.percentile(self.latencies_ms, q))

    def to_dict(self) -> dict[str, Any]:
        def r(v: float | None) -> float | None:
            return None if v is None else round(v, 3)

        return {
            "name": self.name,
            "shape": self.shape,
            "target_rate": self.target_rate,
            "concurrency": self.concurrency,
            "seconds": round(self.seconds, 3),
            "requests": self.requests,
            "errors": self.errors,
            "status_counts": {str(k): v for k, v in sorted(self.status_counts.items())},
            "throughput_per_s": round(self.throughput, 1),
            "p50_ms": r(self.percentile(50)),
            "p90_ms": r(self.percentile(90)),
            "p99_ms": r(self.percentile(99)),
            "max_ms": r(float(self.latencies_ms.max()) if len(self.latencies_ms) else None),
            "client_cpu_seconds": round(self.client_cpu_seconds, 2),
            "error_examples": self.error_examples[:5],
        }


class _Conn:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, host: str, port: int, headers: dict[str, str]) -> None:
        self.host, self.port = host, port
        extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self._head = f"Host: {host}:{port}\r\n{extra}"
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def _open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def send(self, req: Request, timeout: float) -> tuple[int, bytes]:
        method, path, body = req
        if self.writer is None:
            await self._open()
        assert self.reader is not None and self.writer is not None  # opened just above
        head = f"{method} {path} HTTP/1.1\r\n{self._head}Content-Length: {len(body)}\r\n\r\n"
        self.writer.write(head.encode() + body)
        try:
            return await asyncio.wait_for(self._response(), timeout)
        except BaseException:
            self.close()  # a half-read answer would poison the next request
            raise

    async def _response(self) -> tuple[int, bytes]:
        assert self.reader is not None
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("the server closed the connection")
        status = int(status_line.split()[1])
        length, chunked, close = 0, False, False
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding" and "chunked" in value:
                chunked = True
            elif name == "connection" and value == "close":
                close = True
        if chunked:
            parts = []
            while True:
                size = int((await self.reader.readline()).strip() or b"0", 16)
                if size == 0:
                    await self.reader.readline()
                    break
                parts.append(await self.reader.readexactly(size))
                await self.reader.readline()
            body = b"".join(parts)
        else:
            body = await self.reader.readexactly(length) if length else b""
        if close:
            self.close()
        return status, body


class _Tally:
    """Statuses, errors and a few examples of the errors, over one run."""

    def __init__(self, ok: Callable[[int], bool]) -> None:
        self.ok = ok
        self.statuses: dict[int, int] = {}
        self.errors = 0
        self.examples: list[str] = []

    def _error(self, text: str) -> None:
        self.errors += 1
        if len(self.examples) < 5:
            self.examples.append(text)

    async def send(self, conn: _Conn, req: Request, timeout: float) -> None:
        """Send ``req`` on ``conn`` and count the answer; a failure is counted, never raised."""
        try:
            status, body = await conn.send(req, timeout)
        except Exception as exc:  # every failure is counted, none is raised
            self._error(f"{type(exc).__name__}: {exc}")
            return
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if not self.ok(status):
            self._error(f"{status}: {body[:200].decode('utf-8', 'replace')}")


@contextmanager
def _no_pauses() -> Iterator[None]:
    """No cyclic garbage collection in this process while it measures: the benchmark's own
    heap (MLflow, pandas, the champions) made full collections stall the client for 0.2 s,
    which showed up as the server's p99."""
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.unfreeze()


def _measure(
    run: Coroutine[Any, Any, tuple[list[float], dict[int, int], int, list[str], float]],
    *,
    name: str,
    shape: str,
    target_rate: float | None,
    concurrency: int,
) -> LoadResult:
    """Run one load coroutine (without pauses of our own) and describe what it measured."""
    cpu0 = time.process_time()
    with _no_pauses():
        lat, statuses, errors, examples, elapsed = asyncio.run(run)
    return LoadResult(
        name=name,
        shape=shape,
        target_rate=target_rate,
        concurrency=concurrency,
        seconds=elapsed,
        requests=len(lat),
        errors=errors,
        status_counts=statuses,
        latencies_ms=np.asarray(lat),
        client_cpu_seconds=time.process_time() - cpu0,
        error_examples=examples,
    )


def _check(rate: float | None, seconds: float, concurrency: int) -> None:
    if rate is not None and not 0 < rate <= 20_000:
        raise InvalidRequestError(f"rate must be between 0 and 20000 requests/s, got {rate}")
    if not 0 < seconds <= MAX_SECONDS:
        raise InvalidRequestError(f"seconds must be between 0 and {MAX_SECONDS}, got {seconds}")
    if not 1 <= concurrency <= 1024:
        raise InvalidRequestError(f"concurrency must be between 1 and 1024, got {concurrency}")
    if rate is not None and rate * seconds > MAX_REQUESTS:
        raise InvalidRequestError(
            f"{rate} requests/s for {seconds} s is more than the {MAX_REQUESTS} requests a "
            "run may send: shorten the run"
        )


async def _open_loop(
    host: str,
    port: int,
    requests: Callable[[int], Request],
    rate: float,
    seconds: float,
    connections: int,
    headers: dict[str, str],
    timeout: float,
    ok: Callable[[int], bool],
) -> tuple[list[float], dict[int, int], int, list[str], float]:
    pool: asyncio.Queue[_Conn] = asyncio.Queue()
    for _ in range(connections):
        pool.put_nowait(_Conn(host, port, headers))
    n = int(rate * seconds)
    lat: list[float] = []
    tally = _Tally(ok)
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.05

    async def one(i: int) -> None:
        scheduled = start + i / rate
        delay = scheduled - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        conn = await pool.get()
        try:
            await tally.send(conn, requests(i), timeout)
        finally:
            lat.append((loop.time() - scheduled) * 1000.0)
            pool.put_nowait(conn)

    await asyncio.gather(*(one(i) for i in range(n)))
    elapsed = loop.time() - start
    while not pool.empty():
        pool.get_nowait().close()
    return lat, tally.statuses, tally.errors, tally.examples, elapsed


def open_loop(
    host: str,
    port: int,
    requests: Callable[[int], Request],
    *,
    rate: float,
    seconds: float,
    name: str = "",
    connections: int = 64,
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
    ok: Callable[[int], bool] = lambda s: 200 <= s < 300,
) -> LoadResult:
    """Send ``rate`` requests a second for ``seconds`` on a fixed schedule; ``requests(i)``
    gives the i-th request. Bounded: at most ``rate x seconds`` requests."""
    _check(rate, seconds, connections)
    run = _open_loop(host, port, requests, rate, seconds, connections, headers or {}, timeout, ok)
    return _measure(run, name=name, shape="open", target_rate=rate, concurrency=connections)


async def _closed_loop(
    host: str,
    port: int,
    requests: Callable[[int], Request],
    seconds: float,
    concurrency: int,
    headers: dict[str, str],
    timeout: float,
    ok: Callable[[int], bool],
) -> tuple[list[float], dict[int, int], int, list[str], float]:
    loop = asyncio.get_running_loop()
    lat: list[float] = []
    tally = _Tally(ok)
    counter = 0
    start = loop.time()
    end = start + seconds

    async def client() -> None:
        nonlocal counter
        conn = _Conn(host, port, headers)
        while loop.time() < end and counter < MAX_REQUESTS:
            i = counter
            counter += 1
            t0 = loop.time()
            await tally.send(conn, requests(i), timeout)
            lat.append((loop.time() - t0) * 1000.0)
        conn.close()

    await asyncio.gather(*(client() for _ in range(concurrency)))
    return lat, tally.statuses, tally.errors, tally.examples, loop.time() - start


def closed_loop(
    host: str,
    port: int,
    requests: Callable[[int], Request],
    *,
    seconds: float,
    concurrency: int = 8,
    name: str = "",
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
    ok: Callable[[int], bool] = lambda s: 200 <= s < 300,
) -> LoadResult:
    """``concurrency`` clients, each sending its next request when the answer arrives, for
    ``seconds`` (at most :data:`MAX_REQUESTS` requests in all)."""
    _check(None, seconds, concurrency)
    run = _closed_loop(host, port, requests, seconds, concurrency, headers or {}, timeout, ok)
    return _measure(run, name=name, shape="closed", target_rate=None, concurrency=concurrency)


def cycle(reqs: Sequence[Request]) -> Callable[[int], Request]:
    """The i-th request of a fixed list, round robin."""
    if not reqs:
        raise InvalidRequestError("a load run needs at least one request")
    return lambda i: reqs[i % len(reqs)]
