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

# Data fields of an entry that clients never see.
RECORDS_TIMESTAMP = "_timestamp"
URI = "_uri"
SCOPES = "_scopes"
HIDDEN_FIELDS = (RECORDS_TIMESTAMP, URI, SCOPES)

# Key of the PostgreSQL advisory lock that serialises cursor assignment.
ADVISORY_LOCK_KEY = int.from_bytes(b"kchanges", "big") >> 1


@dataclass(frozen=True)
class Change:
    """A monitored collection touched by a transaction."""

    bucket_id: str
    collection_id: str
    # False: its records changed; True: it (or its bucket) may have been deleted.
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
                if change.maybe_deleted and not self._exists(change):
                    self.tombstone(change.bucket_id, change.collection_id)
                else:
                    self.upsert(change.bucket_id, change.collection_id)

    def upsert(self, bucket_id: str, collection_id: str) -> None:
        uri = uri_scopes(bucket_id, collection_id)[1]
        timestamp = self.storage.resource_timestamp(resource_name="record", parent_id=uri)
        # Kinto notifies the events of a /batch sub-request even when a later
        # 409 rolled it back: an unchanged entry keeps its cursor, so that
        # pollers are not told about a change that did not happen.
        if self._listed_timestamp(bucket_id, collection_id) != timestamp:
            self._store(bucket_id, collection_id, timestamp, {RECORDS_TIMESTAMP: timestamp})

    def tombstone(self, bucket_id: str, collection_id: str) -> None:
        self._store(bucket_id, collection_id, self.now, {"deleted": True})

    def _store(self, bucket_id: str, collection_id: str, timestamp: int, extra: dict) -> None:
        self.cursor = max(self.cursor + 1, min(timestamp, self.now))
        extra.setdefault(RECORDS_TIMESTAMP, self.cursor)
        scopes = uri_scopes(bucket_id, collection_id)
        entry = {
            "bucket": bucket_id,
            "collection": collection_id,
            "host": self.settings.http_host,
            URI: scopes[1],
            SCOPES: list(scopes),
            "last_modified": self.cursor,
            **extra,
        }
        object_id = entry_id(self.settings.http_host, bucket_id, collection_id)
        self.storage.update(
            resource_name=RESOURCE_NAME, parent_id=PARENT_ID, object_id=object_id, obj=entry
        )

    def _listed_timestamp(self, bucket_id: str, collection_id: str) -> int | None:
        """The records timestamp of the live entry of this collection, if any."""
        object_id = entry_id(self.settings.http_host, bucket_id, collection_id)
        try:
            entry = self.storage.get(
                resource_name=RESOURCE_NAME, parent_id=PARENT_ID, object_id=object_id
            )
        except storage_exceptions.ObjectNotFoundError:
            return None
        return None if entry.get("deleted") else entry.get(RECORDS_TIMESTAMP)

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
