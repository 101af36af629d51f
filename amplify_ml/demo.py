"""The demo: the main job end to end on a synthetic world, one step at a time.

    result = run_demo(".amplify/demo", scale="small")
    result.models["refresh_due"].headline.rows     # model vs best baseline vs oracle
    result.lists.leads                             # a partner's lead list

Steps, each returning what it produced (and timed in ``result.timings``):

1. **world**: generate the synthetic world (packs and oracle), or reuse the one already in
   the workspace;
2. **ingest**: validate every pack and load it into a lake rebuilt from scratch;
3. **train**: for each of the four models, build its point-in-time training set, backtest it
   against its baselines and the oracle (the world's truth), log the run to MLflow, register
   the version and move ``champion`` if the gate passes; the training sets are written to
   ``training_sets/<model>.parquet`` and the model cards to ``cards/<model>/``;
4. **score**: score every champion at the end of the lake's data;
5. **lists**: one partner's lead list, the supplies ship plan and the fleet's failure risk;
6. **serving**: API keys and the API (``amplify_ml.serving``), see :func:`serving_step`.

The demo owns its workspace: the lake, scores, cards and training sets are rebuilt on each
run; the MLflow store keeps every run, so a second demo registers version 2 of each model,
which replaces the champion only if it passes the gate.
"""

from __future__ import annotations

import json
import math
import shutil
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from amplify_ml.datapack.ingest import IngestReport, ingest_packs, pack_dirs
from amplify_ml.datasets import SCALES, generate
from amplify_ml.errors import ConfigError, InvalidRequestError, NotFoundError
from amplify_ml.features import MODELS, FeatureBuilder, write_training_set
from amplify_ml.lake import Lake
from amplify_ml.modeling.backtest import MODEL, ORACLE, Backtest
from amplify_ml.modeling.spec import ModelSpec, load_model_spec
from amplify_ml.modeling.train import TrainResult, train
from amplify_ml.scoring.score import ScoreResult, read_scores, score

Progress = Callable[[str, int, int], None]
Say = Callable[[str], None]

DERIVED = ("lake", "scores", "cards", "training_sets")
"""What the demo rebuilds in its workspace on each run. The world is reused, and so is the
MLflow store: a later run registers new versions, which must pass the gate against the
champion to replace it."""

API_DOCS = "/docs"
PAGES = ("/pages/leads", "/pages/fleet")


def _quiet(*_: object) -> None:
    return None


# -- the plan ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoPlan:
    """How many monthly cutoffs each backtest trains and evaluates on; ``None`` keeps each
    model's own plan (``models/<name>/model.toml``)."""

    train_cutoffs: int | None = None
    eval_cutoffs: int | None = None

    def __post_init__(self) -> None:
        if self.train_cutoffs is not None and self.train_cutoffs < 2:
            raise InvalidRequestError(
                f"train_cutoffs must be at least 2 (the later ones calibrate the model), "
                f"got {self.train_cutoffs}"
            )
        if self.eval_cutoffs is not None and self.eval_cutoffs < 1:
            raise InvalidRequestError(f"eval_cutoffs must be at least 1, got {self.eval_cutoffs}")

    def describe(self, spec: ModelSpec) -> str:
        """The plan of one model in words, saying where it differs from the model's own."""
        tr = self.train_cutoffs if self.train_cutoffs is not None else spec.cutoffs.train
        ev = self.eval_cutoffs if self.eval_cutoffs is not None else spec.cutoffs.evaluate
        own = self.train_cutoffs is None and self.eval_cutoffs is None
        text = f"{_count(tr)} training and {_count(ev)} evaluation cutoffs"
        if own:
            return text + " (the model's own plan)"
        return (
            text + f" (lighter than the model's own plan of {_count(spec.cutoffs.train)} and "
            f"{_count(spec.cutoffs.evaluate)})"
        )


