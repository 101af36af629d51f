"""Purchases (sell_through), buying projects, opportunities, intent signals and inventory.

An account buys in category k through four mechanisms:

1. *Ad-hoc purchases*: a Poisson process with daily rate
   ``baseline_rate[k] x (employees/20)^0.45 x exp(affinity[k]) x season(d)`` between
   ``first_seen`` and ``churn_day`` (:func:`baseline_rate`).
2. *Buying projects* (printer, pc, service, accessory): start as a Poisson process with rate
   ``project_rate[k] x (employees/20)^0.45 x exp(affinity[k]) x season(d)`` from
   ``first_seen``; a project lasts ``L`` = 3-12 weeks (uniform), shows up as weekly
   ``intent_signals`` (if the account is visible for it: topic = the family or the category,
   PC projects also ``security``; intensity rising over the first 8 weeks), may have an
   opportunity (``p_opportunity``; created in the project's first 3 weeks, with
   ``deal_registered``/``presales_support``), and ends on ``start + L`` with a purchase with
   probability ``p_win = sigmoid(win_logit + 0.8 deal_registered + 0.5 presales_support)``
   (never after the account churned). The opportunity is won (closed on the purchase day) or
   lost; still open if the project ends after the period.
3. *Device-driven purchases*: the replacement of a retired device (bought on the retirement
   day), a cartridge change of an unmanaged printer whose supplies the account buys through
   the partner (bought on the change day), and an extended warranty (with probability
   ``warranty_buyer`` the account decides on a uniform day in the 90 days before the
   device's warranty ends; bought if the device is still in service).
4. Accounts first seen during the period buy on their first_seen day.

Printer and PC units bought ad hoc or by a project become tracked devices with probability
0.75 (installed 0-10 days later). Purchases stop at ``churn_day``. Returns (negative
quantity and amount, 3-30 days later) exist for a share of lines and never count as buying.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from amplify_ml.datapack.contract import PRODUCT_CATEGORIES, SUPPLY_COLORS
from amplify_ml.datasets.accounts import FX_PER_USD, Accounts, Partner, season
from amplify_ml.datasets.arrays import ArrayFrame, pseudonyms, sigmoid
from amplify_ml.datasets.calendar import NEVER, Calendar
from amplify_ml.datasets.catalogue import (
    ACCESSORY,
    N_COLORS,
    PC,
    PRINTER,
    SERVICE,
    SUPPLIES,
    WARRANTY,
    Catalogue,
    pick_family,
)
from amplify_ml.datasets.config import WorldConfig
from amplify_ml.datasets.devices import MPS, Devices

PROJECT_CATEGORIES = (PRINTER, PC, SERVICE, ACCESSORY)
FIELD, ONLINE, MARKETPLACE = 0, 1, 2
CHANNEL_NAMES = np.asarray(["field", "online", "marketplace"], dtype=object)


@dataclass
class Purchases(ArrayFrame):
    """Positive purchase lines before ids, prices and returns."""

    account: np.ndarray
    day: np.ndarray
    product: np.ndarray
    quantity: np.ndarray
    channel: np.ndarray


@dataclass
class Projects(ArrayFrame):
    """Buying projects of one partner's accounts."""

    account: np.ndarray
    category: np.ndarray
    start: np.ndarray
    lead: np.ndarray
    family: np.ndarray
    visible: np.ndarray
    has_opp: np.ndarray
    opp_created: np.ndarray
    registered: np.ndarray
    presales: np.ndarray
    p_win: np.ndarray
    won: np.ndarray
    units: np.ndarray

    @property
    def purchase_day(self) -> np.ndarray:
        return self.start + self.lead


def size_factor(cfg: WorldConfig, acc: Accounts) -> np.ndarray:
    return (acc.employees / 20.0) ** cfg.sales.size_exponent


def active_mask(acc: Accounts, days: np.ndarray) -> np.ndarray:
    """Accounts that buy on ``days``: first seen and not yet churned."""
    return (days[None, :] >= acc.first_seen[:, None]) & (days[None, :] < acc.churn_day[:, None])


