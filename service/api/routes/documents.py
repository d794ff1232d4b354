"""Documents: batch upsert, get, delete (one or many)."""

from __future__ import annotations

from fastapi import APIRouter

from indexes import Document
from service.api.auth import AUTH_RESPONSES, ReadAccess, WriteAccess
from service.api.deps import CacheDep, PipelineDep, RegistryDep, SettingsDep
from service.api.schemas import DeleteRequest, DeleteResponse, DocumentOut, UpsertRequest, UpsertResponse
from service.api.validation import check_documents
from service.encoder import document_text
from service.errors import DocumentNotFoundError

router = APIRouter(prefix="/v1/collections/{collection}/documents", tags=["documents"], responses=AUTH_RESPONSES)


@router.post("", dependencies=[WriteAccess])
def upsert_documents(
    collection: str,
    body: UpsertRequest,
    registry: RegistryDep,
    pipeline: PipelineDep,
    settings: SettingsDep,
    cache: CacheDep,
) -> UpsertResponse:
    """Insert or replace documents. The batch is all-or-nothing and durable once this returns."""
    target = registry.get(collection)
    check_documents(body.documents, settings.documents)
    documents = [Document(d.id, d.title, d.text, d.metadata) for d in body.documents]
    vectors = pipeline.encoder.encode([document_text(d.title, d.text) for d in documents])
    try:
        target.upsert(documents, vectors)
    finally:  # before the acknowledgement: no cached response from before this write is served after it
        cache.invalidate(collection)
    return UpsertResponse(collection=collection, upserted=len(documents), ids=[d.id for d in documents])


@router.get("/{doc_id}", dependencies=[ReadAccess])
def get_document(collection: str, doc_id: str, registry: RegistryDep) -> DocumentOut:
    found = registry.get(collection).get([doc_id]).get(doc_id)
    if found is None:
        raise DocumentNotFoundError(collection, doc_id)
    return DocumentOut(id=found.id, title=found.title, text=found.text, metadata=dict(found.metadata))


@router.delete("/{doc_id}", dependencies=[WriteAccess])
def delete_document(collection: str, doc_id: str, registry: RegistryDep, cache: CacheDep) -> DeleteResponse:
    target = registry.get(collection)
    try:
        deleted = target.delete([doc_id])
    finally:
        cache.invalidate(collection)
    if not deleted:
        raise DocumentNotFoundError(collection, doc_id)
    return DeleteResponse(collection=collection, deleted=deleted, missing=[])


@router.post("/delete", dependencies=[WriteAccess])
def delete_documents(collection: str, body: DeleteRequest, registry: RegistryDep, cache: CacheDep) -> DeleteResponse:
    """Delete many documents; ids that do not exist are listed under `missing`."""
    target = registry.get(collection)
    try:
        deleted = target.delete(body.ids)
    finally:
        cache.invalidate(collection)
    gone = set(deleted)
    return DeleteResponse(
        collection=collection, deleted=deleted, missing=[i for i in dict.fromkeys(body.ids) if i not in gone]
    )
