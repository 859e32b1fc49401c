"""Pure helpers."""

import hashlib
import uuid
from collections.abc import Iterator

from kinto.core.storage import Filter, Sort, StorageBase
from kinto.core.utils import COMPARISON


def entry_id(host: str, bucket_id: str, collection_id: str) -> str:
    """The id of a collection's entry: the same ids the original plugin served."""
    uri = f"/buckets/{bucket_id}/collections/{collection_id}"
    digest = hashlib.md5(f"{host}{uri}".encode()).hexdigest()
    return str(uuid.UUID(digest))


def iter_objects(
    storage: StorageBase,
    resource_name: str,
    parent_id: str,
    filters: list[Filter] | None = None,
    include_deleted: bool = False,
) -> Iterator[dict]:
    """Every object of one parent, newest first, however many there are.

    ``list_all`` stops at ``storage_max_fetch_size`` objects; ask page after
    page. Within one parent, ``last_modified`` is unique, so it is an exact
    keyset.
    """
    before = []
    while True:
        page = storage.list_all(
            resource_name=resource_name,
            parent_id=parent_id,
            filters=[*(filters or []), *before],
            sorting=[Sort("last_modified", -1)],
            include_deleted=include_deleted,
        )
        yield from page
        if not page:
            return
        before = [Filter("last_modified", page[-1]["last_modified"], COMPARISON.LT)]
