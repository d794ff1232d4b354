"""What the client returns: frozen dataclasses read from the API's JSON, and the one error type."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class GlassboxAPIError(Exception):
    """An error response: HTTP status, the API's stable `code`, its message and details, and the request id."""

    def __init__(
        self, status: int, code: str, message: str, details: dict[str, Any], request_id: str | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.request_id = request_id


@dataclass(frozen=True)
class SearchResult:
    id: str
    title: str
    text: str
    score: float
    relevance: float | None
    kept: bool
    metadata: dict[str, Any] = field(default_factory=dict)
    breakdown: dict[str, Any] = field(default_factory=dict)
    explanation: dict[str, Any] | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SearchResult:
        return cls(
            id=data["id"],
            title=data["title"],
            text=data["text"],
            score=data["score"],
            relevance=data.get("relevance"),
            kept=data["kept"],
            metadata=data.get("metadata", {}),
            breakdown=data.get("breakdown", {}),
            explanation=data.get("explanation"),
        )


@dataclass(frozen=True)
class Exposure:
    """The experiment a response was served under: send `impression_id` back with feedback."""

    experiment: str
    mode: str
    variant: str
    impression_id: str
    teams: list[str] | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Exposure | None:
        if data is None:
            return None
        return cls(data["experiment"], data["mode"], data["variant"], data["impression_id"], data.get("teams"))


@dataclass(frozen=True)
class SearchResponse:
    results: list[SearchResult]
    query: dict[str, Any]
    timings_ms: dict[str, float]
    variant: str
    experiment: Exposure | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SearchResponse:
        return cls(
            results=[SearchResult.from_json(r) for r in data["results"]],
            query=data["query"],
            timings_ms=data["timings_ms"],
            variant=data["variant"],
            experiment=Exposure.from_json(data.get("experiment")),
        )


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

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ContextPassage:
        return cls(**{name: data[name] for name in cls.__dataclass_fields__})


@dataclass(frozen=True)
class ContextResponse:
    passages: list[ContextPassage]
    tokens: int
    token_budget: int
    tokenizer: str
    left_out: list[str]
    variant: str

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ContextResponse:
        return cls(
            passages=[ContextPassage.from_json(p) for p in data["passages"]],
            tokens=data["tokens"],
            token_budget=data["token_budget"],
            tokenizer=data["tokenizer"],
            left_out=data["left_out"],
            variant=data["variant"],
        )

    def prompt_block(self) -> str:
        """The passages as one numbered block for a prompt, each with its rationale.

        >>> passage = ContextPassage("d", "Statins", "Lower LDL.", 0.9, 1.0, "rank 1", 5, False)
        >>> print(ContextResponse([passage], 5, 10, "t", [], "v").prompt_block())
        [1] Statins
        Lower LDL.
        (why: rank 1)
        """
        blocks = []
        for number, passage in enumerate(self.passages, start=1):
            heading = f"[{number}] {passage.title}".rstrip()
            blocks.append(f"{heading}\n{passage.text}\n(why: {passage.rationale})")
        return "\n\n".join(blocks)