def baseline_rate(
    cfg: WorldConfig, cal: Calendar, acc: Accounts, k: int, days: np.ndarray
) -> np.ndarray:
    """Daily rate of ad-hoc purchases in category ``k`` (n_accounts, len(days)); ignores churn."""
    sa = cfg.sales
    s = season(acc, cal, days, quarter_boost=sa.quarter_end_boost, quarter_days=sa.quarter_end_days)
    base = sa.baseline_rate[k] * size_factor(cfg, acc) * np.exp(acc.affinity[:, k])
    return base[:, None] * s * (days[None, :] >= acc.first_seen[:, None])


def project_rate(
    cfg: WorldConfig, cal: Calendar, acc: Accounts, k: int, days: np.ndarray
) -> np.ndarray:
    """Daily rate of project starts in category ``k`` (n_accounts, len(days))."""
    sa = cfg.sales
    s = season(acc, cal, days, quarter_boost=sa.quarter_end_boost, quarter_days=sa.quarter_end_days)
    base = sa.project_rate[k] * size_factor(cfg, acc) * np.exp(acc.affinity[:, k])
    return base[:, None] * s * (days[None, :] >= acc.first_seen[:, None])


def win_probability(
    cfg: WorldConfig, win_logit: np.ndarray, registered: np.ndarray, presales: np.ndarray
) -> np.ndarray:
    sa = cfg.sales
    return sigmoid(win_logit + sa.deal_registered_logit * registered + sa.presales_logit * presales)


def expected_win(cfg: WorldConfig, acc: Accounts) -> np.ndarray:
    """A new project's win probability averaged over its opportunity's attributes."""
    sa = cfg.sales
    out = (1 - acc.p_opportunity) * win_probability(
        cfg, acc.win_logit, np.zeros(len(acc)), np.zeros(len(acc))
    )
    for reg in (0, 1):
        for pre in (0, 1):
            p = (sa.deal_registered_share if reg else 1 - sa.deal_registered_share) * (
                sa.presales_share if pre else 1 - sa.presales_share
            )
            out = out + acc.p_opportunity * p * win_probability(
                cfg, acc.win_logit, np.full(len(acc), reg), np.full(len(acc), pre)
            )
    return out


def lead_cdf(cfg: WorldConfig, max_days: int) -> np.ndarray:
    """P(project lead <= t days) for t = 0..max_days."""
    lo, hi = cfg.sales.project_lead_weeks
    leads = 7 * np.arange(lo, hi + 1)
    t = np.arange(max_days + 1)
    return (leads[None, :] <= t[:, None]).mean(axis=1)


def _channel(rng: np.random.Generator, n: int, probs: tuple[float, float, float]) -> np.ndarray:
    return rng.choice(3, size=n, p=np.asarray(probs))