def _count(v: int | list[str]) -> str:
    return str(v) if isinstance(v, int) else f"{len(v)} listed"


# -- what each step produced ------------------------------------------------------------------


@dataclass
class WorldStep:
    """The synthetic world the demo runs on."""

    path: Path
    scale: str
    seed: int
    generated: bool
    packs: list[Path]


@dataclass
class IngestStep:
    """The lake and what each pack did (refused packs with their reason)."""

    lake: Lake
    reports: list[IngestReport]
    refused: list[tuple[str, str]]

    @property
    def rows_loaded(self) -> int:
        return sum(t.loaded for r in self.reports for t in r.tables.values())

    @property
    def rows_quarantined(self) -> int:
        return sum(t.quarantined for r in self.reports for t in r.tables.values())


@dataclass
class HeadlineRow:
    """One scorer's main metric and its skill relative to the oracle."""

    scorer: str
    value: float
    skill: float


@dataclass
class Headline:
    """A model against its best baseline and the oracle on its main metric."""

    model: str
    metric: str
    label: str
    skill_label: str
    higher_is_better: bool
    best_baseline: str | None
    rows: list[HeadlineRow]

    def value(self, scorer: str) -> float:
        for r in self.rows:
            if r.scorer == scorer:
                return r.value
        raise NotFoundError(f"{self.model}: no scorer {scorer!r} in the headline")

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "best_baseline": self.best_baseline,
            "rows": {r.scorer: {"value": _num(r.value), "skill": _num(r.skill)} for r in self.rows},
        }


def headline(bt: Backtest) -> Headline:
    """The model, its best baseline and the oracle on the main metric, overall: ROC AUC and
    skill ratio ((AUC - 0.5) / (AUC of the oracle - 0.5)) for binary models; MAE of P50 in
    days and MAE / the oracle's MAE for depletion. A baseline without the metric (a shipping
    rule) is left out."""
    t = bt.table()
    if bt.spec.task == "binary":
        metric, label, skill_col, skill_label, higher = (
            "roc_auc",
            "ROC AUC",
            "skill_ratio",
            "skill ratio",
            True,
        )
    else:
        metric, label, skill_col, skill_label, higher = (
            "mae_days",
            "MAE P50 (days)",
            "mae_ratio_vs_oracle",
            "MAE / oracle MAE",
            False,
        )

    def cell(scorer: str, col: str) -> float:
        if scorer not in t.index or col not in t.columns:
            return math.nan
        return float(t.loc[scorer, col])

    candidates = [b for b in bt.baselines if math.isfinite(cell(b, metric))]
    best = None
    if candidates:
        pick = max if higher else min
        best = pick(candidates, key=lambda b: cell(b, metric))
    rows = [HeadlineRow(MODEL, cell(MODEL, metric), cell(MODEL, skill_col))]
    if best is not None:
        rows.append(HeadlineRow(best, cell(best, metric), cell(best, skill_col)))
    if ORACLE in t.index:
        rows.append(HeadlineRow(ORACLE, cell(ORACLE, metric), 1.0))
    return Headline(bt.model, metric, label, skill_label, higher, best, rows)


@dataclass
class ModelStep:
    """One model's training: the backtest, the registered version, the gate's verdict."""

    model: str
    plan: str
    result: TrainResult
    headline: Headline
    training_set: Path
    seconds: float

    @property
    def promoted(self) -> bool:
        return self.result.promoted


@dataclass
class ScoreStep:
    """Scores of every model that has a champion; the others with the reason."""

    results: dict[str, ScoreResult]
    skipped: dict[str, str]


