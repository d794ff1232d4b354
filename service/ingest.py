"""Bulk ingest: encode documents in length-sorted chunks and upsert them, skipping unchanged ones."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from tqdm import tqdm

from indexes import Collection, Document
from service.encoder import Encoder, document_text


@dataclass(frozen=True)
class IngestReport:
    """What an ingest did: documents read, written (encoded + upserted), skipped as unchanged, seconds taken."""

    read: int
    written: int
    skipped: int
    seconds: float

    @property
    def docs_per_second(self) -> float:
        return self.written / self.seconds if self.seconds > 0 else 0.0


def ingest_documents(
    collection: Collection,
    encoder: Encoder,
    documents: Iterable[Document],
    *,
    chunk_size: int = 512,
    skip_unchanged: bool = True,
    progress: bool = True,
) -> IngestReport:
    """Encode and upsert `documents` into `collection`; each chunk is durable once written.

    Documents are sorted by text length first, so each encoder batch pads to similar lengths (as
    `SentenceTransformer.encode` does inside one call). Later duplicates of an id win.
    """
    start = time.perf_counter()
    unique = {doc.id: doc for doc in documents}
    read = len(unique)
    pending = list(unique.values())
    skipped = 0
    if skip_unchanged and len(collection):
        stored = collection.content_hashes(list(unique))
        pending = [doc for doc in pending if stored.get(doc.id) != doc.content_hash]
        skipped = read - len(pending)
    pending.sort(key=lambda doc: len(doc.title) + len(doc.text), reverse=True)
    with tqdm(total=len(pending), unit="doc", desc=f"ingest {collection.name}", disable=not progress) as bar:
        for offset in range(0, len(pending), chunk_size):
            chunk = pending[offset : offset + chunk_size]
            vectors = encoder.encode([document_text(doc.title, doc.text) for doc in chunk])
            collection.upsert(chunk, vectors)
            bar.update(len(chunk))
    return IngestReport(read, len(pending), skipped, time.perf_counter() - start)
