"""Property: a partner's lists do not change whatever identifiers another partner uses.

Random packs: the tiny world with a second partner's account and device ids drawn at random
from the first partner's (Hypothesis picks which collide). Every table is written back as a
pack and ingested into a new lake, the same champions score it, and the first partner's lead
list and fleet must be exactly what they were on the original lake: a join or an aggregate
keyed on an id without its partner would mix the two partners' rows here.
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from amplify_ml.datapack import read_pack, write_pack
from amplify_ml.lake import Lake
from amplify_ml.scoring.fleet import fleet
from amplify_ml.scoring.leads import leads
from amplify_ml.scoring.score import score
from tests.model.conftest import ingest_world
from tests.workspaces import ApiWorkspace

OWN, OTHER = "P001", "P002"
AS_OF = "2026-06-30"
ACCOUNT_COLUMNS = ("account_id",)
DEVICE_COLUMNS = ("device_id", "replaced_by")


def _lists(lake: Lake, ws: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for model in ("propensity_to_buy", "refresh_due", "device_failure"):
            score(model, lake, workspace=ws, as_of=AS_OF)
        lead = leads(OWN, lake, workspace=ws, top=60, as_of=AS_OF)
        risk = fleet(lake, workspace=ws, partner=OWN, top=None, as_of=AS_OF)
    return lead.reset_index(drop=True), risk.reset_index(drop=True)


def _collide(world: Path, out: Path, seed: int, share: float) -> Path:
    """A copy of ``world`` whose second partner reuses ``share`` of the first's ids."""
    own = read_pack(world / "packs" / OWN)
    rng = np.random.default_rng(seed)
    maps: dict[str, dict[str, str]] = {}
    for kind, table in (("account", "accounts"), ("device", "install_base")):
        col = f"{kind}_id"
        mine = sorted(own.read_table(table)[col].unique())
        theirs = sorted(read_pack(world / "packs" / OTHER).read_table(table)[col].unique())
        n = round(share * min(len(mine), len(theirs)))
        # the rest of the second partner's ids move out of the way of the reused ones
        moved = {t: f"{t}-x" for t in theirs}
        moved.update(
            zip(
                rng.choice(theirs, n, replace=False),
                rng.choice(mine, n, replace=False),
                strict=True,
            )
        )
        maps[kind] = moved
    shutil.copytree(world, out)
    for pack_dir in sorted((out / "packs").iterdir()):
        pack = read_pack(pack_dir)
        if pack.manifest.source not in (OTHER, "vendor"):
            continue
        tables = {}
        for name in pack.tables:
            df = pack.read_table(name)
            rows = df["partner_id"] == OTHER if "partner_id" in df.columns else slice(None)
            if pack.manifest.source == "vendor" and "partner_id" not in df.columns:
                tables[name] = df
                continue
            for c in df.columns:
                kind = (
                    "account" if c in ACCOUNT_COLUMNS else "device" if c in DEVICE_COLUMNS else None
                )
                if kind is not None:
                    df.loc[rows, c] = df.loc[rows, c].map(lambda v, m=maps[kind]: m.get(v, v))
            tables[name] = df
        m = pack.manifest
        shutil.rmtree(pack_dir)
        write_pack(
            pack_dir,
            tables,
            source=m.source,
            period=(m.period.start, m.period.end),
            created_at=m.created_at,
        )
    return out


pytestmark = pytest.mark.xdist_group("api")  # the champions of the API tests' workspace


def _champions(api_workspace: ApiWorkspace, to: Path) -> Path:
    """A workspace holding the champions of the shared API workspace (not its lake)."""
    shutil.copytree(
        api_workspace.path, to, ignore=shutil.ignore_patterns("lake", "scores", "serving")
    )
    return to


@pytest.fixture(scope="module")
def baseline(api_workspace: ApiWorkspace, tmp_path_factory) -> tuple:
    ws = _champions(api_workspace, tmp_path_factory.mktemp("tenant-base") / "ws")
    return _lists(api_workspace.lake, ws)


@pytest.mark.slow
@settings(max_examples=2, deadline=None, suppress_health_check=list(HealthCheck))
@given(seed=st.integers(0, 2**32 - 1), share=st.sampled_from([0.3, 1.0]))
def test_a_partners_lists_ignore_the_ids_another_partner_uses(
    seed: int,
    share: float,
    tiny_world: Path,
    api_workspace: ApiWorkspace,
    baseline: tuple,
    tmp_path_factory,
) -> None:
    base = tmp_path_factory.mktemp("collide")
    world = _collide(tiny_world, base / "world", seed, share)
    lake = ingest_world(world, Lake(base / "lake"))
    other = lake.read("accounts")
    shared = set(other.loc[other.partner_id == OWN, "account_id"]) & set(
        other.loc[other.partner_id == OTHER, "account_id"]
    )
    assert len(shared) > 0  # the draw did make ids collide
    lead, risk = _lists(lake, _champions(api_workspace, base / "ws"))
    base_lead, base_risk = baseline
    pd.testing.assert_frame_equal(lead, base_lead, check_exact=False, rtol=1e-9)
    pd.testing.assert_frame_equal(risk, base_risk, check_exact=False, rtol=1e-9)