@dataclass
class ListsStep:
    """What the partners see: a lead list, the ship plan, the fleet's risk."""

    partner: str | None
    leads: pd.DataFrame | None
    supplies: dict[str, int] | None
    fleet: pd.DataFrame | None
    fleet_devices: int
    skipped: dict[str, str] = field(default_factory=dict)

    def supplies_line(self) -> str:
        if self.supplies is None:
            return f"supplies: not available ({self.skipped.get('supplies', 'no scores')})"
        c = self.supplies
        total = sum(c.values())
        return (
            f"supplies: {total:,} device colours: {c['ship now']:,} ship now, {c['soon']:,} "
            f"within 7 days, {c['ok']:,} ok (ship when P(threshold before delivery) > 0.1, "
            "5 days' lead time)"
        )

    def fleet_line(self) -> str:
        if self.fleet is None or self.partner is None:
            return f"fleet: not available ({self.skipped.get('fleet', 'no scores')})"
        if self.fleet.empty:
            return f"fleet: {self.partner} has no devices under a service contract"
        top = self.fleet.iloc[0]
        comp, p = top["likely_component"], top.get("component_probability")
        own = f" ({p:.2f} on its own)" if isinstance(p, float) and math.isfinite(p) else ""
        return (
            f"fleet: {self.fleet_devices:,} devices of {self.partner} under contract scored; the "
            f"riskiest, {top['device_id']} ({top['family']}), needs a repair within 30 days with "
            f"probability {top['probability']:.2f}"
            + (f", most likely the {comp}{own}" if isinstance(comp, str) else "")
        )


@dataclass
class ServeStep:
    """API keys and where the API answers; ``available`` is False when
    ``amplify_ml.serving`` is not installed (then nothing is served)."""

    available: bool
    message: str
    keys: dict[str, str] = field(default_factory=dict)
    base_url: str = "http://127.0.0.1:8000"

    @property
    def urls(self) -> dict[str, str]:
        out = {"API docs": self.base_url + API_DOCS}
        for p in PAGES:
            out[p.rsplit("/", 1)[-1] + " page"] = self.base_url + p
        return out


@dataclass
class DemoResult:
    """Everything the demo produced, step by step."""

    workspace: Path
    world: WorldStep
    ingest: IngestStep
    models: dict[str, ModelStep]
    scores: ScoreStep
    lists: ListsStep
    serving: ServeStep | None
    tracking_uri: str
    timings: dict[str, float]

    def mlflow_ui(self) -> str:
        """How to open the MLflow UI on the demo's runs."""
        if self.tracking_uri.startswith("sqlite:"):
            return f".venv/bin/mlflow ui --backend-store-uri {self.tracking_uri}"
        return f"open {self.tracking_uri} (the tracking server the runs were logged to)"

    def to_dict(self) -> dict[str, Any]:
        leads = self.lists.leads
        return {
            "workspace": str(self.workspace),
            "world": {
                "path": str(self.world.path),
                "scale": self.world.scale,
                "seed": self.world.seed,
                "generated": self.world.generated,
                "packs": len(self.world.packs),
            },
            "ingest": {
                "lake": str(self.ingest.lake.root),
                "packs": len(self.ingest.reports),
                "rows_loaded": self.ingest.rows_loaded,
                "rows_quarantined": self.ingest.rows_quarantined,
                "refused": [{"pack": n, "reason": m} for n, m in self.ingest.refused],
            },
            "models": {
                name: {
                    "plan": m.plan,
                    "version": m.result.version,
                    "promoted": m.promoted,
                    "gate": m.result.gate.reasons,
                    "run_id": m.result.run_id,
                    "training_set": str(m.training_set),
                    "train_rows": len(m.result.backtest.train),
                    "evaluation_rows": len(m.result.backtest.evaluate),
                    "split": m.result.backtest.split.to_dict(),
                    "served": m.result.final.to_dict() if m.result.final else None,
                    "headline": m.headline.to_dict(),
                    "card": str(m.result.card_path) if m.result.card_path else None,
                    "seconds": round(m.seconds, 1),
                }
                for name, m in self.models.items()
            },
            "scores": {
                "written": {
                    n: {
                        "rows": r.rows,
                        "as_of": r.as_of.isoformat(),
                        "version": r.version,
                        "path": str(r.path),
                    }
                    for n, r in self.scores.results.items()
                },
                "skipped": self.scores.skipped,
            },
            "lists": {
                "partner": self.lists.partner,
                "leads": []
                if leads is None
                else json.loads(leads.head(10).to_json(orient="records", date_format="iso")),
                "supplies": self.lists.supplies,
                "fleet_devices": self.lists.fleet_devices,
                "skipped": self.lists.skipped,
            },
            "serving": None
            if self.serving is None
            else {
                "available": self.serving.available,
                "message": self.serving.message,
                "urls": self.serving.urls,
                "keys": self.serving.keys,
            },
            "mlflow": {"tracking_uri": self.tracking_uri, "ui": self.mlflow_ui()},
            "timings": {k: round(v, 1) for k, v in self.timings.items()},
        }


