"""The `kg` block of a variant with the KG path stage, measured on the top 10 results each query returns.

`coverage` counts a result with any rationale, a shared concept (a concept in both query and document, no edges)
included; `coverage_without_shared` counts only results with a path of at least one edge.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from service.kg_stage import KgPathStage, unfaithful
from service.pipeline import SearchOutcome

TOP = 10


@dataclass
class KgCollector:
    """Accumulates, per query, the KG stage's output on the returned top 10 and checks it for faithfulness."""

    stage: KgPathStage
    results: int = 0
    covered: int = 0
    covered_by_edges: int = 0
    paths: int = 0
    faithful: int = 0
    checked: int = 0
    linked_queries: int = 0
    queries: int = 0
    latencies: list[float] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def add(self, outcome: SearchOutcome) -> None:
        """Count one query's outcome (its first 10 results)."""
        info = outcome.query.get(KgPathStage.name, {})
        self.queries += 1
        self.linked_queries += bool(info.get("linked_concepts"))
        self.latencies.append(float(outcome.timings_ms.get(KgPathStage.name, 0.0)))
        for item in outcome.results[:TOP]:
            breakdown = item.breakdown.get(KgPathStage.name, {})
            found = breakdown.get("paths", [])
            self.results += 1
            self.covered += bool(found)
            self.covered_by_edges += any(path.get("edges") for path in found)
            self.paths += len(found)
            problems = unfaithful(self.stage.graph.graph, outcome.query["text"], item.title, item.text, info, breakdown)
            self.checked += 1
            self.faithful += not problems
            self.problems += problems[: max(0, 20 - len(self.problems))]

    def report(self) -> dict[str, Any]:
        """`{"coverage", "coverage_without_shared", "faithfulness", "mean_paths", "query_link_rate",
        "latency_ms": {"p50", "p95"}}` and counts."""
        latencies = self.latencies or [0.0]
        return {
            "coverage": round(self.covered / max(self.results, 1), 6),
            "coverage_without_shared": round(self.covered_by_edges / max(self.results, 1), 6),
            "faithfulness": round(self.faithful / max(self.checked, 1), 6),
            "mean_paths": round(self.paths / max(self.results, 1), 6),
            "query_link_rate": round(self.linked_queries / max(self.queries, 1), 6),
            "latency_ms": {
                "p50": round(float(np.percentile(latencies, 50)), 3),
                "p95": round(float(np.percentile(latencies, 95)), 3),
            },
            "results": self.results,
            "unfaithful_examples": self.problems[:5],
        }
