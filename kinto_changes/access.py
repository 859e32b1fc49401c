"""Who may see an entry of the list, now and in a reader's past (README.rst,
"When access changes"): stored under the entries' parent id, the principals of
each entry's collection (``READERS``) and of each bucket (``BUCKETS``), and a
log of access changes, each naming the principals it concerns (``ACCESS``).
"""

from collections.abc import Iterable
from dataclasses import dataclass

from kinto.core.permission import PermissionBase
from kinto.core.storage import Filter, Sort, StorageBase
from kinto.core.utils import COMPARISON

from .settings import ChangesSettings
from .utils import collection_uri, iter_objects, newest_cursor_of


# Data field of an entry: the principals of its collection's permissions (of its
# collection's and its bucket's for a tombstone), sorted.
READERS = "_readers"
# Permissions that let a principal read a collection's records.
READ_PERMISSIONS = ("read", "write")
# Resource names, under the entries' parent id: the buckets' principals
# (``{"readers": [...]}``, id = bucket id) and the log of access changes
# (``{"concerned": [...]}``, ``last_modified`` = its cursor).
BUCKETS = "changes-bucket"
ACCESS = "changes-access"
# Old access changes are forgotten this many at a time, at most once a minute per
# process (again at the next access change when there were more).
FORGET_AT_ONCE = 1000
FORGET_INTERVAL_MSEC = 60_000


def collections_readers(permission: PermissionBase, keys: list[tuple[str, str]]) -> dict:
    """``{(bucket_id, collection_id): readers}`` of the collections' own permissions."""
    readers = readers_of(permission, [collection_uri(*key) for key in keys])
    return dict(zip(keys, readers, strict=True))


def buckets_readers(permission: PermissionBase, bucket_ids: Iterable[str]) -> dict[str, list[str]]:
    """``{bucket_id: readers}`` of the buckets' permissions."""
    bucket_ids = sorted(set(bucket_ids))
    readers = readers_of(permission, [f"/buckets/{bid}" for bid in bucket_ids])
    return dict(zip(bucket_ids, readers, strict=True))


def readers_of(permission: PermissionBase, uris: list[str]) -> list[list[str]]:
    """The sorted principals with read or write on each of these objects, in one query."""
    # Every permission: Kinto's memory backend fails on absent ones when named.
    found = permission.get_objects_permissions(uris) if uris else []
    return [sorted(set().union(*(perms.get(p, ()) for p in READ_PERMISSIONS))) for perms in found]


def stored_buckets_readers(storage: StorageBase, parent_id: str, bucket_ids) -> dict[str, list]:
    """The stored principals of these buckets (absent: no record yet)."""
    if not bucket_ids:
        return {}
    bucket_ids = sorted(set(bucket_ids))
    selector = Filter("id", bucket_ids, COMPARISON.IN)
    # At most one record each: no need to ask for a page after the first.
    records = iter_objects(storage, BUCKETS, parent_id, filters=[selector], limit=len(bucket_ids))
    return {record["id"]: record["readers"] for record in records}


def store_bucket_readers(storage: StorageBase, parent_id: str, bucket_id: str, readers) -> None:
    """Store a bucket's principals; ``None`` deletes its record (read under the lock)."""
    ids = dict(resource_name=BUCKETS, parent_id=parent_id, object_id=bucket_id)
    if readers is None:
        storage.delete(**ids)
    else:
        storage.update(**ids, obj={"readers": list(readers)})


def log_access_change(storage: StorageBase, parent_id: str, cursor: int, concerned) -> None:
    """Append an access change to the log, at ``cursor``."""
    obj = {"concerned": sorted(set(concerned)), "last_modified": cursor}
    storage.update(resource_name=ACCESS, parent_id=parent_id, object_id=str(cursor), obj=obj)


@dataclass
class Forgetting:
    """When this process next forgets old access changes (called under the cursor lock)."""

    due: int = 0  # Milliseconds: at its first access change.

    def forget(self, storage: StorageBase, parent_id: str, now: int, before: int) -> None:
        """Delete the oldest access changes before this cursor, if due."""
        if now < self.due:
            return
        old = [Filter("last_modified", before, COMPARISON.LT)]
        forgotten = storage.delete_all(
            resource_name=ACCESS,
            parent_id=parent_id,
            filters=old,
            sorting=[Sort("last_modified", 1)],
            limit=FORGET_AT_ONCE,
            with_deleted=False,
        )
        if len(forgotten) < FORGET_AT_ONCE:  # All of them: wait.
            self.due = now + FORGET_INTERVAL_MSEC


@dataclass(frozen=True)
class Reader:
    """What one reader may see of the list."""

    principals: frozenset[str]
    # The buckets they may read: every live entry of these is theirs.
    buckets: frozenset[str]

    def rules(self, include_deleted: bool, tombstones_after: int) -> list[list[Filter]]:
        """The entries they see, as alternatives (OR) of storage filters (AND),
        disjoint (Kinto's memory backend gives an object once per alternative):
        the live entries of their buckets or whose readers they are among, and
        with ``include_deleted`` the tombstones they were readers of, newer
        than ``tombstones_after``."""
        readers = Filter(READERS, sorted(self.principals), COMPARISON.CONTAINS_ANY)
        live = Filter("deleted", True, COMPARISON.NOT)
        rules = [[readers, live]]
        if self.buckets:
            buckets = sorted(self.buckets)
            rules = [
                [Filter("bucket", buckets, COMPARISON.IN), live],
                [readers, live, Filter("bucket", buckets, COMPARISON.EXCLUDE)],
            ]
        if include_deleted:
            tombstone = Filter("deleted", True, COMPARISON.EQ)
            newer = Filter("last_modified", tombstones_after, COMPARISON.GT)
            rules.append([readers, tombstone, newer])
        return rules


def concerned_by(principals: frozenset[str], news: dict) -> bool:
    """Whether these changes (``Waiting.news``) may change what a reader with
    these principals sees: an entry they may read through its collection or
    its bucket (as the buckets' principals are now), or an access change
    naming them. A tombstone keeps the principals of both."""
    if any(not principals.isdisjoint(change["concerned"]) for change in news["access"]):
        return True
    buckets = news["buckets"]
    return any(
        not principals.isdisjoint(entry.get(READERS, ()))
        or not principals.isdisjoint(buckets.get(entry.get("bucket"), ()))
        for entry in news["entries"]
    )


def reader_for(
    storage: StorageBase, parent_id: str, settings: ChangesSettings, principals: list[str]
) -> Reader | None:
    """What a reader with these principals may see, ``None`` when they see every
    entry: an explicit ``collections`` setting publishes every entry, and Kinto's
    ``record_read_principals``/``record_write_principals`` read every collection."""
    principals = frozenset(principals)
    if not settings.monitors_everything or not principals.isdisjoint(settings.global_readers):
        return None
    selector = Filter("readers", sorted(principals), COMPARISON.CONTAINS_ANY)
    buckets = iter_objects(storage, BUCKETS, parent_id, filters=[selector])
    return Reader(principals, frozenset(bucket["id"] for bucket in buckets))


def last_concerned(
    storage: StorageBase, parent_id: str, principals: frozenset[str], since: int = 0
) -> int:
    """The cursor of the newest access change after ``since`` concerning one of
    these principals (``since`` if none)."""
    filters = [
        Filter("concerned", sorted(principals), COMPARISON.CONTAINS_ANY),
        Filter("last_modified", since, COMPARISON.GT),
    ]
    return newest_cursor_of(storage, ACCESS, parent_id, filters) or since
