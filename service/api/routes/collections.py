"""Collections: create, list, describe, delete."""

from __future__ import annotations

from fastapi import APIRouter, status
from fastapi.concurrency import run_in_threadpool

from indexes import Collection
from service.api.deps import RegistryDep
from service.api.schemas import CollectionCreate, CollectionDeleted, CollectionInfo, CollectionList

router = APIRouter(prefix="/v1/collections", tags=["collections"])


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
async def create_collection(body: CollectionCreate, registry: RegistryDep) -> CollectionInfo:
    collection = await run_in_threadpool(registry.create, body.name, body.index)
    return collection_info(collection)


@router.get("")
def list_collections(registry: RegistryDep) -> CollectionList:
    return CollectionList(collections=[collection_info(registry.get(name)) for name in registry.names()])


@router.get("/{collection}")
def get_collection(collection: str, registry: RegistryDep) -> CollectionInfo:
    return collection_info(registry.get(collection))


@router.delete("/{collection}")
def delete_collection(collection: str, registry: RegistryDep) -> CollectionDeleted:
    registry.delete(collection)
    return CollectionDeleted(deleted=collection)
