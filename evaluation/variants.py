"""Named pipeline configurations (variants) the harness can run; a registry, not an if/elif chain."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from adapters import Adapter
from evaluation.errors import VariantError
from evaluation.filter_report import RelevanceFilter
from service.encoder import EncoderIdentity
from service.filter_stage import CosineFilterStage
from service.settings import Settings
from service.stages import Stage

BASELINE = "dense"


@dataclass(frozen=True)
class Variant:
    """A variant: its stages in order, and the relevance filter among them when there is one."""

    name: str
    stages: tuple[Stage, ...]
    relevance_filter: RelevanceFilter | None = None


@dataclass(frozen=True)
class VariantContext:
    adapters: Path
    encoder: EncoderIdentity
    settings: Settings


def _dense(_: VariantContext) -> Variant:
    return Variant(BASELINE, ())


def _cosine(context: VariantContext) -> Variant:
    directory = context.adapters / "cosine"
    stage = CosineFilterStage.from_directory(
        directory, context.encoder, min_results=context.settings.filter.min_results
    )
    if stage.adapter is None:
        raise VariantError(
            f"variant 'cosine' needs a trained Cosine Adapter in {directory} "
            "(glassbox train cosine --dataset DIR --out DIR, then --adapters DIR's parent)",
            {"variant": "cosine", "adapters": str(directory)},
        )
    report = Adapter.read_report(directory) or {}
    target_recall = report.get("config", {}).get("target_recall")
    return Variant("cosine", (stage,), RelevanceFilter(stage.adapter, stage.min_results, target_recall))


BUILDERS: dict[str, Callable[[VariantContext], Variant]] = {BASELINE: _dense, "cosine": _cosine}
# Variants of the design (§3) whose stages are not built yet, with what each needs.
PLANNED: dict[str, str] = {
    "bm25": "the lexical (BM25) first stage",
    "hybrid": "the fused BM25 + dense first stage",
    "imrnn": "the IMRNN re-scoring stage",
    "kg": "the knowledge-graph path stage",
    "full": "all post-retrieval stages (Cosine Adapter, IMRNN, KG paths)",
}


def check_variant_names(names: Sequence[str]) -> list[str]:
    """The distinct names, `dense` first; raises `VariantError` for unknown or not-yet-available ones."""
    wanted = list(dict.fromkeys(name.strip() for name in names if name.strip()))
    for name in wanted:
        if name in PLANNED:
            raise VariantError(
                f"variant {name!r} is not available yet: it needs {PLANNED[name]}",
                {"variant": name, "available": sorted(BUILDERS)},
            )
        if name not in BUILDERS:
            raise VariantError(
                f"unknown variant {name!r}; available: {', '.join(sorted(BUILDERS))}",
                {"variant": name, "available": sorted(BUILDERS)},
            )
    return [BASELINE, *[name for name in wanted if name != BASELINE]]


def build_variants(
    names: Sequence[str], adapters: Path | None, encoder: EncoderIdentity, settings: Settings
) -> list[Variant]:
    """Variants in the order given, with the `dense` baseline first (added when not named).

    Args:
        adapters: the folder holding trained adapters (`cosine/`, ...); default GLASSBOX_HOME/adapters.

    Raises:
        VariantError: an unknown name, one whose stage does not exist yet, or a missing adapter.
    """
    context = VariantContext(adapters or settings.adapters_dir, encoder, settings)
    return [BUILDERS[name](context) for name in check_variant_names(names)]
