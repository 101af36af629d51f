"""The pages' data over the API's service: the same keys, caches, lists and audit log."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from amplify_ml.serving.deps import Caller
from amplify_ml.serving.pages import PageCaller
from amplify_ml.serving.service import Service

SHIP_ALPHA = 0.1
"""Ship when P(empty before delivery) passes this (as ``amplify supplies``' default)."""
LEAD_TIME_DAYS = 5


@dataclass
class ServicePageSource:
    """A :class:`~amplify_ml.serving.pages.PageSource` reading what the API reads."""

    service: Service

    def caller(self, key: str) -> PageCaller | None:
        rec = self.service.keys.verify(key)
        return None if rec is None else Caller(rec.key_id, rec.role, rec.partner_id)

    def partners(self) -> list[str]:
        return sorted(self.service.lake.partners())

    def leads(self, partner_id: str, *, category: str | None, top: int) -> pd.DataFrame:
        df = self.service.leads(partner_id)
        if category:
            df = df[df["category"] == category]
        return df.head(top)

    def fleet(self, partner_id: str | None, *, top: int) -> pd.DataFrame:
        return self.service.fleet(partner_id).head(top)

    def supplies(self, partner_id: str | None) -> pd.DataFrame:
        partners = [partner_id] if partner_id else None
        return self.service.supply_plan(partners, alpha=SHIP_ALPHA, lead_time_days=LEAD_TIME_DAYS)

    def audit(self, caller: PageCaller, route: str, partner_id: str | None, status: int) -> None:
        method, _, path = route.partition(" ")
        self.service.audit.record(
            key_id=caller.key_id,
            role=caller.role,
            partner=partner_id,
            method=method,
            route=path,
            path=path,
            status=status,
            ms=None,
        )
