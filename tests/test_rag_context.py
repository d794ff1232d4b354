"""RAG context trimming with the serving encoder's real tokenizer: the budget holds, only kept passages go in."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.encoder import resolve_model_path
from service.pipeline import ResultItem
from service.rag_context import HuggingFaceTokenCounter, build_context, rationale
from service.settings import DEFAULT_MODEL

COUNTER = HuggingFaceTokenCounter(Path(resolve_model_path(DEFAULT_MODEL)) / "tokenizer.json", DEFAULT_MODEL)
WORDS = ["statins", "lower", "cholesterol", "and", "reduce", "heart", "attacks", "in", "adults", "trial", "."]


def item(doc_id: str, text: str, kept: bool = True, relevance: float | None = 0.9) -> ResultItem:
    explanation = {"cosine": {"relevance": relevance, "threshold": 0.5}} if relevance is not None else {}
    return ResultItem(doc_id, f"Title {doc_id}", text, {}, 1.0, relevance, kept, {}, explanation)


def test_counter_counts_and_cuts_at_token_boundaries() -> None:
    text = "Atorvastatin lowers LDL cholesterol."
    assert COUNTER.count(text) > len(text.split())  # word pieces, not words
    cut = COUNTER.truncate(text, 3)
    assert text.startswith(cut) and COUNTER.count(cut) == 3
    assert COUNTER.truncate(text, 1000) == text and COUNTER.truncate(text, 0) == ""


def test_only_kept_passages_and_the_budget_holds() -> None:
    results = [item("a", "statins lower cholesterol " * 5), item("b", "dropped", kept=False), item("c", "short")]
    built = build_context(results, 1000, COUNTER)
    assert [p.id for p in built.passages] == ["a", "c"]
    assert built.tokens == sum(p.tokens for p in built.passages) <= 1000
    assert built.passages[0].rationale.startswith("rank 1; relevance 0.90 >= threshold 0.50")


def test_the_first_passage_that_does_not_fit_is_cut_and_later_ones_left_out() -> None:
    long_text = " ".join(WORDS * 20)
    results = [item("a", long_text), item("b", long_text), item("c", long_text)]
    budget = COUNTER.count("Title a") + COUNTER.count(long_text) + 40
    built = build_context(results, budget, COUNTER)
    assert [p.id for p in built.passages] == ["a", "b"]
    assert built.passages[1].truncated and long_text.startswith(built.passages[1].text)
    assert built.left_out == ["c"] and built.tokens <= budget


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.lists(st.sampled_from(WORDS), min_size=1, max_size=60), min_size=1, max_size=6),
    st.integers(1, 300),
)
def test_budget_is_never_exceeded(texts: list[list[str]], budget: int) -> None:
    results = [item(str(i), " ".join(words)) for i, words in enumerate(texts)]
    built = build_context(results, budget, COUNTER)
    assert built.tokens <= budget
    assert {p.id for p in built.passages}.isdisjoint(built.left_out)
    assert len(built.passages) + len(built.left_out) == len(results)


def test_rationale_without_calibration_says_so() -> None:
    line = rationale(item("x", "t", relevance=None), 2)
    assert line == "rank 2; score 1.000 (relevance uncalibrated)"


def test_missing_tokenizer_is_a_clear_error(tmp_path: Path) -> None:
    from service.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match=r"no tokenizer\.json"):
        HuggingFaceTokenCounter(tmp_path / "tokenizer.json", "x")
