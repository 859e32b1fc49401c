"""Pure helpers."""

import functools
import hashlib
import uuid
from collections.abc import Callable, Iterator

from kinto.core.storage import Filter, Sort, StorageBase
from kinto.core.utils import COMPARISON


NEWEST_FIRST = Sort("last_modified", -1)


def collection_uri(bucket_id: str, collection_id: str) -> str:
    return f"/buckets/{bucket_id}/collections/{collection_id}"


def entry_id(host: str, bucket_id: str, collection_id: str) -> str:
    """The id of a collection's entry: the same ids the original plugin served."""
    uri = collection_uri(bucket_id, collection_id)
    digest = hashlib.md5(f"{host}{uri}".encode()).hexdigest()
    return str(uuid.UUID(digest))


def newest_cursor_of(
    storage: StorageBase, resource_name: str, parent_id: str, filters=None
) -> int:
    """The newest ``last_modified`` of these objects, 0 if none (a read)."""
    query = dict(resource_name=resource_name, parent_id=parent_id, filters=filters)
    newest = storage.list_all(**query, sorting=[NEWEST_FIRST], limit=1)
    return newest[0]["last_modified"] if newest else 0


def iter_objects(
    storage: StorageBase, resource_name: str, parent_id: str, filters=(), limit=None, **query
) -> Iterator[dict]:
    """Every object of one parent (or the ``limit`` newest), newest first, page
    after page: ``list_all`` stops at ``storage_max_fetch_size`` objects."""
    query.update(resource_name=resource_name, parent_id=parent_id, sorting=[NEWEST_FIRST])
    return iter_pages(functools.partial(storage.list_all, **query), list(filters), limit)


def iter_pages(fetch: Callable[..., list], filters: list[Filter], limit=None) -> Iterator[dict]:
    """What ``fetch(filters=..., limit=...)`` returns, page after page, up to
    ``limit``: ``fetch`` sorts newest first on a unique ``last_modified`` (a keyset)."""
    before = []
    while limit is None or limit > 0:
        page = fetch(filters=[*filters, *before], limit=limit)
        yield from page
        if not page:
            return
        if limit is not None:
            limit -= len(page)
        before = [Filter("last_modified", page[-1]["last_modified"], COMPARISON.LT)]
