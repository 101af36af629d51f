"""What the route modules share: documented error answers and CSV responses."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import pandas as pd
from fastapi import Response

from amplify_ml.serving.schemas import ErrorBody


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error answers a route gives."""
    text = {
        400: "The request cannot be read.",
        401: "No API key, or a wrong or revoked one.",
        403: "The key's role may not do this.",
        404: "Not found, or not visible to this key (the same answer either way).",
        413: "The body is over the size limit.",
        422: "A parameter or body field is invalid: the detail names it and what is expected.",
        429: "Too many refused attempts with this key id lately: wait Retry-After seconds.",
        503: "A model, score table or the lake is missing: the detail says what to run.",
    }
    return {s: {"model": ErrorBody, "description": text[s]} for s in statuses}


AUTH = (401, 422, 429, 503)
"""Every authenticated route can answer these."""

CSV = {200: {"content": {"text/csv": {"schema": {"type": "string"}}}}}
"""The 200 answer of a list route also comes as text/csv."""


def csv_response(frame: pd.DataFrame, columns: Sequence[str], filename: str) -> Response:
    """``frame[columns]`` as a CSV download (dates ISO, missing values empty)."""
    body = frame[[c for c in columns if c in frame.columns]].to_csv(index=False)
    filename = re.sub(r"[^A-Za-z0-9_.-]", "_", filename)
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
