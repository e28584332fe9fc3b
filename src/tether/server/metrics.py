"""Prometheus metrics of a server's engine: state operations by kind, commit durations,
checkpoints, recoveries, template cache hits and misses, runs by status."""
from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from ..templates import CACHE


class Metrics:
    """One registry per server; :meth:`instrument` wraps a store so that every call counts."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.operations = Counter("tether_state_operations", "Store operations, by kind", ["kind"],
                                  registry=self.registry)
        self.commit_seconds = Histogram("tether_commit_duration_seconds", "Time of one commit (checkpoint)",
                                        registry=self.registry,
                                        buckets=(.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5,
                                                 1, 2.5))
        self.checkpoints = Counter("tether_checkpoints", "Checkpoints committed", registry=self.registry)
        self.recoveries = Counter("tether_recoveries", "Runs taken over after a crash, pause or release",
                                  registry=self.registry)
        self.store: Any = None
        self.registry.register(_ScrapeTime(self))

    def instrument(self, store: Any) -> Any:
        self.store = store
        return _CountingStore(store, self)


class _CountingStore:
    """The store, with every call counted (and commits timed)."""

    def __init__(self, store: Any, metrics: Metrics) -> None:
        self._store, self._metrics = store, metrics

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._store, name)
        if not callable(attr) or name.startswith("_"):
            return attr
        counter = self._metrics.operations.labels(kind=name)
        metrics = self._metrics

        def call(*args: Any, **kwargs: Any) -> Any:
            counter.inc()
            if name != "commit":
                result = attr(*args, **kwargs)
                if (name == "acquire_lease" and kwargs.get("takeover") is not None) or \
                        (name == "claim_run" and result is not None and result.seq > 1):
                    metrics.recoveries.inc()
                return result
            started = time.perf_counter()
            try:
                return attr(*args, **kwargs)
            finally:
                metrics.commit_seconds.observe(time.perf_counter() - started)
                metrics.checkpoints.inc()
        return call


class _ScrapeTime:
    """Values read when Prometheus scrapes: the template cache and runs by status."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Any:
        hits = CounterMetricFamily("tether_template_cache_hits", "Template compile cache hits")
        hits.add_metric([], CACHE.hits)
        misses = CounterMetricFamily("tether_template_cache_misses", "Template compile cache misses")
        misses.add_metric([], CACHE.misses)
        runs = GaugeMetricFamily("tether_runs", "Runs in the store, by stored status", labels=["status"])
        if self.metrics.store is not None:
            for status, n in sorted(self.metrics.store.count_runs().items()):
                runs.add_metric([status], n)
        return [hits, misses, runs]
