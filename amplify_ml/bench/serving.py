"""Benchmark: the API under load on loopback, and online scoring against ``mlflow models serve``.

In one run, on the champions the scoring benchmark trains on the small world (its workspace
``<ws>/bench/scoring-ws``, the small lake linked in as the workspace's lake):

- ``lookup``: ``GET /v1/devices/{id}/risk`` with a partner key (keys, tenant check, audit
  on), open loop at each rate (requests start on schedule; latency from the schedule);
- ``online``: ``POST /v1/models/device_failure/score`` with one row, closed loop
  (``concurrency`` clients back to back), through ``amplify serve``;
- ``mlflow``: the same row to ``mlflow models serve`` of the same model version
  (``/invocations``), same load.

Both servers run as separate processes (uvicorn, one worker each unless ``workers``), the
load generator in this one: all three share the machine's cores, as they would on a laptop.
Targets (issue 7): lookup p99 under 10 ms at 500 requests/s with 0 errors; online scoring
throughput at least 20x ``mlflow models serve``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import warnings
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from amplify_ml.bench import write_result
from amplify_ml.bench.load import LoadResult, closed_loop, cycle, open_loop
from amplify_ml.errors import AmplifyError

ONLINE_MODEL = "device_failure"
LOOKUP_TARGET_P99_MS = 10.0
ONLINE_TARGET_RATIO = 20.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(url: str, seconds: float, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + seconds
    last = ""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AmplifyError(f"{what} exited with code {proc.returncode} before it was ready")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except urllib.error.HTTPError as e:
            last = f"{e.code}: {e.read()[:300].decode('utf-8', 'replace')}"
        except OSError as e:
            last = str(e)
        time.sleep(0.25)
    raise AmplifyError(f"{what} was not ready at {url} after {seconds:.0f} s (last answer: {last})")


@contextmanager
def _process(cmd: list[str], env: dict[str, str], log: Path) -> Any:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            yield proc
        finally:
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                with suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)


def _workspace(base: Path, seed: int, memory_limit: str) -> Path:
    """The scoring benchmark's workspace with champions, failure scores and the small lake."""
    from amplify_ml.bench.scoring import _champions, _lake
    from amplify_ml.scoring.score import read_scores, score

    ws = base / "scoring-ws"
    _champions(ws, base, seed, memory_limit)
    lake = _lake(base, "small", seed, memory_limit)
    link = ws / "lake"
    if not link.exists():
        link.symlink_to(lake.root.resolve(), target_is_directory=True)
    try:
        read_scores(ws, ONLINE_MODEL)
    except AmplifyError:
        score(ONLINE_MODEL, lake, workspace=ws, memory_limit=memory_limit)
    return ws


def _one_row(ws: Path) -> dict[str, Any]:
    """One real feature row of the online model: its MLflow input example's first row."""
    import mlflow

    from amplify_ml.modeling.registry import configure_tracking
    from amplify_ml.scoring.score import champion

    configure_tracking(ws)
    ch = champion(ONLINE_MODEL, ws)
    with tempfile.TemporaryDirectory(prefix="amplify-bench-") as tmp:
        example = mlflow.models.Model.load(ch.uri).load_input_example(
            mlflow.artifacts.download_artifacts(ch.uri, dst_path=tmp)
        )
    if example is None:
        raise AmplifyError(f"the {ONLINE_MODEL} champion was logged without an input example")
    row = json.loads(example.iloc[[0]].to_json(orient="records", date_format="iso"))[0]
    return row


def _line(r: LoadResult) -> str:
    d = r.to_dict()
    rate = f"{r.target_rate:.0f}/s" if r.target_rate else f"{r.concurrency} clients"
    return (
        f"{d['name']:<22} {rate:>11} {d['requests']:>8,} {d['errors']:>6} "
        f"{d['throughput_per_s']:>10,.0f} {d['p50_ms'] or 0:>8.2f} {d['p99_ms'] or 0:>8.2f}"
    )


def _online(
    port: int,
    request: tuple[str, str, bytes],
    headers: dict[str, str],
    *,
    concurrency: int,
    seconds: float,
    name: str,
) -> LoadResult:
    """One online scoring request sent back to back: a second of warm-up, then measured."""
    requests = cycle([request])
    closed_loop("127.0.0.1", port, requests, seconds=1.0, concurrency=concurrency, headers=headers)
    r = closed_loop(
        "127.0.0.1",
        port,
        requests,
        seconds=seconds,
        concurrency=concurrency,
        headers=headers,
        name=name,
    )
    print(_line(r))
    return r


