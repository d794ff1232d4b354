"""Named pipeline configurations (variants) the harness can run; a registry, not an if/elif chain."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from adapters import Adapter
from evaluation.errors import VariantError
from evaluation.filter_report import RelevanceFilter
from service.encoder import Encoder, EncoderIdentity
from service.filter_stage import CosineFilterStage
from service.first_stage import (
    DenseRetriever,
    FirstStageRetriever,
    LexicalRetriever,
    build_retriever,
    trained_first_stage,
)
from service.imrnn_stage import ImrnnStage
from service.kg_stage import KgPathStage
from service.settings import Settings
from service.stage_factory import load_imrnn_stage
from service.stages import Stage

BASELINE = "dense"


@dataclass(frozen=True)
class Variant:
    """A variant: its first stage, its stages in order, and the relevance filter among them when there is one."""

    name: str
    stages: tuple[Stage, ...]
    relevance_filter: RelevanceFilter | None = None
    retriever: FirstStageRetriever = field(default_factory=DenseRetriever)


@dataclass(frozen=True)
class VariantContext:
    adapters: Path
    encoder: EncoderIdentity
    settings: Settings
    model: Encoder | None = None  # the encoder itself, for stages that encode (the KG stage's query phrases)


def _dense(_: VariantContext) -> Variant:
    return Variant(BASELINE, ())


def _bm25(_: VariantContext) -> Variant:
    return Variant("bm25", (), retriever=LexicalRetriever())


def hybrid_retriever(context: VariantContext) -> FirstStageRetriever:
    """The hybrid first stage of the settings, with the dense weight tuned into `adapters/fusion` when unset."""
    return retriever_for("hybrid", context)


def _hybrid(context: VariantContext) -> Variant:
    return Variant("hybrid", (), retriever=hybrid_retriever(context))


def _cosine(context: VariantContext) -> Variant:
    directory = context.adapters / "cosine"
    stage = CosineFilterStage.from_directory(
        directory,
        context.encoder,
        min_results=context.settings.filter.min_results,
        filtering=context.settings.filter.enabled,  # off: calibrated relevance on every result, nothing dropped
    )
    if stage.adapter is None:
        raise VariantError(
            f"variant 'cosine' needs a trained Cosine Adapter in {directory} "
            "(glassbox train cosine --dataset DIR --out DIR, then --adapters DIR's parent)",
            {"variant": "cosine", "adapters": str(directory)},
        )
    report = Adapter.read_report(directory) or {}
    target_recall = report.get("config", {}).get("target_recall")
    retriever = retriever_for(stage.adapter.first_stage, context)
    relevance_filter = RelevanceFilter(stage.adapter, stage.min_results, target_recall)
    return Variant("cosine", (stage,), relevance_filter, retriever)


def retriever_for(mode: str, context: VariantContext) -> FirstStageRetriever:
    """The first stage of `mode`, as serving builds it (hybrid with the weight tuned beside the adapters)."""
    return build_retriever(context.settings, mode, context.adapters)


def _imrnn(context: VariantContext) -> Variant:
    directory = context.adapters / "imrnn"
    if context.model is not None:  # words from the encoder's cached word table, as in serving
        stage = load_imrnn_stage(directory, context.settings, context.model)
    else:
        stage = ImrnnStage.from_directory(directory, context.encoder, explained_results=0)
    if stage.adapter is None:
        raise VariantError(
            f"variant 'imrnn' needs a trained IMRNN adapter in {directory} "
            "(glassbox train imrnn --dataset DIR --out DIR, then --adapters DIR's parent)",
            {"variant": "imrnn", "adapters": str(directory)},
        )
    mode = trained_first_stage(Adapter.read_report(directory))
    return Variant("imrnn", (stage,), retriever=retriever_for(mode, context))


def _full(context: VariantContext) -> Variant:
    """Every post-retrieval stage in the design's order (Cosine Adapter, IMRNN, KG paths) on the configured first
    stage; each adapter must have been trained behind that first stage."""
    mode = context.settings.first_stage.mode
    cosine, imrnn = _cosine(context), _imrnn(context)
    for variant, directory in ((cosine, context.adapters / "cosine"), (imrnn, context.adapters / "imrnn")):
        if variant.retriever.mode != mode:
            raise VariantError(
                f"variant 'full' runs on the {mode!r} first stage, but the adapter in {directory} was trained "
                f"behind {variant.retriever.mode!r}; retrain it with GLASSBOX_FIRST_STAGE__MODE={mode}",
                {"variant": "full", "adapters": str(directory), "first_stage": mode},
            )
    stages = (*cosine.stages, *imrnn.stages, *_kg(context).stages)
    return Variant("full", stages, cosine.relevance_filter, retriever_for(mode, context))


def _kg(context: VariantContext) -> Variant:
    """KG path rationales over the configured (hybrid) first stage; scores unchanged, so ranking = hybrid's."""
    stage = KgPathStage.from_settings(context.settings, context.model)
    return Variant("kg", (stage,), retriever=hybrid_retriever(context))


BUILDERS: dict[str, Callable[[VariantContext], Variant]] = {
    BASELINE: _dense,
    "bm25": _bm25,
    "hybrid": _hybrid,
    "cosine": _cosine,
    "imrnn": _imrnn,
    "kg": _kg,
    "full": _full,
}


def check_variant_names(names: Sequence[str]) -> list[str]:
    """The distinct names, `dense` first; raises `VariantError` for unknown ones."""
    wanted = list(dict.fromkeys(name.strip() for name in names if name.strip()))
    for name in wanted:
        if name not in BUILDERS:
            raise VariantError(
                f"unknown variant {name!r}; available: {', '.join(sorted(BUILDERS))}",
                {"variant": name, "available": sorted(BUILDERS)},
            )
    return [BASELINE, *[name for name in wanted if name != BASELINE]]


def build_variants(
    names: Sequence[str],
    adapters: Path | None,
    encoder: EncoderIdentity,
    settings: Settings,
    model: Encoder | None = None,
) -> list[Variant]:
    """Variants in the order given, with the `dense` baseline first (added when not named).

    Args:
        adapters: the folder holding trained adapters (`cosine/`, ...); default GLASSBOX_HOME/adapters.
        model: the encoder, for stages that encode text (`kg`'s embedding path); None leaves that path off.

    Raises:
        VariantError: an unknown name, one whose stage does not exist yet, or a missing adapter.
    """
    context = VariantContext(adapters or settings.adapters_dir, encoder, settings, model)
    return [BUILDERS[name](context) for name in check_variant_names(names)]
