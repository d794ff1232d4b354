"""Evaluation outputs beside the JSON: a Markdown table and PNG plots (metric bars with CIs, per-query deltas)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from evaluation.harness import EvaluationResult
from evaluation.metrics import METRICS, PRIMARY_METRIC
from evaluation.variants import BASELINE

BOOTSTRAP_SAMPLES = 1000


def bootstrap_interval(values: list[float], seed: int, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean (seeded, so reruns draw the same resamples).

    >>> bootstrap_interval([1.0, 1.0, 1.0], seed=0)
    (1.0, 1.0)
    """
    data = np.asarray(values, dtype=np.float64)
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, len(data), size=(BOOTSTRAP_SAMPLES, len(data)))].mean(axis=1)
    tail = (1.0 - level) / 2.0 * 100.0
    return float(np.percentile(means, tail)), float(np.percentile(means, 100.0 - tail))


def markdown_table(report: dict[str, Any]) -> str:
    """The report as Markdown: one row per variant, metrics, latency, and the paired test against dense."""
    header = ["variant", *METRICS, "p50 ms", "p95 ms", f"p ({PRIMARY_METRIC} vs {BASELINE})", "W/T/L"]
    lines = [
        f"**{report['dataset']}** / {report['split']} "
        f"({report['queries']} queries, split from {report['split_source']})",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for name, values in report["variants"].items():
        comparison = report["comparisons"].get(name, {}).get(PRIMARY_METRIC)
        test = f"{comparison['p_value']:.4f}" if comparison else "—"
        wtl = f"{comparison['wins']}/{comparison['ties']}/{comparison['losses']}" if comparison else "—"
        cells = [f"{values[m]:.4f}" for m in METRICS]
        latency = [f"{values['latency_ms']['p50']:.1f}", f"{values['latency_ms']['p95']:.1f}"]
        lines.append("| " + " | ".join([name, *cells, *latency, test, wtl]) + " |")
    return "\n".join(lines) + "\n"


def write_outputs(result: EvaluationResult, out: Path, seed: int = 42) -> list[Path]:
    """Write FILE.json, FILE.md, FILE-metrics.png and FILE-deltas.png; returns the paths written."""
    out.parent.mkdir(parents=True, exist_ok=True)
    written = [out, out.with_suffix(".md")]
    out.write_text(json.dumps(result.report, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown_table(result.report))
    written += _plots(result, out, seed)
    return written


def _plots(result: EvaluationResult, out: Path, seed: int) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(result.per_query)
    metrics_path = out.with_name(f"{out.stem}-metrics.png")
    figure, axis = plt.subplots(figsize=(2 + 1.6 * len(METRICS), 4))
    width = 0.8 / len(names)
    for offset, name in enumerate(names):
        means: list[float] = []
        errors: list[list[float]] = [[], []]
        for metric in METRICS:
            values = list(result.per_query[name][metric].values())
            low, high = bootstrap_interval(values, seed)
            mean = float(np.mean(values))
            means.append(mean)
            errors[0].append(mean - low)
            errors[1].append(high - mean)
        positions = np.arange(len(METRICS)) + offset * width
        axis.bar(positions, means, width, yerr=errors, capsize=3, label=name)
    axis.set_xticks(np.arange(len(METRICS)) + width * (len(names) - 1) / 2, METRICS)
    axis.set_ylabel("mean over queries (95 % bootstrap CI)")
    axis.set_title(f"{result.report['dataset']} / {result.report['split']}")
    axis.legend()
    figure.tight_layout()
    figure.savefig(metrics_path, dpi=120)
    plt.close(figure)

    deltas_path = out.with_name(f"{out.stem}-deltas.png")
    figure, axis = plt.subplots(figsize=(6, 4))
    baseline = result.per_query[BASELINE][PRIMARY_METRIC]
    others = [name for name in names if name != BASELINE]
    for name in others:
        deltas = [result.per_query[name][PRIMARY_METRIC][q] - baseline[q] for q in baseline]
        axis.hist(deltas, bins=41, range=(-1, 1), alpha=0.6, label=name)
    if others:
        axis.legend()
    else:
        axis.text(0.5, 0.5, f"only the {BASELINE} baseline was run", ha="center", transform=axis.transAxes)
    axis.set_xlabel(f"per-query {PRIMARY_METRIC} minus {BASELINE}")
    axis.set_ylabel("queries")
    figure.tight_layout()
    figure.savefig(deltas_path, dpi=120)
    plt.close(figure)
    return [metrics_path, deltas_path]