def _num(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None


# -- the steps --------------------------------------------------------------------------------


def prepare_world(
    workspace: Path,
    *,
    scale: str,
    seed: int,
    fresh: bool,
    progress: Progress = _quiet,
) -> WorldStep:
    """Generate ``world-<scale>-<seed>`` in the workspace, or reuse it unless ``fresh``."""
    if scale not in SCALES:
        raise ConfigError(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}")
    path = workspace / f"world-{scale}-{seed}"
    generated = fresh or not (path / "world.json").exists()
    if generated:
        shutil.rmtree(path, ignore_errors=True)
        generate(scale, seed=seed, out=path, progress=progress)  # type: ignore[arg-type]
    return WorldStep(path, scale, seed, generated, pack_dirs(path))


def reset_workspace(workspace: Path) -> list[str]:
    """Remove what the demo derives from the world (see :data:`DERIVED`); return what was
    there."""
    removed = []
    for name in DERIVED:
        p = workspace / name
        if p.is_dir():
            shutil.rmtree(p)
            removed.append(name)
        elif p.exists():
            p.unlink()
            removed.append(name)
    return removed


def ingest_world(
    world: WorldStep,
    workspace: Path,
    *,
    memory_limit: str | None = None,
    progress: Progress = _quiet,
) -> IngestStep:
    """Validate and ingest every pack of the world into the workspace's lake."""
    lake = Lake.in_workspace(workspace)
    reports, refused = ingest_packs(world.packs, lake, memory_limit=memory_limit, progress=progress)
    if not reports:
        raise NotFoundError(f"no pack of {world.path} could be ingested: {refused}")
    return IngestStep(lake, reports, refused)


def train_models(
    lake: Lake,
    workspace: Path,
    *,
    specs: Mapping[str, ModelSpec],
    plan: DemoPlan,
    oracle: Path | None,
    memory_limit: str | None = None,
    progress: Progress = _quiet,
    say: Say = _quiet,
) -> dict[str, ModelStep]:
    """Backtest, log, register and gate each model (one feature session for all); write each
    training set (training and evaluation cutoffs) beside the cards."""
    out: dict[str, ModelStep] = {}
    progress("train models", 0, len(specs))
    with FeatureBuilder(lake, memory_limit=memory_limit) as fb:
        for i, (name, spec) in enumerate(specs.items()):
            words = plan.describe(spec)
            say(f"training {name}: {words}")
            t0 = time.monotonic()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = train(
                    spec,
                    lake,
                    workspace=workspace,
                    builder=fb,
                    train_cutoffs=plan.train_cutoffs,
                    eval_cutoffs=plan.eval_cutoffs,
                    oracle=oracle,
                    card_dir=workspace / "cards" / name,
                )
            bt = res.backtest
            path = write_training_set(
                bt.built_rows(), bt.meta, workspace / "training_sets" / f"{name}.parquet"
            )
            out[name] = ModelStep(name, words, res, headline(bt), path, time.monotonic() - t0)
            progress("train models", i + 1, len(specs))
    return out


def score_models(
    lake: Lake,
    workspace: Path,
    models: list[str],
    *,
    memory_limit: str | None = None,
    progress: Progress = _quiet,
) -> ScoreStep:
    """Score each model's champion at the end of the lake's data; a model without a champion
    (its first version did not pass the gate) is skipped with the reason."""
    results: dict[str, ScoreResult] = {}
    skipped: dict[str, str] = {}
    with FeatureBuilder(lake, memory_limit=memory_limit) as fb:
        for i, name in enumerate(models):
            try:
                results[name] = score(name, lake, workspace=workspace, builder=fb)
            except NotFoundError as exc:
                skipped[name] = exc.message
            progress("score models", i + 1, len(models))
    return ScoreStep(results, skipped)


def partner_lists(
    lake: Lake,
    workspace: Path,
    *,
    partner: str | None = None,
    top: int = 10,
    progress: Progress = _quiet,
) -> ListsStep:
    """A partner's lead list (``top`` rows), the supplies ship plan's status counts over all
    devices, and the partner's fleet by failure risk. ``partner``: default the first
    partner (by id) with propensity scores."""
    from amplify_ml.scoring.fleet import fleet
    from amplify_ml.scoring.leads import leads
    from amplify_ml.scoring.supplies import ship_plan, status_counts

    skipped: dict[str, str] = {}
    if partner is None:
        partner = _default_partner(lake, workspace)
    elif partner not in lake.partners():
        raise NotFoundError(
            f"no partner {partner} in the demo's lake; partners: {', '.join(lake.partners())}"
        )
    lead_list = None
    if partner is not None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                lead_list = leads(partner, lake, workspace=workspace, top=top)
        except NotFoundError as exc:
            skipped["leads"] = exc.message
    else:
        skipped["leads"] = "no propensity or refresh scores"
    progress("partner lists", 1, 3)
    supplies = None
    try:
        supplies = status_counts(ship_plan(read_scores(workspace, "consumable_depletion")))
    except NotFoundError as exc:
        skipped["supplies"] = exc.message
    progress("partner lists", 2, 3)
    fleet_df, devices = None, 0
    if partner is not None:
        try:
            devices = len(read_scores(workspace, "device_failure", partners=[partner]))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fleet_df = fleet(lake, workspace=workspace, partner=partner, top=top)
        except NotFoundError as exc:
            skipped["fleet"] = exc.message
    progress("partner lists", 3, 3)
    return ListsStep(partner, lead_list, supplies, fleet_df, devices, skipped)


def _default_partner(lake: Lake, workspace: Path) -> str | None:
    for model in ("propensity_to_buy", "refresh_due"):
        try:
            ids = set(read_scores(workspace, model)["partner_id"])
        except NotFoundError:
            continue
        own = sorted(p for p in lake.partners() if p in ids)
        if own:
            return own[0]
    return None


def serving_step(
    workspace: Path,
    partner: str | None,
    *,
    host: str,
    port: int,
    serve: bool,
    ready: Callable[[ServeStep], None] = _quiet,
) -> ServeStep:
    """Create API keys (one for ``partner``, one for operations) and serve the API and
    pages until Ctrl-C. ``ready`` is called with the keys before serving starts (serving
    blocks)."""
    from amplify_ml.serving import serve as serve_api
    from amplify_ml.serving.keys import KeyStore

    base = f"http://{host}:{port}"
    store = KeyStore.in_workspace(workspace)
    created: dict[str, str] = {}
    if partner is not None:
        created[partner] = store.create(partner=partner, label="amplify demo")[1]
    created["operations"] = store.create(role="operations", label="amplify demo")[1]
    step = ServeStep(True, f"serving {base} until Ctrl-C" if serve else "", created, base)
    ready(step)
    if serve:
        serve_api(workspace, host=host, port=port)
    return step


# -- the whole job ----------------------------------------------------------------------------


def run_demo(
    workspace: str | Path,
    *,
    scale: str = "small",
    seed: int = 7,
    fresh: bool = False,
    plan: DemoPlan | None = None,
    specs: Mapping[str, ModelSpec] | None = None,
    partner: str | None = None,
    serve: bool = False,
    host: str = "127.0.0.1",
    port: int = 8000,
    memory_limit: str | None = None,
    progress: Progress = _quiet,
    say: Say = _quiet,
    ready: Callable[[DemoResult], None] = _quiet,
) -> DemoResult:
    """Run the demo in ``workspace`` (see the module docstring) and return every step's
    output. ``specs``: the model specs to train (default: the four in ``models/``).
    ``ready`` is called with the result once the lists are ready (and the API keys, if
    any, are created) and before serving starts; with ``serve`` the call returns after
    Ctrl-C."""
    ws = Path(workspace).resolve()
    ws.mkdir(parents=True, exist_ok=True)
    plan = plan or DemoPlan()
    specs = dict(specs) if specs is not None else {m: load_model_spec(m) for m in MODELS}
    unknown = [m for m in specs if m not in MODELS]
    if unknown:
        raise InvalidRequestError(f"unknown model(s) {', '.join(unknown)}; the models are {MODELS}")
    timings: dict[str, float] = {}

    def timed(name: str, fn: Callable[[], Any]) -> Any:
        t0 = time.monotonic()
        value = fn()
        timings[name] = time.monotonic() - t0
        return value

    world_dir = ws / f"world-{scale}-{seed}"
    if fresh or not (world_dir / "world.json").exists():
        say(f"1/6 generating the {scale} synthetic world (seed {seed}) into {world_dir}")
    else:
        say(f"1/6 reusing the world in {world_dir} (--fresh to regenerate)")
    world = timed(
        "world",
        lambda: prepare_world(ws, scale=scale, seed=seed, fresh=fresh, progress=progress),
    )
    reset_workspace(ws)
    say(f"2/6 validating {len(world.packs)} packs and ingesting them into {ws / 'lake'}")
    ing = timed(
        "ingest",
        lambda: ingest_world(world, ws, memory_limit=memory_limit, progress=progress),
    )
    say(
        f"3/6 training {len(specs)} models: backtests against the baselines and the oracle, "
        "MLflow runs, registry, promotion gate"
    )
    models = timed(
        "train",
        lambda: train_models(
            ing.lake,
            ws,
            specs=specs,
            plan=plan,
            oracle=world.path,
            memory_limit=memory_limit,
            progress=progress,
            say=say,
        ),
    )
    say("4/6 scoring the champions at the end of the data")
    scored = timed(
        "score",
        lambda: score_models(
            ing.lake, ws, list(specs), memory_limit=memory_limit, progress=progress
        ),
    )
    for m in list(scored.skipped):
        step = models[m]
        if not step.promoted:
            scored.skipped[m] = (
                f"version {step.result.version} did not pass the promotion gate ("
                + "; ".join(step.result.gate.reasons)
                + ") and there is no earlier champion to score with"
            )
    say("5/6 lead list, supplies and fleet")
    lists = timed(
        "lists",
        lambda: partner_lists(ing.lake, ws, partner=partner, progress=progress),
    )
    from amplify_ml.modeling.registry import configure_tracking

    result = DemoResult(
        workspace=ws,
        world=world,
        ingest=ing,
        models=models,
        scores=scored,
        lists=lists,
        serving=None,
        tracking_uri=configure_tracking(ws),
        timings=timings,
    )

    t0 = time.monotonic()

    def announce(step: ServeStep) -> None:
        timings["keys"] = time.monotonic() - t0
        result.serving = step
        ready(result)

    say("6/6 API keys" + (" and serving" if serve else ""))
    serving_step(ws, lists.partner, host=host, port=port, serve=serve, ready=announce)
    return result
