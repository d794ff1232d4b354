"""Request/response models of experiments, feedback and RAG context (the HTTP edge only)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ExperimentExposure(BaseModel):
    """The experiment a search was served under; send `impression_id` back with feedback."""

    experiment: str
    mode: Literal["ab", "interleave"]
    variant: str = Field(description="the variant served (A/B), or 'interleave'")
    impression_id: str
    teams: list[str] | None = Field(None, description="interleaving: the variant that contributed each result")


class FeedbackRequest(_Request):
    impression_id: str = Field(min_length=1, max_length=200, description="from a search response's `experiment`")
    doc_id: str = Field(min_length=1, max_length=256, description="the result the feedback is about")
    type: Literal["click", "rating"] = "click"
    value: float | None = Field(None, description="a rating's value (required for type 'rating')")


class FeedbackRecorded(BaseModel):
    experiment: str
    impression_id: str


class ExperimentList(BaseModel):
    experiments: list[dict[str, Any]]


class ContextRequest(_Request):
    query: str = Field(description="query text (non-empty, at most GLASSBOX_SEARCH__MAX_QUERY_CHARS)")
    token_budget: int = Field(512, ge=1, le=32_768, description="most tokens of passages (titles + texts)")
    top_k: int = Field(10, ge=1, description="results searched before trimming (at most GLASSBOX_SEARCH__MAX_TOP_K)")
    filter: dict[str, JsonValue] = Field(default_factory=dict, description="metadata equality filter")


class ContextPassageOut(BaseModel):
    id: str
    title: str
    text: str = Field(description="the passage, cut at a token boundary when `truncated`")
    relevance: float | None = Field(description="calibrated relevance; null when the filter is uncalibrated")
    score: float
    rationale: str = Field(description="one line: rank, relevance against τ, the best KG path, IMRNN words")
    tokens: int
    truncated: bool


class ContextResponse(BaseModel):
    passages: list[ContextPassageOut] = Field(description="kept passages, best first, within the budget")
    tokens: int = Field(description="tokens used, <= token_budget")
    token_budget: int
    tokenizer: str = Field(description="whose tokenizer counted the tokens")
    left_out: list[str] = Field(description="ids of kept results that did not fit the budget")
    variant: str
