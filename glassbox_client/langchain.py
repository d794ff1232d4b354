"""A LangChain retriever over Glassbox (optional extra: `pip install glassbox[langchain]`).

Each `Document` is a passage the relevance filter kept; its metadata carries the id, score, calibrated relevance and
the per-stage explanation, so a chain can show why a passage was used.
"""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field

from glassbox_client._client import AsyncGlassboxClient, GlassboxClient
from glassbox_client._models import SearchResponse


def _documents(response: SearchResponse) -> list[Document]:
    return [
        Document(
            page_content=f"{result.title}\n{result.text}".strip(),
            id=result.id,
            metadata={
                "id": result.id,
                "title": result.title,
                "score": result.score,
                "relevance": result.relevance,
                "explanation": result.explanation,
                "variant": response.variant,
                **result.metadata,
            },
        )
        for result in response.results
        if result.kept
    ]


class GlassboxRetriever(BaseRetriever):
    """Retrieves kept passages from one collection. Give `client`, `async_client` or both."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    collection: str
    client: GlassboxClient | None = None
    async_client: AsyncGlassboxClient | None = None
    top_k: int = 5
    search_kwargs: dict[str, Any] = Field(default_factory=dict)

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        if self.client is None:
            raise ValueError("GlassboxRetriever needs `client` for synchronous use")
        return _documents(self.client.search(self.collection, query, top_k=self.top_k, **self.search_kwargs))

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun
    ) -> list[Document]:
        if self.async_client is None:
            raise ValueError("GlassboxRetriever needs `async_client` for asynchronous use")
        response = await self.async_client.search(self.collection, query, top_k=self.top_k, **self.search_kwargs)
        return _documents(response)
