"""Performance benchmarks: scripts that print figures and write JSON (``amplify bench``).

Each benchmark runs the measured work in a child process, so its peak memory is its own,
and compares against a baseline measured in the same run on the same data.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import resource
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _child(target: Callable[..., Any], args: tuple[Any, ...], queue: Any) -> None:
    started = time.perf_counter()
    try:
        result = target(*args)
        error = None
    except Exception as exc:  # reported to the parent, which raises
        result, error = None, f"{type(exc).__name__}: {exc}"
    seconds = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    queue.put({"result": result, "error": error, "seconds": seconds, "peak_mib": peak_kib / 1024})


def measure(target: Callable[..., Any], *args: Any) -> dict[str, Any]:
    """Run ``target(*args)`` in a fresh process: its result, wall seconds and peak RSS (MiB)."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(target, args, queue))
    proc.start()
    out = queue.get()
    proc.join()
    if out["error"]:
        raise RuntimeError(f"benchmark step failed: {out['error']}")
    return out


def write_result(path: Path, data: dict[str, Any]) -> Path:
    """Write a benchmark's figures as JSON (creating the folder)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    return path


def synthetic_world(base: Path, scale: str, seed: int) -> Path:
    """The synthetic world at ``scale`` and ``seed`` under ``base``, generated on first use
    and reused after (the benchmarks share it)."""
    from amplify_ml.datasets import generate

    world = base / f"world-{scale}-{seed}"
    if not (world / "world.json").exists():
        shutil.rmtree(world, ignore_errors=True)
        t0 = time.perf_counter()
        generate(scale, seed=seed, out=world)  # type: ignore[arg-type]
        print(f"generated the {scale} world (seed {seed}) in {time.perf_counter() - t0:.1f} s")
    return world


def world_lake(base: Path, scale: str, seed: int, memory_limit: str) -> tuple[Path, Any]:
    """:func:`synthetic_world` and its lake, ingested on first use and reused after."""
    from amplify_ml.bench.features import _ingest
    from amplify_ml.lake import Lake

    world = synthetic_world(base, scale, seed)
    root = base / f"features-lake-{scale}-{seed}"
    if not (root / "CURRENT").exists():
        t0 = time.perf_counter()
        _ingest(world, root, memory_limit)
        print(f"ingested the {scale} world (seed {seed}) in {time.perf_counter() - t0:.1f} s")
    return world, Lake(root)
