"""Storage of the list entries and of their commit-ordered cursor.

One entry per monitored collection, stored with Kinto's storage API under a
parent id that no bucket or collection URI can prefix (Kinto's memory backend
purges and matches parent ids by prefix).

The storage ``last_modified`` of an entry is its *cursor*: unique, increasing
in commit order. The collection's exact records timestamp is kept in the
entry's data (``RECORDS_TIMESTAMP``), and served as ``last_modified``.
"""

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from kinto.core.storage import Filter, Sort, StorageBase
from kinto.core.storage import exceptions as storage_exceptions
from kinto.core.utils import COMPARISON, msec_time, sqlalchemy

from .settings import ChangesSettings, uri_scopes
from .utils import entry_id, iter_objects


PARENT_ID = "kinto_changes"
RESOURCE_NAME = "changes"

# Data field of an entry holding its records timestamp (served as ``last_modified``).
RECORDS_TIMESTAMP = "_timestamp"

# Key of the PostgreSQL advisory lock that serialises cursor assignment.
ADVISORY_LOCK_KEY = int.from_bytes(b"kchanges", "big") >> 1


@dataclass(frozen=True)
class Change:
    """A monitored collection touched by a transaction."""

    bucket_id: str
    collection_id: str
    # True when the event deleted it (or its bucket). Whatever the event, the
    # writer checks under the lock whether the collection still exists.
    maybe_deleted: bool = False


class MemoryCursorLock:
    """Serialise cursor assignment between the threads of one process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def acquire(self, storage: StorageBase) -> Iterator[int]:
        """Hold the lock, and give the current time in milliseconds."""
        with self._lock:
            yield msec_time()

    def newest_cursor(self, storage: StorageBase) -> int:
        return storage.all_resources_timestamps(RESOURCE_NAME).get(PARENT_ID, 0)


class PostgreSQLCursorLock:
    """Serialise cursor assignment between every process sharing the database.

    The advisory lock is scoped to the transaction: it is released when the
    transaction commits, so cursors are assigned in commit order.
    """

    @contextlib.contextmanager
    def acquire(self, storage: StorageBase) -> Iterator[int]:
        query = """
        SELECT as_epoch(clock_timestamp()::TIMESTAMP) AS now
          FROM (SELECT pg_advisory_xact_lock(:key)) AS locked;
        """
        with storage.client.connect() as conn:
            now = conn.execute(sqlalchemy.text(query), {"key": ADVISORY_LOCK_KEY}).scalar()
        yield now

    def newest_cursor(self, storage: StorageBase) -> int:
        newest = storage.list_all(
            resource_name=RESOURCE_NAME,
            parent_id=PARENT_ID,
            sorting=[Sort("last_modified", -1)],
            limit=1,
        )
        return newest[0]["last_modified"] if newest else 0


def cursor_lock_for(storage: StorageBase) -> MemoryCursorLock | PostgreSQLCursorLock:
    return PostgreSQLCursorLock() if hasattr(storage, "client") else MemoryCursorLock()


class EntryWriter:
    """Write the entries of the changed collections, under the cursor lock."""

    def __init__(self, storage: StorageBase, lock, settings: ChangesSettings) -> None:
        self.storage = storage
        self.lock = lock
        self.settings = settings

    def write(self, changes: list[Change], deleted_buckets: list[str] = ()) -> None:
        with self.lock.acquire(self.storage) as now:
            self.now = now
            self.cursor = self.lock.newest_cursor(self.storage)
            changes = [*changes, *self._listed_in(deleted_buckets)]
            for change in dict.fromkeys(changes):
                # Also for record changes: Kinto checks the collection when a
                # request starts, and another request can delete it before the
                # record commits.
                if self._exists(change):
                    self.upsert(change.bucket_id, change.collection_id)
                else:
                    self.tombstone(change.bucket_id, change.collection_id)

    def upsert(self, bucket_id: str, collection_id: str) -> None:
        uri = uri_scopes(bucket_id, collection_id)[1]
        timestamp = self.storage.resource_timestamp(resource_name="record", parent_id=uri)
        # Kinto notifies the events of a /batch sub-request even when a later
        # 409 rolled it back: an unchanged entry keeps its cursor, so that
        # pollers are not told about a change that did not happen.
        entry = self._stored(bucket_id, collection_id)
        if entry.get("deleted") or entry.get(RECORDS_TIMESTAMP) != timestamp:
            self._store(bucket_id, collection_id, timestamp, {RECORDS_TIMESTAMP: timestamp})

    def tombstone(self, bucket_id: str, collection_id: str) -> None:
        if not self._stored(bucket_id, collection_id).get("deleted"):
            self._store(bucket_id, collection_id, self.now, {"deleted": True})

    def _store(self, bucket_id: str, collection_id: str, timestamp: int, extra: dict) -> None:
        self.cursor = max(self.cursor + 1, min(timestamp, self.now))
        extra.setdefault(RECORDS_TIMESTAMP, self.cursor)
        entry = {
            "bucket": bucket_id,
            "collection": collection_id,
            "host": self.settings.http_host,
            "last_modified": self.cursor,
            **extra,
        }
        object_id = entry_id(self.settings.http_host, bucket_id, collection_id)
        self.storage.update(
            resource_name=RESOURCE_NAME, parent_id=PARENT_ID, object_id=object_id, obj=entry
        )

    def _stored(self, bucket_id: str, collection_id: str) -> dict:
        """The stored entry of this collection (empty if none)."""
        object_id = entry_id(self.settings.http_host, bucket_id, collection_id)
        try:
            return self.storage.get(
                resource_name=RESOURCE_NAME, parent_id=PARENT_ID, object_id=object_id
            )
        except storage_exceptions.ObjectNotFoundError:
            return {}

    def _exists(self, change: Change) -> bool:
        try:
            self.storage.get(
                resource_name="collection",
                parent_id=f"/buckets/{change.bucket_id}",
                object_id=change.collection_id,
            )
        except storage_exceptions.ObjectNotFoundError:
            return False
        return True

    def _listed_in(self, bucket_ids: list[str]) -> list[Change]:
        """The live entries of deleted buckets: their collections are gone too."""
        if not bucket_ids:
            return []
        filters = [
            Filter("bucket", list(bucket_ids), COMPARISON.IN),
            Filter("host", self.settings.http_host, COMPARISON.EQ),
            Filter("deleted", True, COMPARISON.NOT),
        ]
        entries = iter_objects(self.storage, RESOURCE_NAME, PARENT_ID, filters=filters)
        return [Change(e["bucket"], e["collection"], maybe_deleted=True) for e in entries]
