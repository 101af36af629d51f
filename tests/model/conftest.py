"""Fixtures of the model tests: lakes of synthetic worlds and their backtests, built once.

The small world (seed 7, about 1,600 accounts and 26,000 devices) is what the quality checks
run on; it takes about a minute and a half to generate and ingest, so every test that needs
it is in the xdist group ``small_world`` (one worker builds it once).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from amplify_ml.datapack.ingest import ingest_pack
from amplify_ml.errors import ConsentError
from amplify_ml.lake import Lake

SMALL_SEED = 7


def ingest_world(world: Path, lake: Lake) -> Lake:
    """Every pack of a world, vendor first; the partner without consent is refused."""
    packs = sorted((world / "packs").iterdir(), key=lambda p: (p.name != "vendor", p.name))
    for p in packs:
        try:
            ingest_pack(p, lake)
        except ConsentError:
            continue
    return lake


@pytest.fixture(scope="session")
def tiny_lake(tiny_world: Path, tmp_path_factory: pytest.TempPathFactory) -> Lake:
    return ingest_world(tiny_world, Lake(tmp_path_factory.mktemp("tiny-model-lake") / "lake"))


@pytest.fixture(scope="session")
def small_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from amplify_ml.datasets import generate

    out = tmp_path_factory.mktemp("small-world")
    generate("small", seed=SMALL_SEED, out=out)
    return out


@pytest.fixture(scope="session")
def small_lake(small_world: Path, tmp_path_factory: pytest.TempPathFactory) -> Lake:
    return ingest_world(small_world, Lake(tmp_path_factory.mktemp("small-model-lake") / "lake"))


class Backtests:
    """Backtests of one lake, each computed on first use and kept."""

    def __init__(self, lake: Lake, oracle: Path | None) -> None:
        self.lake = lake
        self.oracle = oracle
        self._done: dict[str, object] = {}

    def __getitem__(self, model: str):
        from amplify_ml.modeling.backtest import backtest

        if model not in self._done:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self._done[model] = backtest(model, self.lake, oracle=self.oracle)
        return self._done[model]


@pytest.fixture(scope="session")
def small_backtests(small_lake: Lake, small_world: Path) -> Backtests:
    return Backtests(small_lake, small_world)


@pytest.fixture(scope="session")
def tiny_backtests(tiny_lake: Lake, tiny_world: Path) -> Backtests:
    return Backtests(tiny_lake, tiny_world)
