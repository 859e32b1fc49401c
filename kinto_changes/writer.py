"""The writer: the list entries and their commit-ordered cursor (docs/design.rst).

Entries live under a parent id that no bucket or collection URI can prefix
(Kinto's memory backend matches parent ids by prefix). An entry's storage
``last_modified`` is its cursor, unique and increasing in commit order; its
records timestamp is in ``RECORDS_TIMESTAMP``, served as ``last_modified``.
"""

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from kinto.core.storage import Filter, StorageBase
from kinto.core.storage import exceptions as storage_exceptions
from kinto.core.utils import COMPARISON, msec_time

from .access import (
    ACCESS,
    READERS,
    buckets_readers,
    collections_readers,
    log_access_change,
    store_bucket_readers,
    stored_buckets_readers,
)
from .settings import ChangesSettings
from .utils import collection_uri, entry_id, iter_objects, newest_cursor_of


PARENT_ID = "kinto_changes"
RESOURCE_NAME = "changes"

# Data field of an entry holding its records timestamp (served as ``last_modified``).
RECORDS_TIMESTAMP = "_timestamp"


@dataclass(frozen=True)
class Change:
    """A monitored collection touched by a transaction (whether it still
    exists is read under the lock)."""

    bucket_id: str
    collection_id: str
    access_changed: bool = False  # Its permissions may have changed.


@dataclass
class Pending:
    """What one transaction changed, written when it commits."""

    changes: list[Change] = field(default_factory=list)
    deleted_buckets: list[str] = field(default_factory=list)
    # Buckets whose permissions may have changed (created or updated).
    updated_buckets: list[str] = field(default_factory=list)
    # Principals whose access changed otherwise: members who joined or left a group.
    concerned: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class CollectionState:
    """What the writer reads of a changed collection, under the lock."""

    exists: bool
    # ``None`` when not stored yet (then ``resource_timestamp`` stores it).
    records_timestamp: int | None
    entry: dict  # Its stored entry, ``{}`` if none.


@dataclass(frozen=True)
class Locked:
    """What the writer reads once it holds the cursor lock."""

    now: int  # Milliseconds.
    newest_cursor: int
    states: dict[tuple[str, str], CollectionState]


def newest_cursor(storage: StorageBase) -> int:
    """The list's timestamp: the newest cursor of its entries and access changes (a read)."""
    return max(
        newest_cursor_of(storage, resource_name, PARENT_ID)
        for resource_name in (RESOURCE_NAME, ACCESS)
    )


def store(storage: StorageBase, object_id: str, entry: dict) -> None:
    storage.update(
        resource_name=RESOURCE_NAME, parent_id=PARENT_ID, object_id=object_id, obj=entry
    )


def read_states(storage: StorageBase, host: str, keys: list[tuple[str, str]]) -> dict:
    """``{(bucket_id, collection_id): CollectionState}``, through the storage API."""
    states = {}
    for bucket_id, collection_id in keys:
        exists = bool(stored(storage, "collection", f"/buckets/{bucket_id}", collection_id))
        uri = collection_uri(bucket_id, collection_id)
        timestamp = (
            storage.resource_timestamp(resource_name="record", parent_id=uri) if exists else None
        )
        entry = stored(storage, RESOURCE_NAME, PARENT_ID, entry_id(host, bucket_id, collection_id))
        states[(bucket_id, collection_id)] = CollectionState(exists, timestamp, entry)
    return states


class MemoryBackend:
    """Kinto's memory backend, through its public storage API: correct, fast for
    writes only; cursors are assigned by the threads of one process."""

    def __init__(self) -> None:
        self.lock = threading.Lock()

    @contextlib.contextmanager
    def locked(self, storage: StorageBase, host: str, keys: list, **hints) -> Iterator[Locked]:
        """Hold the cursor lock, and read what the writer needs (``hints`` serve
        PostgreSQL's upsert in the same statement)."""
        with self.lock:
            states = read_states(storage, host, keys)
            # The timestamps Kinto keeps of the entries and of the access
            # changes: their newest cursors, or now (stored) before the first.
            newest = max(
                storage.resource_timestamp(resource_name=name, parent_id=PARENT_ID)
                for name in (RESOURCE_NAME, ACCESS)
            )
            yield Locked(msec_time(), newest, states)

    def list_entries(self, storage: StorageBase, **query) -> None:
        """Kinto's own ``list_all`` reads the list's entries."""
        return None

    def install(self, storage: StorageBase, client=None, dry_run: bool = False) -> None:
        """Nothing to install (Kinto runs no plugin migration on memory)."""

    def bury(self, storage: StorageBase, host: str, first: int, readers: dict, **selected) -> int:
        """Tombstones for the live entries of these buckets (``bucket_ids``) or
        ids (``entry_ids``), from cursor ``first`` on, with ``readers`` of their buckets."""
        entries = {
            **live_entries(storage, host, "bucket", selected.get("bucket_ids")),
            **live_entries(storage, host, "id", selected.get("entry_ids")),
        }
        for n, object_id in enumerate(sorted(entries)):
            entry = entries[object_id]
            tombstone = tombstone_of(entry, host, readers.get(entry["bucket"]), first + n)
            store(storage, object_id, tombstone)
        return len(entries)


