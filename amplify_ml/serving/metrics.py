"""Prometheus metrics of the API, in a registry of the app (two apps never share counters).

- ``amplify_http_requests_total{method, route, status}``: requests answered.
- ``amplify_http_request_duration_seconds{method, route}``: time to answer.
- ``amplify_model_serving_version{model}``: the registry version serving (0 for none).
- ``amplify_model_load_failures_total{model}``: champions that failed to load.

``route`` is the path template (``/v1/devices/{device_id}/risk``), or ``unmatched``, so that
ids never become label values.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """The API's counters, histograms and gauges."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "amplify_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "amplify_http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route template.",
            ["method", "route"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.model_version = Gauge(
            "amplify_model_serving_version",
            "Registry version of the champion serving each model (0: none).",
            ["model"],
            registry=self.registry,
        )
        self.load_failures = Counter(
            "amplify_model_load_failures",
            "Champion versions that failed to load.",
            ["model"],
            registry=self.registry,
        )
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:  # label lookups cost more than the update: keep the children
            children = (
                self.requests.labels(method, route, str(status)),
                self.latency.labels(method, route),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)
