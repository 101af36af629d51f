"""Lead lists: who a partner's sales team should call, what to offer, and why.

One row per account and offer, ranked by expected value. Offers come from three sources:

- **propensity**: the account's probability of buying in a category within the horizon; the
  expected value is that probability times the account's typical basket in the category (its
  mean revenue per purchase over the last 365 days, else the partner's median basket there);
  the recommended SKU is what the account buys most in the category, else the partner's best
  seller there.
- **warranty**: devices whose warranty ends within ``warranty_months`` (and no managed
  contract); the offer is the extended-warranty SKU that fits the device's family (the one the
  partner sells most, else the shortest extension); probability = the account's propensity for
  the ``warranty`` category when scored, else the partner's past share of such devices that got
  one; expected value = probability x the SKU's list price.
- **refresh**: devices whose refresh probability passes ``refresh_threshold``; the offer is the
  partner's best-selling device of the same category; expected value = probability x its list
  price. The vendor's age rule (installed more than 5 years ago) is shown as a flag.

Every row carries its top three reasons in plain words and the model version. A partner's
list only ever holds that partner's accounts and devices (everything is read for one partner).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from amplify_ml.errors import InvalidRequestError, NotFoundError
from amplify_ml.lake import Lake

COLUMNS = [
    "rank",
    "partner_id",
    "account_id",
    "offer",
    "category",
    "device_id",
    "recommended_sku",
    "probability",
    "expected_value",
    "reason_1",
    "reason_2",
    "reason_3",
    "vendor_age_rule",
    "model_version",
    "as_of",
]
"""The columns of a lead list, in order (the CSV export keeps these names)."""

YEAR_DAYS = 365.25


def merge_offers(offers: Sequence[pd.DataFrame], top: int | None = 50) -> pd.DataFrame:
    """Stack offer frames (any subset of :data:`COLUMNS`), rank by expected value (ties: higher
    probability, then account, offer, category, device), keep the ``top`` rows."""
    frames = [o for o in offers if o is not None and len(o)]
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in COLUMNS})
    df = pd.concat([f.reindex(columns=COLUMNS[1:]) for f in frames], ignore_index=True)
    df["expected_value"] = pd.to_numeric(df["expected_value"]).astype(float)
    df["probability"] = pd.to_numeric(df["probability"]).astype(float)
    sort_keys = ["expected_value", "probability", "account_id", "offer", "category", "device_id"]
    df = df.sort_values(
        sort_keys,
        ascending=[False, False, True, True, True, True],
        na_position="last",
        kind="stable",
    ).reset_index(drop=True)
    if top is not None:
        df = df.head(top)
    df.insert(0, "rank", np.arange(1, len(df) + 1))
    return df[COLUMNS]


# -- the offers from the lake and the scores --------------------------------------------------


def _lake_table(lake: Lake, table: str, partner: str) -> pd.DataFrame:
    return lake.read(table, [partner]) if table in lake.tables() else pd.DataFrame()


def _sales(lake: Lake, partner: str, as_of: date, days: int) -> pd.DataFrame:
    st = _lake_table(lake, "sell_through", partner)
    prod = _lake_table(lake, "products", partner)
    if st.empty or prod.empty:
        return pd.DataFrame(columns=["account_id", "sku", "category", "net_amount", "sold_on"])
    st = st.merge(prod[["sku", "category"]], on="sku", how="left")
    day = pd.to_datetime(st["sold_on"])
    keep = (day <= pd.Timestamp(as_of)) & (day > pd.Timestamp(as_of) - pd.Timedelta(days=days))
    return st[keep & (st["quantity"] > 0)]


def _best_sku(sales: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """The SKU with the most revenue per ``by`` group (ties: the SKU id)."""
    if sales.empty:
        return pd.DataFrame(columns=[*by, "sku"])
    g = sales.groupby([*by, "sku"], as_index=False)["net_amount"].sum()
    g = g.sort_values([*by, "net_amount", "sku"], ascending=[*([True] * len(by)), False, True])
    return g.drop_duplicates(by)[[*by, "sku"]]


def propensity_offers(scores: pd.DataFrame, sales: pd.DataFrame) -> pd.DataFrame:
    """Propensity rows of one partner with expected value and recommended SKU."""
    if scores.empty:
        return pd.DataFrame(columns=COLUMNS[1:])
    s = scores.copy()
    per_acct = sales.groupby(["account_id", "category"], as_index=False)["net_amount"].mean()
    per_acct = per_acct.rename(columns={"net_amount": "basket"})
    per_partner = sales.groupby("category", as_index=False)["net_amount"].median()
    per_partner = per_partner.rename(columns={"net_amount": "partner_basket"})
    s = s.merge(per_acct, on=["account_id", "category"], how="left")
    s = s.merge(per_partner, on="category", how="left")
    basket = s["basket"].fillna(s["partner_basket"]).fillna(0.0)
    s["expected_value"] = s["probability"] * basket
    acct_sku = _best_sku(sales, ["account_id", "category"]).rename(columns={"sku": "a_sku"})
    part_sku = _best_sku(sales, ["category"]).rename(columns={"sku": "p_sku"})
    s = s.merge(acct_sku, on=["account_id", "category"], how="left").merge(
        part_sku, on="category", how="left"
    )
    s["recommended_sku"] = s["a_sku"].fillna(s["p_sku"])
    s["offer"] = "propensity"
    s["device_id"] = None
    s["vendor_age_rule"] = None
    return s


def warranty_offers(
    install_base: pd.DataFrame,
    products: pd.DataFrame,
    sales: pd.DataFrame,
    as_of: date,
    months: int,
    warranty_propensity: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Devices whose warranty ends within ``months`` after ``as_of``, with the fitting SKU."""
    if install_base.empty or products.empty:
        return pd.DataFrame(columns=COLUMNS[1:])
    ib = install_base.copy()
    end = pd.to_datetime(ib["warranty_ends_on"])
    inst = pd.to_datetime(ib["installed_on"])
    ret = pd.to_datetime(ib["retired_on"])
    cut = pd.Timestamp(as_of)
    alive = (inst <= cut) & (ret.isna() | (ret > cut))
    ending = (end > cut) & (end <= cut + pd.DateOffset(months=months))
    managed = ib["contract"].isin(["mps", "daas"])
    ib = ib[alive & ending & ~managed].copy()
    if ib.empty:
        return pd.DataFrame(columns=COLUMNS[1:])
    fam = products[["sku", "family"]].rename(columns={"sku": "device_sku"})
    ib = ib.merge(fam, left_on="sku", right_on="device_sku", how="left")
    w = products[products["category"] == "warranty"][
        ["sku", "family", "list_price", "extends_warranty_months"]
    ]
    sold = sales[sales["category"] == "warranty"].groupby("sku")["net_amount"].sum()
    w = w.assign(sold=w["sku"].map(sold).fillna(0.0))
    w = w.sort_values(
        ["family", "sold", "extends_warranty_months", "sku"], ascending=[True, False, True, True]
    )
    pick = w.drop_duplicates("family").rename(columns={"sku": "recommended_sku"})
    ib = ib.merge(pick[["family", "recommended_sku", "list_price"]], on="family", how="left")
    ib = ib[ib["recommended_sku"].notna()]
    if ib.empty:
        return pd.DataFrame(columns=COLUMNS[1:])
    if warranty_propensity is not None and len(warranty_propensity):
        p = warranty_propensity[["account_id", "probability"]]
        ib = ib.merge(p, on="account_id", how="left")
    else:
        ib["probability"] = np.nan
    ib["probability"] = ib["probability"].fillna(_warranty_take_rate(sales, install_base))
    ib["expected_value"] = ib["probability"] * ib["list_price"].astype(float)
    days = (pd.to_datetime(ib["warranty_ends_on"]) - cut).dt.days
    ib["reason_1"] = [
        f"warranty of {f} device {d} ends on {e:%Y-%m-%d} (in {n} days)"
        for f, d, e, n in zip(
            ib["family"], ib["device_id"], pd.to_datetime(ib["warranty_ends_on"]), days, strict=True
        )
    ]
    age = (cut - pd.to_datetime(ib["installed_on"])).dt.days / YEAR_DAYS
    ib["reason_2"] = [f"installed {a:.1f} years ago" for a in age]
    ib["reason_3"] = None
    ib["offer"] = "warranty"
    ib["category"] = "warranty"
    ib["vendor_age_rule"] = age > 5
    return ib