class EntryWriter:
    """Write the entries of the changed collections, under the cursor lock."""

    def __init__(self, registry) -> None:
        self.storage: StorageBase = registry.storage
        self.permission = registry.permission
        self.backend = registry.changes_backend
        self.forgetting = registry.changes_forgetting
        self.settings: ChangesSettings = registry.changes

    def write(self, pending: Pending) -> None:
        """Write the entries of the collections that ``pending`` touched, the
        principals of its buckets, and one record of the access it changed."""
        host = self.settings.http_host
        keys = list(dict.fromkeys((c.bucket_id, c.collection_id) for c in pending.changes))
        changed = {(c.bucket_id, c.collection_id) for c in pending.changes if c.access_changed}
        tracks = self.settings.monitors_everything
        with self.backend.locked(
            self.storage, host, keys, resolve=changed, tracks_readers=tracks
        ) as locked:
            self.now, self.cursor = locked.now, locked.newest_cursor
            self.concerned = set(pending.concerned)
            # The entries of deleted buckets (not re-created) and of deleted
            # collections become tombstones in one go (``bury``).
            gone = [b for b in set(pending.deleted_buckets) if not bucket_exists(self.storage, b)]
            back = set(pending.deleted_buckets) - set(gone)
            in_back = live_entries(self.storage, host, "bucket", back).values()
            keys_back = [(e["bucket"], e["collection"]) for e in in_back]
            deleted = [key for key in keys_back if key not in locked.states]
            states = {**locked.states, **read_states(self.storage, host, deleted)}
            self._read_buckets(states, changed, pending)
            readers = self._readers(states, changed)
            for (bucket_id, collection_id), state in states.items():
                # Also for record writes: another request may have deleted the
                # collection since Kinto checked it.
                if state.exists:
                    self.upsert(bucket_id, collection_id, state, readers)
                elif not state.entry:  # Never listed (created and deleted at once).
                    self.tombstone(bucket_id, collection_id)
            self.bury(gone, [key for key, state in states.items() if not state.exists])
            self._write_buckets()
            self._log_access_change()

    def _read_buckets(self, states: dict, changed: set, pending: Pending) -> None:
        """The principals of the buckets whose principals may have changed, or
        that new entries, tombstones and new readers need (not on record
        writes): as stored (``before``, ``None`` if not yet) and now (``after``,
        for the buckets that exist)."""
        self.before, self.after = {}, {}
        if not self.settings.monitors_everything:
            return
        bucket_ids = {*pending.updated_buckets, *pending.deleted_buckets}
        bucket_ids |= {
            key[0]
            for key, state in states.items()
            if not state.exists or not state.entry or state.entry.get("deleted") or key in changed
        }
        stored = stored_buckets_readers(self.storage, PARENT_ID, bucket_ids)
        self.before = {bid: stored.get(bid) for bid in bucket_ids}
        # A bucket this transaction wrote and did not delete exists (on PostgreSQL,
        # its row lock holds a concurrent deletion until we commit).
        written = set(pending.updated_buckets) - set(pending.deleted_buckets)
        existing = [b for b in bucket_ids if b in written or bucket_exists(self.storage, b)]
        self.after = buckets_readers(self.permission, existing)

    def _write_buckets(self) -> None:
        """Store the principals of the buckets that changed, appeared or went
        (not their entries: readers see a bucket's collections through it).
        Who gained or lost one is concerned, unless the record is new (no
        collection yet, or entries holding the bucket's principals too)."""
        for bucket_id, before in self.before.items():
            after = self.after.get(bucket_id)
            if after == before:
                continue
            store_bucket_readers(self.storage, PARENT_ID, bucket_id, after)
            if after is not None and before is not None:
                self.concerned |= set(after).symmetric_difference(before)

    def _log_access_change(self) -> None:
        """One record naming whoever this transaction's access changes concern,
        at a cursor of its own; the oldest records beyond ``since_max_age_days`` go."""
        if self.concerned:
            log_access_change(self.storage, PARENT_ID, self.next_cursor(), self.concerned)
            horizon = self.settings.since_horizon(self.now)
            self.forgetting.forget(self.storage, PARENT_ID, self.now, before=horizon)

    def next_cursor(self, timestamp: int | None = None) -> int:
        """The cursor rule: the next cursor after the newest, ``timestamp``
        (else now) when it is newer, never ahead of the clock unless the
        newest already is (``STATES`` applies it in SQL for record writes)."""
        now = self.now if timestamp is None else min(timestamp, self.now)
        self.cursor = max(self.cursor + 1, now)
        return self.cursor

    def _lost(self, bucket_id: str, old_readers, new_readers) -> set[str]:
        """Principals that could read a collection through it or its bucket, and no more."""
        before = self.before.get(bucket_id) or ()
        after = self.after[bucket_id] if bucket_id in self.after else before
        return {*old_readers, *before} - {*new_readers, *after}

    def _readers(self, states: dict, access_changed: set) -> dict[tuple[str, str], list[str]]:
        """The readers to resolve again (only with nothing configured): where
        access changed, where never resolved, for a collection back after a tombstone."""
        if not self.settings.monitors_everything:
            return {}
        keys = [
            key
            for key, state in states.items()
            if state.exists
            and (key in access_changed or READERS not in state.entry or state.entry.get("deleted"))
        ]
        return collections_readers(self.permission, keys)

    def upsert(
        self, bucket_id: str, collection_id: str, state: CollectionState, readers: dict
    ) -> None:
        timestamp = state.records_timestamp
        if timestamp is None:
            uri = collection_uri(bucket_id, collection_id)
            timestamp = self.storage.resource_timestamp(resource_name="record", parent_id=uri)
        entry = state.entry
        new_readers = readers.get((bucket_id, collection_id), entry.get(READERS))
        moved = entry.get("deleted") or entry.get(RECORDS_TIMESTAMP) != timestamp
        # An unchanged entry keeps its cursor (Kinto notifies the events of a
        # /batch sub-request a 409 rolled back); new readers get a cursor dated
        # now, which their ``_since`` polls show.
        if moved or entry.get(READERS) != new_readers:
            # Also when it comes back: its tombstone's readers had it in view.
            self.concerned |= self._lost(bucket_id, entry.get(READERS, ()), new_readers or ())
            cursor = self.next_cursor(timestamp if moved else self.now)
            host = self.settings.http_host
            new = {"bucket": bucket_id, "collection": collection_id, "host": host}
            new |= {"last_modified": cursor, RECORDS_TIMESTAMP: timestamp}
            if new_readers is not None:
                new[READERS] = new_readers
            store(self.storage, entry_id(host, bucket_id, collection_id), new)

    def tombstone(self, bucket_id: str, collection_id: str) -> None:
        entry = {"bucket": bucket_id, "collection": collection_id}
        host = self.settings.http_host
        tombstone = tombstone_of(entry, host, None, self.next_cursor())
        store(self.storage, entry_id(host, bucket_id, collection_id), tombstone)

    def bury(self, bucket_ids: list[str], keys: list[tuple[str, str]]) -> None:
        """Tombstones for every live entry of these deleted buckets and
        collections, in one go (one statement on PostgreSQL)."""
        if bucket_ids or keys:
            host, newest = self.settings.http_host, self.cursor
            first = self.next_cursor()
            entry_ids = [entry_id(host, *key) for key in keys]
            buried = self.backend.bury(
                self.storage, host, first, self.before, bucket_ids=bucket_ids, entry_ids=entry_ids
            )
            self.cursor = first + buried - 1 if buried else newest