def run(
    workspace: Path,
    *,
    seed: int = 7,
    rates: tuple[float, ...] = (100.0, 500.0),
    seconds: float = 10.0,
    online_seconds: float = 10.0,
    concurrency: int = 8,
    workers: int = 1,
    mlflow_serve: bool = True,
    memory_limit: str = "3GB",
) -> dict[str, Any]:
    from amplify_ml.modeling.registry import configure_tracking
    from amplify_ml.scoring.score import champion, read_scores
    from amplify_ml.serving.keys import KeyStore

    warnings.simplefilter("ignore")
    base = workspace / "bench"
    ws = _workspace(base, seed, memory_limit)
    risk = read_scores(ws, ONLINE_MODEL)
    partner = str(risk["partner_id"].value_counts().index[0])
    devices = sorted(risk.loc[risk["partner_id"] == partner, "device_id"].astype(str))
    _, key = KeyStore.in_workspace(ws).create(partner=partner, label="bench serving")
    row = _one_row(ws)
    tracking = configure_tracking(ws)
    version = champion(ONLINE_MODEL, ws).version
    logs = base / "serving-logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "AMPLIFY_WORKSPACE": str(ws), "MLFLOW_TRACKING_URI": tracking}
    # mlflow models serve starts `uvicorn` by name: the environment's own, not the user's PATH
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("AMPLIFY_LOG_LEVEL", "warning")
    result: dict[str, Any] = {
        "benchmark": "serving",
        "cpus": os.cpu_count(),
        "workers": workers,
        "partner": partner,
        "devices": len(devices),
        "online_model": f"{ONLINE_MODEL} v{version}",
        "runs": [],
    }
    headers = {"X-API-Key": key}
    port = _free_port()
    api = [
        sys.executable,
        "-m",
        "uvicorn",
        "amplify_ml.serving.app:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    print(f"partner {partner}: {len(devices):,} devices; online row of {ONLINE_MODEL} v{version}")
    print(
        f"{'run':<22} {'load':>11} {'requests':>8} {'errors':>6} {'ok/s':>10} {'p50 ms':>8} {'p99 ms':>8}"
    )
    with _process(api, env, logs / "api.log") as proc:
        _wait(f"http://127.0.0.1:{port}/ready", 180, proc, "amplify serve")
        lookups = cycle([("GET", f"/v1/devices/{d}/risk", b"") for d in devices])
        # warm up: every device once (scores cached, connections open)
        open_loop("127.0.0.1", port, lookups, rate=200, seconds=1.0, headers=headers)
        for rate in rates:
            r = open_loop(
                "127.0.0.1",
                port,
                lookups,
                rate=rate,
                seconds=seconds,
                headers=headers,
                name=f"lookup {rate:.0f}/s",
            )
            result["runs"].append(r.to_dict())
            print(_line(r))
        body = json.dumps({"rows": [row]}).encode()
        ours = _online(
            port,
            ("POST", f"/v1/models/{ONLINE_MODEL}/score", body),
            {**headers, "Content-Type": "application/json"},
            concurrency=concurrency,
            seconds=online_seconds,
            name="online amplify",
        )
        result["runs"].append(ours.to_dict())
    theirs: LoadResult | None = None
    if mlflow_serve:
        port2 = _free_port()
        cmd = [
            sys.executable,
            "-m",
            "mlflow",
            "models",
            "serve",
            "-m",
            f"models:/amplify.{ONLINE_MODEL}/{version}",
            "-h",
            "127.0.0.1",
            "-p",
            str(port2),
            "--env-manager",
            "local",
        ]
        with _process(cmd, env, logs / "mlflow-serve.log") as proc:
            _wait(f"http://127.0.0.1:{port2}/ping", 180, proc, "mlflow models serve")
            body2 = json.dumps({"dataframe_records": [row]}).encode()
            theirs = _online(
                port2,
                ("POST", "/invocations", body2),
                {"Content-Type": "application/json"},
                concurrency=concurrency,
                seconds=online_seconds,
                name="online mlflow serve",
            )
            result["runs"].append(theirs.to_dict())
    verdict: dict[str, Any] = {}
    top = [x for x in result["runs"] if x["name"] == f"lookup {max(rates):.0f}/s"]
    if top:
        t = top[0]
        verdict["lookup_p99_ms_at_max_rate"] = t["p99_ms"]
        verdict["lookup_target_met"] = bool(
            t["errors"] == 0 and t["p99_ms"] is not None and t["p99_ms"] < LOOKUP_TARGET_P99_MS
        )
    if theirs is not None and theirs.throughput > 0:
        ratio = ours.throughput / theirs.throughput
        verdict["online_throughput_ratio"] = round(ratio, 1)
        verdict["online_target_met"] = bool(ratio >= ONLINE_TARGET_RATIO and ours.errors == 0)
    result["verdict"] = verdict
    print(
        "lookup p99 at {r:.0f}/s: {p} ms (target < {t:.0f} ms, 0 errors)".format(
            r=max(rates), p=verdict.get("lookup_p99_ms_at_max_rate"), t=LOOKUP_TARGET_P99_MS
        )
    )
    if "online_throughput_ratio" in verdict:
        print(
            f"online scoring: {ours.throughput:,.0f}/s vs mlflow models serve "
            f"{theirs.throughput:,.0f}/s = {verdict['online_throughput_ratio']}x "  # type: ignore[union-attr]
            f"(target >= {ONLINE_TARGET_RATIO:.0f}x)"
        )
    path = write_result(base / "serving.json", result)
    print(f"figures in {path}; server logs in {logs}")
    return result