def _draw_poisson_events(
    rng: np.random.Generator, rate: np.ndarray, days: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    counts = rng.poisson(rate)
    a, t = np.nonzero(counts)
    reps = counts[a, t]
    return np.repeat(a, reps), np.repeat(days[t], reps)


def account_purchases(
    cfg: WorldConfig,
    cal: Calendar,
    cat: Catalogue,
    acc: Accounts,
    initial: Devices,
    rng: np.random.Generator,
) -> tuple[Purchases, Projects]:
    """Ad-hoc purchases, first purchases of new accounts and buying projects (with their
    purchases), before any device-driven purchase."""
    n_days = cal.n_days
    days = np.arange(n_days)
    act = active_mask(acc, days)
    parts: list[Purchases] = []
    # the families each account's printers use (for supplies bought ad hoc)
    printer_fams = [
        initial.family[(initial.account == a) & (initial.category == PRINTER)]
        for a in range(len(acc))
    ]
    all_printer_fams = cat.families_of(PRINTER)
    for k in range(len(PRODUCT_CATEGORIES)):
        rate = baseline_rate(cfg, cal, acc, k, days) * act
        a, d = _draw_poisson_events(rng, rate, days)
        parts.append(
            _ad_hoc_lines(cfg, cal, cat, acc, rng, k, a, d, printer_fams, all_printer_fams)
        )
    # accounts first seen during the period buy on that day
    new = np.flatnonzero(
        (acc.first_seen >= 0) & (acc.first_seen < n_days) & (acc.churn_day > acc.first_seen)
    )
    if len(new):
        ks = np.argmax(acc.affinity[new][:, [PRINTER, PC, SUPPLIES, ACCESSORY]], axis=1)
        ks = np.asarray([PRINTER, PC, SUPPLIES, ACCESSORY])[ks]
        for k in np.unique(ks):
            sel = new[ks == k]
            parts.append(
                _ad_hoc_lines(
                    cfg,
                    cal,
                    cat,
                    acc,
                    rng,
                    int(k),
                    sel,
                    acc.first_seen[sel],
                    printer_fams,
                    all_printer_fams,
                )
            )
    projects = draw_projects(cfg, cal, cat, acc, rng)
    parts.append(project_lines(cfg, cal, cat, projects, rng))
    return Purchases.concat(parts), projects


def _ad_hoc_lines(
    cfg: WorldConfig,
    cal: Calendar,
    cat: Catalogue,
    acc: Accounts,
    rng: np.random.Generator,
    k: int,
    a: np.ndarray,
    d: np.ndarray,
    printer_fams: list[np.ndarray],
    all_printer_fams: np.ndarray,
) -> Purchases:
    n = len(a)
    if k in (PRINTER, PC):
        fam = pick_family(
            cat,
            np.full(n, k),
            cal.epoch_days(d).astype(np.int64),
            rng,
            recency_years=cfg.fleet.family_recency_years,
            sale_years=cfg.fleet.family_sale_years,
        )
        product = np.asarray(
            [cat.device_skus[f][rng.integers(len(cat.device_skus[f]))] for f in fam], dtype=np.int64
        )
        qty = 1 + rng.poisson(0.3, n)
        ch = _channel(rng, n, (0.3, 0.5, 0.2))
    elif k == SUPPLIES:
        fam = np.asarray(
            [
                pf[rng.integers(len(pf))]
                if len(pf)
                else all_printer_fams[rng.integers(len(all_printer_fams))]
                for pf in (printer_fams[i] for i in a)
            ],
            dtype=np.int64,
        )
        color = np.where(
            cat.family_color[fam] & (rng.random(n) < 0.55), rng.integers(1, N_COLORS, n), 0
        )
        product = cat.supply_sku[fam, color, acc.high_yield[a].astype(np.int64)]
        qty = 1 + rng.poisson(0.8, n)
        ch = _channel(rng, n, (0.2, 0.55, 0.25))
    elif k == WARRANTY:
        dev_fams = np.concatenate([cat.families_of(PRINTER), cat.families_of(PC)])
        fam = dev_fams[rng.integers(0, len(dev_fams), n)]
        product = cat.warranty_sku[fam, rng.integers(0, cat.warranty_sku.shape[1], n)]
        qty = np.ones(n, dtype=np.int64)
        ch = _channel(rng, n, (0.5, 0.5, 0.0))
    elif k == SERVICE:
        product = cat.service_skus[rng.integers(0, len(cat.service_skus), n)]
        qty = np.ones(n, dtype=np.int64)
        ch = _channel(rng, n, (0.7, 0.3, 0.0))
    else:
        product = cat.accessory_skus[rng.integers(0, len(cat.accessory_skus), n)]
        qty = 1 + rng.poisson(1.0 * (acc.employees[a] / 20.0) ** 0.3)
        ch = _channel(rng, n, (0.2, 0.5, 0.3))
    return Purchases(
        account=a.astype(np.int64),
        day=d.astype(np.int64),
        product=product.astype(np.int64),
        quantity=qty.astype(np.int64),
        channel=ch.astype(np.int64),
    )


def draw_projects(
    cfg: WorldConfig, cal: Calendar, cat: Catalogue, acc: Accounts, rng: np.random.Generator
) -> Projects:
    """Every buying project started from the warm-up to the period end."""
    sa = cfg.sales
    days = np.arange(-cfg.calendar.project_warmup_days, cal.n_days)
    parts = []
    for k in PROJECT_CATEGORIES:
        rate = project_rate(cfg, cal, acc, k, days)
        a, start = _draw_poisson_events(rng, rate, days)
        n = len(a)
        lead = 7 * rng.integers(sa.project_lead_weeks[0], sa.project_lead_weeks[1] + 1, n)
        if k in (PRINTER, PC):
            fam = pick_family(
                cat,
                np.full(n, k),
                cal.epoch_days(start).astype(np.int64),
                rng,
                recency_years=cfg.fleet.family_recency_years,
                sale_years=cfg.fleet.family_sale_years,
            )
        else:
            fam = np.full(n, -1)
        has_opp = rng.random(n) < acc.p_opportunity[a]
        registered = has_opp & (rng.random(n) < sa.deal_registered_share)
        presales = has_opp & (rng.random(n) < sa.presales_share)
        p_win = win_probability(cfg, acc.win_logit[a], registered, presales)
        won = (rng.random(n) < p_win) & (acc.churn_day[a] > start + lead)
        fleet = (
            cfg.population.devices_per_employee
            * acc.employees[a] ** cfg.population.devices_employee_exponent
        )
        if k in (PRINTER, PC):
            units = 1 + rng.poisson(sa.project_units_share * fleet)
        elif k == ACCESSORY:
            units = 3 + rng.poisson(0.1 * fleet)
        else:
            units = np.ones(n, dtype=np.int64)
        parts.append(
            Projects(
                account=a.astype(np.int64),
                category=np.full(n, k, dtype=np.int64),
                start=start.astype(np.int64),
                lead=lead.astype(np.int64),
                family=fam.astype(np.int64),
                visible=rng.random(n) < acc.visibility[a],
                has_opp=has_opp,
                opp_created=(start + rng.integers(0, sa.opportunity_within_days, n)).astype(
                    np.int64
                ),
                registered=registered,
                presales=presales,
                p_win=p_win,
                won=won,
                units=units.astype(np.int64),
            )
        )
    return Projects.concat(parts)


def project_lines(
    cfg: WorldConfig, cal: Calendar, cat: Catalogue, pj: Projects, rng: np.random.Generator
) -> Purchases:
    """The purchase lines of won projects that end inside the period."""
    pd_ = pj.purchase_day
    sel = np.flatnonzero(pj.won & (pd_ >= 0) & (pd_ < cal.n_days))
    k = pj.category[sel]
    n = len(sel)
    product = np.empty(n, dtype=np.int64)
    dev = np.isin(k, (PRINTER, PC))
    fam = pj.family[sel]
    product[dev] = [cat.device_skus[f][rng.integers(len(cat.device_skus[f]))] for f in fam[dev]]
    svc = k == SERVICE
    product[svc] = cat.service_skus[rng.integers(0, len(cat.service_skus), int(svc.sum()))]
    acs = k == ACCESSORY
    product[acs] = cat.accessory_skus[rng.integers(0, len(cat.accessory_skus), int(acs.sum()))]
    ch = np.where(rng.random(n) < 0.8, FIELD, ONLINE)
    return Purchases(
        account=pj.account[sel], day=pd_[sel], product=product, quantity=pj.units[sel], channel=ch
    )


def tracked_units(
    cfg: WorldConfig, cal: Calendar, cat: Catalogue, buys: Purchases, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Printer and PC units that become devices: account, category, family, sku, installed."""
    is_dev = np.isin(cat.category[buys.product], (PRINTER, PC))
    idx = np.flatnonzero(is_dev)
    units = rng.binomial(buys.quantity[idx], cfg.fleet.tracked_share)
    rows = np.repeat(idx, units)
    installed = buys.day[rows] + rng.integers(0, cfg.fleet.install_delay_max_days + 1, len(rows))
    keep = installed < cal.n_days
    rows, installed = rows[keep], installed[keep]
    product = buys.product[rows]
    return {
        "account": buys.account[rows],
        "category": cat.category[product],
        "family": cat.family_of[product],
        "sku": product,
        "installed": installed,
    }


def device_purchases(
    cfg: WorldConfig,
    cal: Calendar,
    cat: Catalogue,
    acc: Accounts,
    dev: Devices,
    changes: np.ndarray,
    rng: np.random.Generator,
) -> Purchases:
    """Replacements, supplies for cartridge changes and extended warranties."""
    n_days = cal.n_days
    parts = []
    # replacements: bought on the day the replacement is installed (= the old one's retirement)
    old = np.flatnonzero(dev.replaced_by >= 0)
    new = dev.replaced_by[old]
    inside = (dev.installed[new] >= 0) & (dev.installed[new] < n_days)
    new = new[inside]
    parts.append(
        Purchases(
            account=dev.account[new],
            day=dev.installed[new],
            product=dev.sku[new],
            quantity=np.ones(len(new), dtype=np.int64),
            channel=np.where(rng.random(len(new)) < 0.6, FIELD, ONLINE),
        )
    )
    # supplies: cartridge changes of unmanaged printers supplied through the partner
    if len(changes):
        d_, c_, day = changes[:, 0], changes[:, 1], changes[:, 2]
        ok = (
            dev.supplied[d_]
            & (dev.contract[d_] != MPS)
            & (day < dev.retired[d_])
            & (day < acc.churn_day[dev.account[d_]])
        )
        d_, c_, day = d_[ok], c_[ok], day[ok]
        a = dev.account[d_]
        product = cat.supply_sku[dev.family[d_], c_, acc.high_yield[a].astype(np.int64)]
        parts.append(
            Purchases(
                account=a,
                day=day,
                product=product,
                quantity=1 + (rng.random(len(a)) < 0.2),
                channel=_channel(rng, len(a), (0.15, 0.6, 0.25)),
            )
        )
    # extended warranties
    wd = dev.warranty_day
    ok = (
        (wd >= 0)
        & (wd < n_days)
        & (wd >= dev.installed)
        & (wd < dev.retired)
        & (wd < acc.churn_day[dev.account])
    )
    i = np.flatnonzero(ok)
    parts.append(
        Purchases(
            account=dev.account[i],
            day=wd[i],
            product=cat.warranty_sku[dev.family[i], dev.warranty_k[i]],
            quantity=np.ones(len(i), dtype=np.int64),
            channel=np.where(rng.random(len(i)) < 0.5, FIELD, ONLINE),
        )
    )
    return Purchases.concat(parts)


def sell_through_table(
    cfg: WorldConfig,
    cal: Calendar,
    cat: Catalogue,
    acc: Accounts,
    partner: Partner,
    buys: Purchases,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Invoice lines with prices, plus returns; sorted by date."""
    sa = cfg.sales
    fx = FX_PER_USD[partner.currency]
    n = len(buys)
    unit = (
        cat.price[buys.product] * fx * (1 - acc.discount[buys.account]) * rng.uniform(0.97, 1.03, n)
    )
    unit = np.maximum(np.round(unit, 2), 0.01)
    k = cat.category[buys.product]
    ret = rng.random(n) < np.asarray(sa.return_prob)[k]
    ret_day = buys.day + rng.integers(sa.return_delay_days[0], sa.return_delay_days[1] + 1, n)
    ret &= ret_day < cal.n_days
    r = np.flatnonzero(ret)
    ret_qty = -(1 + np.floor(rng.random(len(r)) * buys.quantity[r])).astype(np.int64)
    account = np.concatenate([buys.account, buys.account[r]])
    day = np.concatenate([buys.day, ret_day[r]])
    product = np.concatenate([buys.product, buys.product[r]])
    qty = np.concatenate([buys.quantity, ret_qty])
    price = np.concatenate([unit, unit[r]])
    channel = np.concatenate([buys.channel, buys.channel[r]])
    order = np.lexsort((product, account, day))
    m = len(order)
    return pd.DataFrame(
        {
            "line_id": pseudonyms(rng, m, "L-", 10),
            "partner_id": partner.partner_id,
            "account_id": acc.account_id[account[order]],
            "sku": cat.sku[product[order]],
            "sold_on": cal.epoch_days(day[order]).astype("datetime64[D]"),
            "quantity": qty[order],
            "net_amount": np.round(price[order] * qty[order], 2),
            "currency": partner.currency,
            "channel": CHANNEL_NAMES[channel[order]],
        }
    )


def opportunities_table(
    cfg: WorldConfig,
    cal: Calendar,
    cat: Catalogue,
    acc: Accounts,
    partner: Partner,
    pj: Projects,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """One opportunity per project with one, created inside the period."""
    sel = np.flatnonzero(pj.has_opp & (pj.opp_created >= 0) & (pj.opp_created < cal.n_days))
    pd_ = pj.purchase_day[sel]
    closed = pd_ < cal.n_days
    stage = np.where(~closed, "open", np.where(pj.won[sel], "won", "lost")).astype(object)
    fam = pj.family[sel]
    price = np.where(
        fam >= 0, np.asarray([cat.families[f].price if f >= 0 else 0.0 for f in fam]), 0.0
    )
    k = pj.category[sel]
    price = np.where(k == SERVICE, 600.0, np.where(k == ACCESSORY, 120.0, price))
    amount = np.round(
        price * pj.units[sel] * FX_PER_USD[partner.currency] * rng.uniform(0.85, 1.25, len(sel)), 2
    )
    order = np.lexsort((pj.account[sel], pj.opp_created[sel]))
    closed_on = cal.epoch_days(np.minimum(pd_, cal.n_days)).astype("datetime64[D]")
    closed_on[~closed] = np.datetime64("NaT")
    return pd.DataFrame(
        {
            "opportunity_id": pseudonyms(rng, len(sel), "O-", 10),
            "partner_id": partner.partner_id,
            "account_id": acc.account_id[pj.account[sel][order]],
            "created_on": cal.epoch_days(pj.opp_created[sel][order]).astype("datetime64[D]"),
            "stage": stage[order],
            "closed_on": closed_on[order],
            "amount": amount[order],
            "deal_registered": pj.registered[sel][order],
            "presales_support": pj.presales[sel][order],
        }
    )


def intent_table(
    cfg: WorldConfig,
    cal: Calendar,
    cat: Catalogue,
    acc: Accounts,
    partner: Partner,
    pj: Projects,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Weekly intent signals: visible projects (ramping up to the purchase) plus noise."""
    sa = cfg.sales
    mondays = cal.mondays()
    first_monday, last_monday = int(mondays[0]), int(mondays[-1])
    topics_fixed = [*PRODUCT_CATEGORIES, "security"]
    fam_names = [f.name for f in cat.families]
    topic_names = np.asarray(topics_fixed + fam_names, dtype=object)
    fam_topic0 = len(topics_fixed)

    vis = np.flatnonzero(pj.visible)
    start, lead = pj.start[vis], pj.lead[vis]
    # Monday on or before the start, then every week until the week before the purchase
    wd = cal.weekday[start - cal.lo].astype(np.int64)
    w0 = start - wd
    n_weeks = np.maximum(1, (start + lead - 1 - w0) // 7 + 1)
    p = np.repeat(np.arange(len(vis)), n_weeks)
    week = np.repeat(w0, n_weeks) + 7 * (
        np.arange(len(p)) - np.repeat(np.cumsum(n_weeks) - n_weeks, n_weeks)
    )
    # intensity rises with the time since the start (not with the time left: the end of a
    # project is not announced)
    progress = np.clip((week + 3.5 - start[p]) / (7.0 * sa.intent_ramp_weeks), 0.0, 1.0)
    intensity = rng.poisson(sa.intent_base + sa.intent_ramp * progress**1.5)
    k = pj.category[vis][p]
    fam = pj.family[vis][p]
    use_family = (fam >= 0) & (rng.random(len(p)) < sa.intent_family_share)
    topic = np.where(use_family, fam_topic0 + np.maximum(fam, 0), k)
    acct = pj.account[vis][p]
    # PC projects also research security
    sec = (k == PC) & (rng.random(len(p)) < sa.intent_security_share)
    acct = np.concatenate([acct, acct[sec]])
    week = np.concatenate([week, week[sec]])
    topic = np.concatenate([topic, np.full(int(sec.sum()), len(PRODUCT_CATEGORIES))])
    intensity = np.concatenate([intensity, 1 + rng.poisson(2.0, int(sec.sum()))])
    # noise: unrelated research
    weeks = mondays
    noise = rng.random((len(acc), len(weeks))) < sa.intent_noise_per_week * acc.visibility[:, None]
    noise &= weeks[None, :] >= acc.first_seen[:, None] - 365
    na, nw = np.nonzero(noise)
    acct = np.concatenate([acct, na])
    week = np.concatenate([week, weeks[nw]])
    topic = np.concatenate([topic, rng.integers(0, len(topic_names), len(na))])
    intensity = np.concatenate([intensity, 1 + rng.poisson(1.0, len(na))])

    keep = (week >= first_monday) & (week <= last_monday) & (intensity > 0)
    df = pd.DataFrame({"a": acct[keep], "w": week[keep], "t": topic[keep], "i": intensity[keep]})
    df = df.groupby(["a", "w", "t"], as_index=False, sort=True)["i"].sum()
    df = df.sort_values(["w", "a", "t"], kind="stable")
    return pd.DataFrame(
        {
            "partner_id": partner.partner_id,
            "account_id": acc.account_id[df["a"].to_numpy()],
            "week_of": cal.epoch_days(df["w"].to_numpy()).astype("datetime64[D]"),
            "topic": topic_names[df["t"].to_numpy()],
            "intensity": df["i"].to_numpy(np.int64),
        }
    )


def inventory_table(
    cfg: WorldConfig,
    cal: Calendar,
    cat: Catalogue,
    partner: Partner,
    buys: Purchases,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Monthly stock on hand (first of the month) of the partner's best-selling SKUs."""
    months = cal.month_starts()
    qty = np.bincount(buys.product, weights=buys.quantity, minlength=len(cat.sku))
    top = np.argsort(-qty, kind="stable")[: cfg.sales.inventory_skus]
    top = top[qty[top] > 0]
    monthly = qty[top] / (cal.n_days / 30.44)
    units = rng.poisson(1.5 * monthly[:, None] + 2.0, (len(top), len(months)))
    s, m = np.meshgrid(np.arange(len(top)), np.arange(len(months)), indexing="ij")
    return (
        pd.DataFrame(
            {
                "partner_id": partner.partner_id,
                "sku": cat.sku[top[s.ravel()]],
                "as_of": cal.epoch_days(months[m.ravel()]).astype("datetime64[D]"),
                "units_on_hand": units.ravel().astype(np.int64),
            }
        )
        .sort_values(["as_of", "sku"], kind="stable")
        .reset_index(drop=True)
    )


__all__ = [
    "NEVER",
    "SUPPLY_COLORS",
    "Projects",
    "Purchases",
    "account_purchases",
    "baseline_rate",
    "device_purchases",
    "expected_win",
    "intent_table",
    "inventory_table",
    "lead_cdf",
    "opportunities_table",
    "project_rate",
    "sell_through_table",
    "tracked_units",
]
