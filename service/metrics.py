"""Prometheus metrics of one app, on the app's own registry (never the process-wide default one).

What is exported:

- `glassbox_http_requests_total{method, route, status}` and `glassbox_http_request_duration_seconds{method, route}`:
  every HTTP request, by route *template* (``/v1/collections/{collection}/search``; ``unmatched`` when no route
  matched), so raw paths never become labels.
- `glassbox_search_stage_duration_seconds{stage}`: each search's `timings_ms` (encode, retrieve, each stage, total).
- `glassbox_filter_candidates_total{calibrated}` and `glassbox_filter_kept_total{calibrated}`: candidates the
  relevance filter (the `cosine` stage) saw and kept; their ratio is the filter's keep rate. Uncalibrated, the
  filter keeps every candidate.
- `glassbox_encode_batch_size` (texts) and `glassbox_encode_batch_calls` (searches) per micro-batched encode.
- `glassbox_cache_hits_total{kind}`, `glassbox_cache_misses_total{kind}`, `glassbox_cache_hit_ratio{kind}`,
  `glassbox_cache_errors_total` and `glassbox_cache_up{backend}`, read from the app's cache at scrape time (absent
  while the app has no cache).
- `process_*`: the server process's CPU time, resident memory and open files.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from service.pipeline import SearchOutcome

logger = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"  # the text exposition format every Prometheus scrapes
UNMATCHED_ROUTE = "unmatched"
FILTER_STAGE = "cosine"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0)
STAGE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class CacheView(Protocol):
    """What the metrics read of the app's cache: hit and miss counts by kind, its backend, whether it is up."""

    @property
    def backend(self) -> str: ...

    def stats(self) -> Mapping[str, Any]:
        """{kind: {"hits": n, "misses": n}} for kinds "response" and "embedding", and "errors": n."""

    def status(self) -> str:
        """Either "ok" or "down"."""


class CacheCollector(Collector):
    """Exports the cache's counters at scrape time; exports nothing while `source()` returns None."""

    def __init__(self, source: Callable[[], CacheView | None]) -> None:
        self._source = source

    def describe(self) -> Iterable[Metric]:
        return list(self._families())

    def collect(self) -> Iterable[Metric]:
        cache = self._source()
        if cache is None:
            return []
        hits, misses, ratio, errors, up = self._families()
        backend = str(getattr(cache, "backend", "unknown"))
        try:
            stats = cache.stats()
            healthy = cache.status() == "ok"
        except Exception:  # a scrape must still answer when the cache cannot: report it down
            logger.warning("cache statistics unavailable", exc_info=True)
            stats, healthy = {}, False
        for kind, counts in sorted(stats.items()):
            if not isinstance(counts, Mapping):
                continue
            hit, miss = int(counts.get("hits", 0)), int(counts.get("misses", 0))
            hits.add_metric([kind], hit)
            misses.add_metric([kind], miss)
            ratio.add_metric([kind], hit / (hit + miss) if hit + miss else 0.0)
        errors.add_metric([], int(stats.get("errors", 0)))
        up.add_metric([backend], 1.0 if healthy else 0.0)
        return [hits, misses, ratio, errors, up]

    @staticmethod
    def _families() -> tuple[
        CounterMetricFamily, CounterMetricFamily, GaugeMetricFamily, CounterMetricFamily, GaugeMetricFamily
    ]:
        return (
            CounterMetricFamily("glassbox_cache_hits", "cache hits since start, by kind", labels=["kind"]),
            CounterMetricFamily("glassbox_cache_misses", "cache misses since start, by kind", labels=["kind"]),
            GaugeMetricFamily(
                "glassbox_cache_hit_ratio", "hits / (hits + misses) since start, by kind", labels=["kind"]
            ),
            CounterMetricFamily("glassbox_cache_errors", "cache backend errors since start (searches bypassed it)"),
            GaugeMetricFamily("glassbox_cache_up", "1 when the cache backend answers, else 0", labels=["backend"]),
        )


class ServiceMetrics:
    """The metrics of one app; `render()` gives the text exposition of all of them.

    Args:
        cache: returns the app's cache, or None while it has none (read at every scrape).
    """

    def __init__(self, cache: Callable[[], CacheView | None] = lambda: None) -> None:
        self.registry = CollectorRegistry()
        self._requests = Counter(
            "glassbox_http_requests",
            "HTTP requests by method, route template and status code",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self._request_seconds = Histogram(
            "glassbox_http_request_duration_seconds",
            "HTTP request latency in the server, by method and route template",
            ["method", "route"],
            buckets=REQUEST_BUCKETS,
            registry=self.registry,
        )
        self._stage_seconds = Histogram(
            "glassbox_search_stage_duration_seconds",
            "per-search time of each pipeline stage (encode, retrieve, each stage, total)",
            ["stage"],
            buckets=STAGE_BUCKETS,
            registry=self.registry,
        )
        self._filter_candidates = Counter(
            "glassbox_filter_candidates",
            "candidates the relevance filter saw",
            ["calibrated"],
            registry=self.registry,
        )
        self._filter_kept = Counter(
            "glassbox_filter_kept", "candidates the relevance filter kept", ["calibrated"], registry=self.registry
        )
        self._batch_texts = Histogram(
            "glassbox_encode_batch_size",
            "query texts per micro-batched encode",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self._batch_calls = Histogram(
            "glassbox_encode_batch_calls",
            "encode calls (searches) merged into one micro-batched encode",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        ProcessCollector(registry=self.registry)
        self.registry.register(CacheCollector(cache))

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one HTTP request; `route` is the route's template (or UNMATCHED_ROUTE)."""
        method = method if method in METHODS else "OTHER"  # clients choose methods: keep the label set bounded
        self._requests.labels(method, route, str(status)).inc()
        self._request_seconds.labels(method, route).observe(seconds)

    def observe_search(self, outcome: SearchOutcome) -> None:
        """Record one search's stage timings and, when the relevance filter ran, how many candidates it kept."""
        for stage, milliseconds in outcome.timings_ms.items():
            self._stage_seconds.labels(stage).observe(milliseconds / 1000.0)
        summary: Any = outcome.query.get(FILTER_STAGE)
        if isinstance(summary, Mapping):
            seen = int(outcome.query.get("candidates", 0))
            calibrated = bool(summary.get("calibrated", False))
            kept = int(summary.get("kept", seen))  # uncalibrated, the filter keeps every candidate
            label = "true" if calibrated else "false"
            self._filter_candidates.labels(label).inc(seen)
            self._filter_kept.labels(label).inc(kept)

    def observe_encode_batch(self, calls: int, texts: int) -> None:
        """Record one micro-batched encode (the `on_batch` hook of `MicroBatchingEncoder`)."""
        self._batch_calls.observe(calls)
        self._batch_texts.observe(texts)

    def render(self) -> bytes:
        """All metrics in the Prometheus text exposition format (content type `CONTENT_TYPE`)."""
        return generate_latest(self.registry)
