"""Named pipeline configurations (variants) the harness can run; a registry, not an if/elif chain."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from evaluation.errors import VariantError
from service.stages import Stage

BASELINE = "dense"
StageBuilder = Callable[[Path | None], tuple[Stage, ...]]


def _dense(_: Path | None) -> tuple[Stage, ...]:
    return ()


BUILDERS: dict[str, StageBuilder] = {BASELINE: _dense}
# Variants of the design (§3) whose stages are not built yet, with what each needs.
PLANNED: dict[str, str] = {
    "bm25": "the lexical (BM25) first stage",
    "hybrid": "the fused BM25 + dense first stage",
    "cosine": "the Cosine Adapter relevance filter",
    "imrnn": "the IMRNN re-scoring stage",
    "kg": "the knowledge-graph path stage",
    "full": "all post-retrieval stages (Cosine Adapter, IMRNN, KG paths)",
}


@dataclass(frozen=True)
class Variant:
    name: str
    stages: tuple[Stage, ...]


def build_variants(names: Sequence[str], adapters: Path | None = None) -> list[Variant]:
    """Variants in the order given, with the `dense` baseline first (added when not named).

    Raises:
        VariantError: a name that is not a variant, or one whose stage does not exist yet.
    """
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
    ordered = [BASELINE, *[name for name in wanted if name != BASELINE]]
    return [Variant(name, BUILDERS[name](adapters)) for name in ordered]
