"""Prompt-ready context for RAG backends: the kept passages of a search, best first, trimmed to a token budget, each
with its calibrated relevance and a one-line rationale."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from service.encoder import resolve_model_path
from service.errors import ConfigurationError
from service.pipeline import ResultItem


class TokenCounter(Protocol):
    """Counts tokens the way a prompt budget is measured, and cuts a text to a number of tokens."""

    name: str

    def count(self, text: str) -> int: ...

    def truncate(self, text: str, tokens: int) -> str: ...


class HuggingFaceTokenCounter:
    """Tokens of a Hugging Face `tokenizer.json` (by default the serving encoder's), special tokens not counted."""

    def __init__(self, tokenizer_file: Path, name: str) -> None:
        from tokenizers import Tokenizer

        if not tokenizer_file.is_file():
            raise ConfigurationError(f"no tokenizer.json at {tokenizer_file} to count context tokens with")
        self._tokenizer = Tokenizer.from_file(str(tokenizer_file))
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()  # sentence-transformers tokenizers pad to a fixed length
        self.name = name

    def count(self, text: str) -> int:
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)

    def truncate(self, text: str, tokens: int) -> str:
        """The longest prefix of `text` (cut at a token boundary) that is `tokens` tokens long."""
        if tokens <= 0:
            return ""
        offsets = self._tokenizer.encode(text, add_special_tokens=False).offsets
        if len(offsets) <= tokens:
            return text
        return text[: offsets[tokens - 1][1]]


def encoder_token_counter(model: str) -> HuggingFaceTokenCounter:
    """The tokenizer of the serving encoder `model` (a name or directory), as the context budget's measure."""
    return HuggingFaceTokenCounter(Path(resolve_model_path(model)) / "tokenizer.json", model)


@dataclass(frozen=True)
class ContextPassage:
    id: str
    title: str
    text: str
    relevance: float | None
    score: float
    rationale: str
    tokens: int
    truncated: bool


@dataclass(frozen=True)
class Context:
    passages: list[ContextPassage]
    tokens: int
    budget: int
    left_out: list[str]  # kept results that did not fit


def rationale(item: ResultItem, rank: int) -> str:
    """One line on why a result is here, from the stages' summaries (relevance vs τ, KG path, IMRNN words).

    >>> from service.pipeline import ResultItem
    >>> item = ResultItem("d1", "T", "x", {}, 0.7, 0.91, True, {}, {"cosine": {"relevance": 0.91, "threshold": 0.4}})
    >>> rationale(item, 1)
    'rank 1; relevance 0.91 >= threshold 0.40'
    """
    explanation: Mapping[str, Any] = item.explanation or {}
    parts = [f"rank {rank}"]
    cosine = explanation.get("cosine", {})
    if "relevance" in cosine:
        parts.append(f"relevance {cosine['relevance']:.2f} >= threshold {cosine['threshold']:.2f}")
    elif item.relevance is None:
        parts.append(f"score {item.score:.3f} (relevance uncalibrated)")
    rationales = explanation.get("kg", {}).get("rationales", [])
    if rationales:
        parts.append(f"KG: {rationales[0]}")
    toward = explanation.get("imrnn", {}).get("moved_toward", [])
    if toward:
        parts.append("IMRNN toward: " + ", ".join(toward[:3]))
    return "; ".join(parts)


def build_context(
    results: Sequence[ResultItem], budget: int, counter: TokenCounter, *, min_passage_tokens: int = 16
) -> Context:
    """Kept results, best first, whole while they fit; the first that does not fit is cut to the tokens left when at
    least `min_passage_tokens` remain, and the rest are listed in `left_out`. Title and text both count."""
    passages: list[ContextPassage] = []
    left_out: list[str] = []
    used = 0
    for rank, item in enumerate((r for r in results if r.kept), start=1):
        remaining = budget - used
        title_tokens = counter.count(item.title)
        text_tokens = counter.count(item.text)
        if title_tokens + text_tokens <= remaining:
            text, tokens, truncated = item.text, title_tokens + text_tokens, False
        elif not left_out and remaining - title_tokens >= min_passage_tokens:
            text = counter.truncate(item.text, remaining - title_tokens)
            tokens, truncated = title_tokens + counter.count(text), True
        else:
            left_out.append(item.doc_id)
            continue
        if tokens > remaining:  # a cut that re-tokenises longer than planned: leave it out rather than overrun
            left_out.append(item.doc_id)
            continue
        used += tokens
        passages.append(
            ContextPassage(item.doc_id, item.title, text, item.relevance, item.score, rationale(item, rank), tokens,
                           truncated)
        )  # fmt: skip
    return Context(passages, used, budget, left_out)
