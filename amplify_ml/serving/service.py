"""The API's state, opened in the lifespan: workspace, lake, scores, champions, keys, audit.

Routes reach it through :data:`amplify_ml.serving.deps.ServiceDep`; the pages another module
renders use the same object. Every method that touches partner data takes the partner the
caller may see (resolved in :mod:`amplify_ml.serving.deps`), never a raw request value.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from amplify_ml.config import Settings
from amplify_ml.errors import ModelError, UnfedError
from amplify_ml.features.spec import MODELS
from amplify_ml.lake import Lake
from amplify_ml.serving.audit import AuditLog, audit_dir
from amplify_ml.serving.data import LakeView, ListCache, ScoreTable, ScoreTables
from amplify_ml.serving.keys import KeyStore
from amplify_ml.serving.metrics import Metrics
from amplify_ml.serving.models import ChampionStore, train_hint
from amplify_ml.serving.schemas import MAX_FLEET, MAX_LEADS

log = logging.getLogger(__name__)


@dataclass
class Service:
    """Everything a request may need, opened once per process."""

    settings: Settings
    workspace: Path
    lake: LakeView
    scores: ScoreTables
    champions: ChampionStore
    keys: KeyStore
    audit: AuditLog
    metrics: Metrics
    lists: ListCache = field(default_factory=ListCache)
    _run_metrics: dict[str, dict[str, float]] = field(default_factory=dict)

    @classmethod
    def open(cls, settings: Settings, metrics: Metrics | None = None) -> Service:
        """Open the workspace of ``settings`` and load every champion (not started yet)."""
        from amplify_ml.modeling.registry import resolve_tracking_uri

        ws = settings.workspace.resolve()
        metrics = metrics or Metrics()
        champions = ChampionStore(
            resolve_tracking_uri(ws, settings.mlflow_tracking_uri),
            poll_seconds=settings.model_poll_seconds,
            metrics=metrics,
        )
        champions.refresh()
        service = cls(
            settings=settings,
            workspace=ws,
            lake=LakeView(Lake.in_workspace(ws)),
            scores=ScoreTables(ws),
            champions=champions,
            keys=KeyStore.in_workspace(ws),
            audit=AuditLog(audit_dir(ws), flush_seconds=settings.audit_flush_seconds),
            metrics=metrics,
        )
        for model in MODELS:  # read and index the score tables now, not in a first request
            service.scores.get(model)
        return service

    def start(self) -> None:
        """Start the audit writer and the registry poll."""
        self.audit.start()
        self.champions.start()

    def close(self) -> None:
        """Stop polling; write the rest of the audit log."""
        self.champions.stop()
        self.audit.close()

    # -- readiness -----------------------------------------------------------------------------
    def ready(self) -> dict[str, Any]:
        """Lake and champions: what is there, what is missing and how to fix it."""
        status = self.champions.status()
        missing = []
        lake_ok = self.lake.exists
        if not lake_ok:
            missing.append(
                "lake: no lake in the workspace; ingest the packs (amplify ingest PACK_DIR)"
            )
        for m, s in status.items():
            if s["serving_version"]:
                continue
            if s["champion_version"] is None and (why := self.unfed(m)):
                s["problem"] = why  # nothing to serve it from: not what keeps the API unready
                continue
            missing.append(f"{m}: {s['problem']}")
        if lake_ok and not missing and not any(s["serving_version"] for s in status.values()):
            missing.append("models: none can be served from the tables of this lake")
        scores = {m: (t.as_of if (t := self.scores.get(m)) else None) for m in MODELS}
        return {
            "ready": not missing,
            "missing": missing,
            "lake": "ok" if lake_ok else "missing",
            "models": status,
            "scores": scores,
        }

    # -- models --------------------------------------------------------------------------------
    def unfed(self, model: str) -> str | None:
        """Why the lake cannot feed ``model`` (a table it needs is absent), or None."""
        from amplify_ml.features.training import tables_needed

        if not self.lake.exists:
            return None
        absent = [t for t in tables_needed(model) if t not in self.lake.tables()]
        if not absent:
            return None
        names = ", ".join(absent)
        return (
            f"this lake cannot feed it: it needs the table{'s' if len(absent) > 1 else ''} "
            f"{names}, which no ingested pack holds; ingest packs with {names}, then train it "
            f"(amplify train {model})"
        )

    def loaded(self, model: str) -> Any:
        """The model serving now; 503 saying why when none (the lake cannot feed it, or no
        champion has loaded)."""
        if self.champions.get(model) is None and (why := self.unfed(model)):
            raise UnfedError(f"model {model} is not available: {why}")
        return self.champions.require(model)

    def champion(self, model: str) -> Any:
        """The champion serving ``model`` (503 when none): what lists explain with."""
        return self.loaded(model).champion

    def registry(self, models: Sequence[str] = MODELS) -> list[dict[str, Any]]:
        """Registered versions of ``models`` with aliases, gate verdict and overall metrics."""
        from amplify_ml.modeling.registry import registered_name

        client = self.champions.client()
        status = self.champions.status()
        out = []
        for m in models:
            name = registered_name(m)
            try:
                versions = client.search_model_versions(f"name='{name}'")
                aliases: dict[str, list[str]] = {}
                if versions:
                    for alias, v in client.get_registered_model(name).aliases.items():
                        aliases.setdefault(str(v), []).append(alias)
            except Exception as exc:
                log.error("model registry cannot be read: %s", exc)
                raise ModelError(
                    f"the model registry cannot be read ({type(exc).__name__}); see the server log"
                ) from None
            rows = []
            for v in sorted(versions, key=lambda v: int(v.version), reverse=True):
                rows.append(
                    {
                        "version": str(v.version),
                        "aliases": sorted(aliases.get(str(v.version), [])),
                        "status": str(v.status),
                        "gate": (v.tags or {}).get("gate"),
                        "created_at": (
                            pd.Timestamp(v.creation_timestamp, unit="ms", tz="UTC").isoformat()
                            if v.creation_timestamp
                            else None
                        ),
                        "metrics": self._metrics_of(client, v.run_id),
                    }
                )
            out.append({"model": m, "registered_name": name, **status[m], "versions": rows})
        return out

    def _metrics_of(self, client: Any, run_id: str | None) -> dict[str, float]:
        if not run_id:
            return {}
        if run_id not in self._run_metrics:
            try:
                metrics = client.get_run(run_id).data.metrics
            except Exception:
                return {}
            self._run_metrics[run_id] = {
                k.split(".", 1)[1]: float(v)
                for k, v in sorted(metrics.items())
                if k.startswith("model.") and k.count(".") == 1 and v == v
            }
        return self._run_metrics[run_id]

    # -- score tables --------------------------------------------------------------------------
    def score_table(self, model: str) -> ScoreTable:
        """The latest score table of ``model``; 503 saying what to run when there is none."""
        table = self.scores.get(model)
        if table is None:
            if self.champions.get(model) is None and (why := self.unfed(model)):
                raise UnfedError(f"scores of {model} are not available: {why}")
            how = f"score it (amplify score {model})"
            if self.champions.get(model) is None:
                how = f"{train_hint(model)}, then score it (amplify score {model})"
            raise ModelError(f"scores of {model} are not available: {how}")
        return table

    # -- lists ---------------------------------------------------------------------------------
    def _version(self, model: str) -> str | None:
        loaded = self.champions.get(model)
        return loaded.version if loaded else None

    def leads(self, partner: str) -> pd.DataFrame:
        """The partner's lead list (up to :data:`MAX_LEADS` rows), cached per data version."""
        from amplify_ml.scoring.leads import leads

        lake = self.lake.require()
        models = ("propensity_to_buy", "refresh_due")
        stamps = {m: self.scores.stamp(m) for m in models}
        if not any(stamps.values()):
            names = " ".join(models)
            how = f"score them (amplify score {names})"
            if not any(self.champions.get(m) for m in models):
                how = f"train them (amplify train {names}), then {how}"
            raise ModelError(f"scores of {' and '.join(models)} are not available: {how}")
        key = (
            "leads",
            partner,
            self.lake.snapshot(),
            *stamps.values(),
            *(self._version(m) for m in models),
        )

        def compute() -> pd.DataFrame:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return leads(
                    partner,
                    lake,
                    workspace=self.workspace,
                    top=MAX_LEADS,
                    champion_of=self.champion,
                )

        return self.lists.get(key, compute)

    def fleet(self, partner: str | None) -> pd.DataFrame:
        """Devices under contract by risk (one partner's, or everyone's), cached."""
        from amplify_ml.scoring.fleet import fleet

        lake = self.lake.require()
        table = self.score_table("device_failure")
        key = (
            "fleet",
            partner,
            self.lake.snapshot(),
            table.stamp,
            self._version("device_failure"),
        )

        def compute() -> pd.DataFrame:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return fleet(
                    lake,
                    workspace=self.workspace,
                    partner=partner,
                    top=MAX_FLEET,
                    champion_of=self.champion,
                )

        return self.lists.get(key, compute)

    def benchmark(self, partner: str, *, as_of: date | None, period_days: int) -> Any:
        """The partner's benchmark report, cached per snapshot and parameters."""
        from amplify_ml.scoring.benchmarks import benchmark

        lake = self.lake.require()
        key = ("benchmark", partner, self.lake.snapshot(), as_of, period_days)
        return self.lists.get(
            key,
            lambda: benchmark(
                lake,
                partner,
                as_of=as_of,
                period_days=period_days,
                k_anonymity=self.settings.k_anonymity,
            ),
        )

    def supply_plan(
        self, partners: Sequence[str] | None, *, alpha: float, lead_time_days: int
    ) -> pd.DataFrame:
        """The ship plan of ``partners``' devices (None: every partner), cached."""
        from amplify_ml.scoring.supplies import ship_plan

        table = self.score_table("consumable_depletion")
        key = (
            "supplies",
            tuple(partners) if partners else None,
            table.stamp,
            alpha,
            lead_time_days,
        )
        return self.lists.get(
            key,
            lambda: ship_plan(
                table.frame, alpha=alpha, lead_time_days=lead_time_days, partners=partners
            ),
        )
