"""Collections: create, list, describe, delete."""

from __future__ import annotations

from fastapi import APIRouter, status
from fastapi.concurrency import run_in_threadpool

from indexes import Collection
from service.api.auth import AUTH_RESPONSES, Authenticated, PrincipalDep, ReadAccess, WriteAccess, authorize
from service.api.deps import CacheDep, RegistryDep
from service.api.schemas import CollectionCreate, CollectionDeleted, CollectionInfo, CollectionList

router = APIRouter(
    prefix="/v1/collections", tags=["collections"], dependencies=[Authenticated], responses=AUTH_RESPONSES
)


def collection_info(collection: Collection) -> CollectionInfo:
    config = collection.config
    return CollectionInfo(
        name=config.name,
        documents=len(collection),
        dimension=config.dimension,
        encoder=config.encoder,
        encoder_revision=config.encoder_revision,
        index=config.factory,
        created_at=config.created_at,
    )


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_collection(
    body: CollectionCreate, registry: RegistryDep, principal: PrincipalDep, cache: CacheDep
) -> CollectionInfo:
    authorize(principal, "write", body.name)
    collection = await run_in_threadpool(registry.create, body.name, body.index)
    await run_in_threadpool(cache.invalidate, collection.name)
    return collection_info(collection)


@router.get("")
def list_collections(registry: RegistryDep, principal: PrincipalDep) -> CollectionList:
    """The collections this caller may read."""
    readable = [name for name in registry.names() if principal.can("read", name)]
    return CollectionList(collections=[collection_info(registry.get(name)) for name in readable])


@router.get("/{collection}", dependencies=[ReadAccess])
def get_collection(collection: str, registry: RegistryDep) -> CollectionInfo:
    return collection_info(registry.get(collection))


@router.delete("/{collection}", dependencies=[WriteAccess])
def delete_collection(collection: str, registry: RegistryDep, cache: CacheDep) -> CollectionDeleted:
    try:
        registry.delete(collection)
    finally:
        cache.invalidate(collection)
    return CollectionDeleted(deleted=collection)
