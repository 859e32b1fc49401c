"""Who may see an entry of the list.

With nothing configured every collection is monitored, and a reader sees the
entries of the collections they may read: whoever has ``read`` or ``write``
on a collection or on its bucket (Kinto's inheritance for ``GET .../records``).

These principals are resolved when an entry is written and stored with it
(``READERS``), as Kinto's history plugin does for its entries, so that:

- reading the list costs one filter, never a permission query per entry;
- a tombstone keeps the readers its collection had, although Kinto deletes
  the permissions of a deleted collection.

They are resolved again whenever they may change: a collection created or
updated (its permissions are part of it), a bucket updated (the entries of
all its collections). A reader's groups are resolved when they read, by Kinto.
"""

from kinto.core.permission import PermissionBase
from kinto.core.permission.memory import Permission as MemoryPermission
from kinto.core.storage import Filter
from kinto.core.utils import COMPARISON

from .settings import ChangesSettings
from .utils import collection_uri


# Data field of an entry: the principals who may read its collection, sorted.
READERS = "_readers"
# Permissions that let a principal read a collection's records.
READ_PERMISSIONS = ("read", "write")


def collections_readers(
    permission: PermissionBase, keys: list[tuple[str, str]]
) -> dict[tuple[str, str], list[str]]:
    """``{(bucket_id, collection_id): sorted principals}``, from the permission backend."""
    uris = {f"/buckets/{bid}" for bid, _ in keys} | {collection_uri(*key) for key in keys}
    principals = _principals_by_uri(permission, sorted(uris))
    return {
        (bid, cid): sorted(principals[f"/buckets/{bid}"] | principals[collection_uri(bid, cid)])
        for bid, cid in keys
    }


def _principals_by_uri(permission: PermissionBase, uris: list[str]) -> dict[str, set[str]]:
    if isinstance(permission, MemoryPermission):
        # Kinto's memory backend fails on absent permissions when they are
        # named, and scans all its keys per object when they are not.
        return {
            uri: set().union(
                *(permission.get_object_permission_principals(uri, p) for p in READ_PERMISSIONS)
            )
            for uri in uris
        }
    found = permission.get_objects_permissions(uris, list(READ_PERMISSIONS))
    return {
        uri: set().union(*(perms.get(p, ()) for p in READ_PERMISSIONS))
        for uri, perms in zip(uris, found, strict=True)
    }


def reader_principals(settings: ChangesSettings, principals: list[str]) -> frozenset | None:
    """The principals whose entries a reader sees, ``None`` when they see every entry.

    Every entry: an explicit ``collections`` setting publishes its entries to
    every reader allowed by ``principals``, and Kinto's
    ``record_read_principals``/``record_write_principals`` settings let their
    principals read every collection.
    """
    principals = frozenset(principals)
    if not settings.monitors_everything or not principals.isdisjoint(settings.global_readers):
        return None
    return principals


def readers_filter(principals: frozenset[str]) -> Filter:
    """The storage filter keeping the entries that one of ``principals`` may read."""
    return Filter(READERS, sorted(principals), COMPARISON.CONTAINS_ANY)