def _warranty_take_rate(sales: pd.DataFrame, install_base: pd.DataFrame) -> float:
    """Accounts that bought a warranty SKU over accounts with devices (a rough prior)."""
    with_devices = install_base["account_id"].nunique() if len(install_base) else 0
    if not with_devices:
        return 0.0
    bought = sales.loc[sales["category"] == "warranty", "account_id"].nunique()
    return float(bought / with_devices)


def refresh_offers(
    scores: pd.DataFrame,
    install_base: pd.DataFrame,
    products: pd.DataFrame,
    sales: pd.DataFrame,
    as_of: date,
    threshold: float,
) -> pd.DataFrame:
    """Devices whose refresh probability passes ``threshold``, with a replacement offer."""
    if scores.empty:
        return pd.DataFrame(columns=COLUMNS[1:])
    s = scores[scores["probability"] >= threshold].copy()
    if s.empty:
        return pd.DataFrame(columns=COLUMNS[1:])
    ib = install_base[["device_id", "sku", "installed_on"]].merge(
        products[["sku", "category"]], on="sku", how="left"
    )
    s = s.merge(ib[["device_id", "category", "installed_on"]], on="device_id", how="left")
    best = _best_sku(sales[sales["category"].isin(["printer", "pc"])], ["category"])
    best = best.merge(products[["sku", "list_price"]], on="sku", how="left")
    s = s.merge(best.rename(columns={"sku": "recommended_sku"}), on="category", how="left")
    s["expected_value"] = s["probability"] * s["list_price"].astype(float).fillna(0.0)
    age = (pd.Timestamp(as_of) - pd.to_datetime(s["installed_on"])).dt.days / YEAR_DAYS
    s["vendor_age_rule"] = age > 5
    s["offer"] = "refresh"
    return s


