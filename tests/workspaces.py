"""A complete tiny workspace for the API tests: lake, four champions in MLflow, score tables.

Built once per test session (about a minute on two busy cores): the tiny world's packs are
ingested into ``<workspace>/lake``, each model is trained on a few cutoffs with a gate the tiny
world can pass (so every model gets a champion), and scored at the end of the data.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from amplify_ml.features import FeatureBuilder
from amplify_ml.features.spec import MODELS
from amplify_ml.lake import Lake
from amplify_ml.modeling.spec import load_model_spec
from amplify_ml.modeling.train import train
from amplify_ml.scoring.score import read_scores, score
from tests.model.conftest import ingest_world

TRAIN_CUTOFFS = 3
EVAL_CUTOFFS = 1


def lenient(model: str):
    """The model's spec with a gate the tiny world passes."""
    spec = load_model_spec(model)
    gate = dataclasses.replace(spec.gate, max_ece=1.0, min_positives=0, max_coverage_gap=None)
    return dataclasses.replace(spec, gate=gate)


@dataclass(frozen=True)
class ApiWorkspace:
    """The workspace and a few facts the tests check answers against."""

    path: Path
    partners: tuple[str, ...]
    risk: pd.DataFrame
    """The device_failure score table."""
    depletion: pd.DataFrame
    """The consumable_depletion score table."""

    @property
    def lake(self) -> Lake:
        return Lake.in_workspace(self.path)

    def device_of(self, partner: str, table: str = "risk") -> str:
        """A scored device of ``partner``."""
        df = self.risk if table == "risk" else self.depletion
        return str(df.loc[df["partner_id"] == partner, "device_id"].iloc[0])

    def account_of(self, partner: str) -> str:
        df = self.lake.read("accounts", [partner])
        return str(df["account_id"].iloc[0])


def build_api_workspace(world: Path, ws: Path) -> ApiWorkspace:
    lake = ingest_world(world, Lake.in_workspace(ws))
    with warnings.catch_warnings(), FeatureBuilder(lake) as fb:
        warnings.simplefilter("ignore")
        for model in MODELS:
            res = train(
                lenient(model),
                lake,
                workspace=ws,
                builder=fb,
                card_dir=ws / "cards" / model,
                train_cutoffs=TRAIN_CUTOFFS,
                eval_cutoffs=EVAL_CUTOFFS,
            )
            assert res.promoted, (model, res.gate.reasons)
            score(model, lake, workspace=ws)
    return ApiWorkspace(
        ws,
        tuple(lake.partners()),
        read_scores(ws, "device_failure"),
        read_scores(ws, "consumable_depletion"),
    )
