"""The API's routes, one module per resource."""

from __future__ import annotations

from fastapi import APIRouter

from amplify_ml.serving.routes import benchmarks, devices, fleet, health, leads, models, supplies

# the hot routes first: a request is matched against the routes in this order
ROUTERS: tuple[APIRouter, ...] = (
    models.router,
    devices.router,
    health.router,
    leads.router,
    supplies.router,
    fleet.router,
    benchmarks.router,
)
