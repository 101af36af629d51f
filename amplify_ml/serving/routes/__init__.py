"""The API's routes, one module per resource."""

from __future__ import annotations

from fastapi import APIRouter

from amplify_ml.serving.routes import benchmarks, devices, fleet, health, leads, models, supplies

ROUTERS: tuple[APIRouter, ...] = (
    health.router,
    leads.router,
    devices.router,
    supplies.router,
    fleet.router,
    benchmarks.router,
    models.router,
)