def _explain(
    ch: Any, frame: pd.DataFrame, features: list[str], keys: list[str], rows: pd.DataFrame
) -> pd.DataFrame:
    """Reasons (top 3 that raise the score) for ``rows``, matched on ``keys``."""
    from amplify_ml.modeling.reasons import reasons_frame

    sub = frame.merge(rows[keys].drop_duplicates(), on=keys, how="inner")
    if sub.empty:
        return pd.DataFrame(columns=[*keys, "reason_1", "reason_2", "reason_3"])
    contrib = ch.estimator.contributions(sub[features])
    why = reasons_frame(contrib, sub[features], keys=sub[keys], direction="up")
    out = sub[keys].copy()
    for c in ("reason_1", "reason_2", "reason_3"):
        out[c] = why[c].to_numpy() if c in why else None
    return out


def leads(
    partner: str,
    lake: Lake,
    *,
    workspace: str | Path,
    top: int = 50,
    warranty_months: int = 6,
    refresh_threshold: float = 0.3,
    as_of: str | date | None = None,
    champion_of: Callable[[str], Any] | None = None,
) -> pd.DataFrame:
    """The ranked lead list of ``partner`` (see the module docstring). ``champion_of(model)``
    gives the champions whose reasons are shown (default: loaded from the workspace's
    registry; the API passes the ones it serves)."""
    from amplify_ml.features import FeatureBuilder
    from amplify_ml.scoring.score import champion as load
    from amplify_ml.scoring.score import read_scores

    def champion(model: str, ws: str | Path) -> Any:
        return champion_of(model) if champion_of is not None else load(model, ws)

    if top < 1:
        raise InvalidRequestError(f"top must be at least 1, got {top}")
    if warranty_months < 1:
        raise InvalidRequestError(f"warranty months must be at least 1, got {warranty_months}")
    if partner not in lake.partners():
        raise NotFoundError(f"no partner {partner} in the lake (or it withdrew its consent)")
    prop = _scores_or_none(read_scores, workspace, "propensity_to_buy", as_of, partner)
    refr = _scores_or_none(read_scores, workspace, "refresh_due", as_of, partner)
    if prop is None and refr is None:
        raise NotFoundError(
            "no propensity or refresh scores in the workspace: run amplify score "
            f"propensity_to_buy refresh_due -w {workspace}"
        )
    day = pd.Timestamp((prop if prop is not None else refr)["as_of"].iloc[0]).date()
    sales = _sales(lake, partner, day, 365)
    products = _lake_table(lake, "products", partner)
    ib = _lake_table(lake, "install_base", partner)
    offers: list[pd.DataFrame] = []
    with FeatureBuilder(lake, partners=[partner]) as fb:
        if prop is not None:
            p = propensity_offers(prop[prop["category"] != "warranty"], sales)
            offers.append(
                _with_reasons(
                    p,
                    "propensity_to_buy",
                    workspace,
                    fb,
                    day,
                    top,
                    ["partner_id", "account_id", "category"],
                    champion,
                )
            )
        if not ib.empty:
            wp = prop[prop["category"] == "warranty"] if prop is not None else None
            offers.append(warranty_offers(ib, products, sales, day, warranty_months, wp))
            if len(offers[-1]) and prop is not None:
                offers[-1]["model_version"] = prop["model_version"].iloc[0]
        if refr is not None and not ib.empty:
            r = refresh_offers(refr, ib, products, sales, day, refresh_threshold)
            offers.append(
                _with_reasons(
                    r,
                    "refresh_due",
                    workspace,
                    fb,
                    day,
                    top,
                    ["partner_id", "account_id", "device_id"],
                    champion,
                )
            )
    out = merge_offers(offers, top)
    out["as_of"] = day
    return out


def _scores_or_none(
    read: Any, ws: str | Path, model: str, as_of: Any, partner: str
) -> pd.DataFrame | None:
    try:
        df = read(ws, model, as_of=as_of, partners=[partner])
    except NotFoundError:
        return None
    return df if len(df) else None


def _with_reasons(
    offers: pd.DataFrame,
    model: str,
    workspace: str | Path,
    fb: Any,
    day: date,
    top: int,
    keys: list[str],
    champion: Any,
) -> pd.DataFrame:
    """Reasons for the offers that can make the list (the ``top`` by expected value)."""
    if offers.empty:
        return offers
    offers = offers.sort_values("expected_value", ascending=False, kind="stable")
    head = offers.head(top)
    ch = champion(model, workspace)
    import warnings

    from amplify_ml.features import FeatureWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FeatureWarning)
        frame, meta = fb.feature_frame(model, **ch.feature_args(day))
    why = _explain(ch, frame, list(meta.features), keys, head)
    head = head.drop(columns=[c for c in ("reason_1", "reason_2", "reason_3") if c in head])
    head = head.merge(why, on=keys, how="left")
    return head