def live_entries(storage: StorageBase, host: str, field: str, values) -> dict[str, dict]:
    """``{id: entry}`` of the live entries whose ``field`` is one of ``values``."""
    if not values:
        return {}
    filters = [
        Filter(field, sorted(values), COMPARISON.IN),
        Filter("host", host, COMPARISON.EQ),
        Filter("deleted", True, COMPARISON.NOT),
    ]
    return {e["id"]: e for e in iter_objects(storage, RESOURCE_NAME, PARENT_ID, filters=filters)}


def tombstone_of(entry: dict, host: str, bucket_readers, cursor: int) -> dict:
    """A collection's entry once it is deleted, at ``cursor`` (its timestamp too),
    keeping the principals of the collection and its bucket (Kinto deletes them)."""
    tombstone = {
        "bucket": entry["bucket"],
        "collection": entry["collection"],
        "host": host,
        "deleted": True,
        RECORDS_TIMESTAMP: cursor,
        "last_modified": cursor,
    }
    if READERS in entry:
        tombstone[READERS] = sorted({*entry[READERS], *(bucket_readers or ())})
    return tombstone


def stored(storage: StorageBase, resource_name: str, parent_id: str, object_id: str) -> dict:
    """A stored object, ``{}`` if none."""
    try:
        return storage.get(resource_name=resource_name, parent_id=parent_id, object_id=object_id)
    except storage_exceptions.ObjectNotFoundError:
        return {}


def bucket_exists(storage: StorageBase, bucket_id: str) -> bool:
    return bool(stored(storage, "bucket", "", bucket_id))
