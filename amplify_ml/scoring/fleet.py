"""Fleet risk: devices under service contracts by failure risk, with the likely component.

The failure model says *whether* a device will need a repair within its horizon. A champion
trained per component (device_failure feature set v3) also says which part, with each part's
own calibrated probability: the likely component is then the model's, ``component_share`` its
part of the device's summed component probabilities, and the reasons are that component's.
Otherwise which part it will be is learnt from the pooled history of the consenting partners
(as the models are):
for every past repair or
part replacement ticket that names a component, the device's events in the ``lookback_days``
before it are counted by code family (the code's first segment, ``50`` of ``50.A2.D3``).
That gives, per device category, how often each component fails (the prior) and how often each
code family precedes it (with add-one smoothing). A device's likely component is the one with
the highest posterior given its own recent events (naive Bayes over code families); with no
history of named components it is left empty, never guessed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from amplify_ml.errors import InvalidRequestError, NotFoundError
from amplify_ml.lake import Lake

REPAIRS = ("repair", "part_replacement")
COLUMNS = [
    "rank",
    "partner_id",
    "account_id",
    "device_id",
    "family",
    "contract",
    "probability",
    "likely_component",
    "component_share",
    "component_probability",
    "component_probabilities",
    "reason_1",
    "reason_2",
    "reason_3",
    "model_version",
    "as_of",
]


def code_family(code: pd.Series) -> pd.Series:
    """The first segment of an event code (``13`` of ``13.A2.D3``)."""
    return code.astype(str).str.split(".", n=1).str[0]


@dataclass
class ComponentModel:
    """Priors and code-family likelihoods per device category, learnt from past tickets."""

    prior: pd.DataFrame
    """device_category, component, log_prior"""
    likelihood: pd.DataFrame
    """device_category, component, family, log_p"""
    unseen: pd.DataFrame
    """device_category, component, log_p of a code family never seen before that component"""
    tickets: int


def learn_components(
    tickets: pd.DataFrame,
    events: pd.DataFrame,
    devices: pd.DataFrame,
    *,
    as_of: date,
    lookback_days: int = 30,
) -> ComponentModel:
    """From tickets opened on or before ``as_of`` that name a component (see module doc)."""
    t = tickets[
        tickets["kind"].isin(REPAIRS)
        & tickets["component"].notna()
        & tickets["device_id"].notna()
        & (pd.to_datetime(tickets["opened_at"], utc=True).dt.date <= as_of)
    ][["partner_id", "device_id", "ticket_id", "component", "opened_at"]]
    t = t.merge(
        devices[["partner_id", "device_id", "device_category"]], on=["partner_id", "device_id"]
    )
    if t.empty:
        empty = pd.DataFrame(columns=["device_category", "component", "log_prior"])
        return ComponentModel(
            empty,
            pd.DataFrame(columns=["device_category", "component", "family", "log_p"]),
            pd.DataFrame(columns=["device_category", "component", "log_p"]),
            0,
        )
    counts = t.groupby(["device_category", "component"]).size().rename("n").reset_index()
    totals = counts.groupby("device_category")["n"].transform("sum")
    counts["log_prior"] = np.log(counts["n"] / totals)
    ev = events[["partner_id", "device_id", "code", "occurred_at"]].copy()
    ev["family"] = code_family(ev["code"])
    ev["at"] = pd.to_datetime(ev["occurred_at"], utc=True)
    j = t.merge(ev, on=["partner_id", "device_id"])
    opened = pd.to_datetime(j["opened_at"], utc=True)
    j = j[(j["at"] <= opened) & (j["at"] > opened - pd.Timedelta(days=lookback_days))]
    fam = j.groupby(["device_category", "component", "family"]).size().rename("k").reset_index()
    families = sorted(set(fam["family"]))
    n_fam = max(len(families), 1)
    per_c = fam.groupby(["device_category", "component"])["k"].sum().rename("K").reset_index()
    lik = fam.merge(per_c, on=["device_category", "component"])
    lik["log_p"] = np.log((lik["k"] + 1) / (lik["K"] + n_fam + 1))
    unseen = counts[["device_category", "component"]].merge(
        per_c, on=["device_category", "component"], how="left"
    )
    unseen["log_p"] = np.log(1 / (unseen["K"].fillna(0) + n_fam + 1))
    return ComponentModel(
        counts[["device_category", "component", "log_prior"]],
        lik[["device_category", "component", "family", "log_p"]],
        unseen[["device_category", "component", "log_p"]],
        len(t),
    )


def likely_components(
    model: ComponentModel, devices: pd.DataFrame, recent: pd.DataFrame
) -> pd.DataFrame:
    """Per device: the component with the highest posterior given its recent code families,
    and that posterior (``component_share``). ``recent``: device_id, family, n."""
    cols = ["partner_id", "device_id", "likely_component", "component_share"]
    if model.tickets == 0 or devices.empty:
        out = devices[["partner_id", "device_id"]].copy()
        out["likely_component"] = None
        out["component_share"] = np.nan
        return out[cols]
    cand = devices[["partner_id", "device_id", "device_category"]].merge(
        model.prior, on="device_category"
    )
    score = cand.copy()
    if len(recent):
        r = recent.merge(
            devices[["partner_id", "device_id", "device_category"]], on=["partner_id", "device_id"]
        )
        r = r.merge(model.prior[["device_category", "component"]], on="device_category")
        r = r.merge(model.likelihood, on=["device_category", "component", "family"], how="left")
        r = r.merge(
            model.unseen.rename(columns={"log_p": "log_unseen"}),
            on=["device_category", "component"],
            how="left",
        )
        r["ll"] = r["n"] * r["log_p"].fillna(r["log_unseen"])
        ll = r.groupby(["partner_id", "device_id", "component"], as_index=False)["ll"].sum()
        score = score.merge(ll, on=["partner_id", "device_id", "component"], how="left")
    else:
        score["ll"] = 0.0
    score["post"] = score["log_prior"] + score["ll"].fillna(0.0)
    score["w"] = np.exp(score["post"] - score.groupby("device_id")["post"].transform("max"))
    score["share"] = score["w"] / score.groupby("device_id")["w"].transform("sum")
    best = score.sort_values(
        ["partner_id", "device_id", "share", "component"], ascending=[True, True, False, True]
    ).drop_duplicates(["partner_id", "device_id"])
    out = (
        devices[["partner_id", "device_id"]]
        .merge(
            best[["partner_id", "device_id", "component", "share"]],
            on=["partner_id", "device_id"],
            how="left",
        )
        .rename(columns={"component": "likely_component", "share": "component_share"})
    )
    return out[cols]


def fleet(
    lake: Lake,
    *,
    workspace: str | Path,
    partner: str | None = None,
    top: int | None = 50,
    as_of: str | date | None = None,
    lookback_days: int = 30,
    reasons: bool = True,
    champion_of: Callable[[str], Any] | None = None,
) -> pd.DataFrame:
    """Devices under contract by failure risk (highest first) with the likely component and
    the top three reasons; one partner's devices when ``partner`` is given. ``champion_of``:
    as in :func:`amplify_ml.scoring.leads.leads`."""
    from amplify_ml.scoring.score import read_scores

    if top is not None and top < 1:
        raise InvalidRequestError(f"top must be at least 1, got {top}")
    partners = [partner] if partner else None
    if partner is not None and partner not in lake.partners():
        raise NotFoundError(f"no partner {partner} in the lake (or it withdrew its consent)")
    scores = read_scores(workspace, "device_failure", as_of=as_of, partners=partners)
    day = pd.Timestamp(scores["as_of"].iloc[0]).date() if len(scores) else date.today()
    ib = lake.read("install_base", partners)
    products = lake.read("products")
    dev = ib.merge(
        products[["sku", "category", "family"]].rename(columns={"category": "device_category"}),
        on="sku",
        how="left",
    )
    s = scores.merge(
        dev[["partner_id", "device_id", "device_category", "family", "contract"]],
        on=["partner_id", "device_id"],
        how="left",
    )
    s = s.sort_values(
        ["probability", "partner_id", "device_id"], ascending=[False, True, True], kind="stable"
    )
    if top is not None:
        s = s.head(top)
    # components are learnt from the whole pool of consenting partners (like the models),
    # applied to the listed devices with their own recent events
    has = set(lake.tables())
    tickets = lake.read("service_events") if "service_events" in has else None
    events = lake.read("device_events") if "device_events" in has else None
    if "likely_component" in s:  # the champion's own, per component
        pairs = zip(s["component_probabilities"], s["likely_component"], strict=True)
        s["component_share"] = [_share(p, c) for p, c in pairs]
    elif tickets is not None and events is not None and len(tickets):
        pool = lake.read("install_base").merge(
            products[["sku", "category"]].rename(columns={"category": "device_category"}),
            on="sku",
            how="left",
        )
        cm = learn_components(tickets, events, pool, as_of=day, lookback_days=lookback_days)
        ev = events if partners is None else events[events["partner_id"].isin(partners)]
        at = pd.to_datetime(ev["occurred_at"], utc=True).dt.date
        ev = ev[(at <= day) & (at > day - timedelta(days=lookback_days))].copy()
        ev["family"] = code_family(ev["code"])
        recent = ev.groupby(["partner_id", "device_id", "family"]).size().rename("n").reset_index()
        comp = likely_components(cm, s[["partner_id", "device_id", "device_category"]], recent)
        s = s.merge(comp, on=["partner_id", "device_id"], how="left")
    else:
        s["likely_component"] = None
        s["component_share"] = np.nan
    if reasons and len(s):
        s = _reasons(s, lake, workspace, day, partners, champion_of)
    for c in ("reason_1", "reason_2", "reason_3", "component_probability"):
        if c not in s:
            s[c] = None
    if "component_probabilities" not in s:
        s["component_probabilities"] = None
    s = s.reset_index(drop=True)
    s.insert(0, "rank", np.arange(1, len(s) + 1))
    s["as_of"] = day
    return s[COLUMNS]


def _reasons(
    s: pd.DataFrame,
    lake: Lake,
    workspace: str | Path,
    day: date,
    partners: Sequence[str] | None,
    champion_of: Callable[[str], Any] | None = None,
) -> pd.DataFrame:
    import warnings

    from amplify_ml.features import FeatureBuilder, FeatureWarning
    from amplify_ml.modeling.reasons import reasons_frame
    from amplify_ml.scoring.score import champion

    ch = (
        champion_of("device_failure")
        if champion_of is not None
        else champion("device_failure", workspace)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FeatureWarning)
        with FeatureBuilder(lake, partners=partners) as fb:
            frame, meta = fb.feature_frame("device_failure", **ch.feature_args(day))
    keys = ["partner_id", "device_id"]
    if "component" in meta.keys and "likely_component" in s:
        # a row per component: the reasons of the device's likely one
        keys = [*keys, "component"]
        s = s.assign(component=s["likely_component"])
    sub = frame.merge(s[keys], on=keys)
    feats = list(meta.features)
    why = reasons_frame(
        ch.estimator.contributions(sub[feats]), sub[feats], keys=sub[list(meta.keys)]
    )
    r = sub[keys].copy()
    for c in ("reason_1", "reason_2", "reason_3"):
        r[c] = why[c].to_numpy() if c in why else None
    out = s.merge(r, on=keys, how="left")
    return out.drop(columns="component") if "component" in keys else out


def _share(probabilities: Any, component: Any) -> float:
    """The component's part of the device's summed component probabilities (JSON object)."""
    if not isinstance(probabilities, str) or component is None:
        return float("nan")
    p = json.loads(probabilities)
    total = sum(p.values())
    return float(p.get(component, 0.0) / total) if total > 0 else float("nan")
