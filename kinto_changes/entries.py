"""Storage of the list entries and of their commit-ordered cursor.

One entry per monitored collection, stored with Kinto's storage API under a
parent id that no bucket or collection URI can prefix (Kinto's memory backend
purges and matches parent ids by prefix).

The storage ``last_modified`` of an entry is its *cursor*: unique, increasing
in commit order. The collection's exact records timestamp is kept in the
entry's data (``RECORDS_TIMESTAMP``), and served as ``last_modified``.
"""

import contextlib
import hashlib
import logging
import re
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from kinto.core.decorators import synchronized
from kinto.core.storage import Filter, Sort, StorageBase
from kinto.core.storage import exceptions as storage_exceptions
from kinto.core.utils import COMPARISON, json, msec_time, sqlalchemy

from .access import (
    ACCESS,
    READERS,
    buckets_readers,
    collections_readers,
    log_access_change,
    newest_access_cursor,
    store_bucket_readers,
    stored_buckets_readers,
)
from .settings import ChangesSettings
from .utils import collection_uri, entry_id, iter_objects


logger = logging.getLogger(__name__)


PARENT_ID = "kinto_changes"
RESOURCE_NAME = "changes"

# Data field of an entry holding its records timestamp (served as ``last_modified``).
RECORDS_TIMESTAMP = "_timestamp"

# Key of the PostgreSQL advisory lock that serialises cursor assignment.
ADVISORY_LOCK_KEY = int.from_bytes(b"kchanges", "big") >> 1
# Key of the one that serialises the installs of the function by ``kinto migrate``.
INSTALL_LOCK_KEY = int.from_bytes(b"kchinsta", "big") >> 1


@dataclass(frozen=True)
class Change:
    """A monitored collection touched by a transaction (created, changed or
    deleted: the writer checks under the lock whether it still exists)."""

    bucket_id: str
    collection_id: str
    # True when the event may have changed its permissions: the writer
    # resolves its readers again.
    access_changed: bool = False


@dataclass
class Pending:
    """What one transaction changed, written when it commits."""

    changes: list[Change] = field(default_factory=list)
    deleted_buckets: list[str] = field(default_factory=list)
    # Buckets whose permissions may have changed (created or updated).
    updated_buckets: list[str] = field(default_factory=list)
    # Principals whose access changed otherwise: members who joined or left a group.
    concerned: set[str] = field(default_factory=set)

    def __bool__(self) -> bool:
        return any((self.changes, self.deleted_buckets, self.updated_buckets, self.concerned))


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


def read_states(storage: StorageBase, host: str, keys: list[tuple[str, str]]) -> dict:
    """``{(bucket_id, collection_id): CollectionState}``, through the storage API."""
    states = {}
    for bucket_id, collection_id in keys:
        exists = _exists(storage, bucket_id, collection_id)
        uri = collection_uri(bucket_id, collection_id)
        timestamp = (
            storage.resource_timestamp(resource_name="record", parent_id=uri) if exists else None
        )
        entry = _stored(storage, entry_id(host, bucket_id, collection_id))
        states[(bucket_id, collection_id)] = CollectionState(exists, timestamp, entry)
    return states


def store_in_memory(storage: StorageBase, object_id: str, entry: dict) -> None:
    """What memory ``storage.update`` does, without its deep copy.

    The memory backend copies what it stores by serialising it and parsing
    it back: every entry would hold its own copy of each key (40 % of its
    size). An entry holds strings, numbers, booleans and a list of strings:
    copying the list makes a deep copy. The strings that many entries repeat
    (bucket ids, principals) are shared.
    """
    obj = {**entry, "id": object_id, "bucket": sys.intern(entry["bucket"])}
    if READERS in obj:
        obj[READERS] = [sys.intern(principal) for principal in obj[READERS]]
    storage.set_object_timestamp(RESOURCE_NAME, PARENT_ID, obj)
    storage._store[PARENT_ID][RESOURCE_NAME][object_id] = obj
    storage._cemetery[PARENT_ID][RESOURCE_NAME].pop(object_id, None)


class MemoryCursorLock:
    """Serialise cursor assignment between the threads of one process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def acquire(self, storage: StorageBase, host: str, keys: list, **hints) -> Iterator[Locked]:
        """Hold the lock, and read what the writer needs (``hints`` serve
        PostgreSQL's upsert in the same statement)."""
        with self._lock:
            states = read_states(storage, host, keys)
            yield Locked(msec_time(), self.newest_cursor(storage), states)

    def newest_cursor(self, storage: StorageBase) -> int:
        # The memory backend keeps the newest ``last_modified`` of each parent:
        # read ours alone (``all_resources_timestamps`` walks every parent).
        # Only once there is one: ``resource_timestamp`` would store one.
        stored = storage._timestamps.get(PARENT_ID, {})
        return max(
            (
                storage.resource_timestamp(resource_name=name, parent_id=PARENT_ID)
                for name in (RESOURCE_NAME, ACCESS)
                if name in stored
            ),
            default=0,
        )

    # Under the memory backend's own lock (``storage``'s), as its ``update``.
    store = staticmethod(synchronized(store_in_memory))

    def bury(self, storage: StorageBase, host: str, first: int, readers: dict, **selected) -> int:
        """Tombstones for the live entries of these buckets (``bucket_ids``) or
        ids (``entry_ids``), from cursor ``first`` on, with ``readers`` of their buckets."""
        entries = {}
        for key, name in (("bucket", "bucket_ids"), ("id", "entry_ids")):
            if selected.get(name):
                filters = [
                    Filter(key, sorted(selected[name]), COMPARISON.IN),
                    Filter("host", host, COMPARISON.EQ),
                    Filter("deleted", True, COMPARISON.NOT),
                ]
                found = iter_objects(storage, RESOURCE_NAME, PARENT_ID, filters=filters)
                entries.update((entry["id"], entry) for entry in found)
        for n, object_id in enumerate(sorted(entries)):
            entry = entries[object_id]
            tombstone = tombstone_of(entry, host, readers.get(entry["bucket"]), first + n)
            self.store(storage, object_id, tombstone)
        return len(entries)


class PostgreSQLCursorLock:
    """Serialise cursor assignment between every process sharing the database.

    The advisory lock is scoped to the transaction: it is released when the
    transaction commits, so cursors are assigned in commit order.
    """

    # Two statements in one round trip, while other writers wait for the lock
    # (psycopg2, Kinto's driver, interpolates the parameters client-side).
    # The second (``STATES``) takes its own snapshot once the lock is granted:
    # it sees what the previous holder committed. It reads what ``read_states`` reads
    # through the storage API, but the records timestamp it does not store;
    # and it already upserts the entries of the existing collections whose
    # records timestamp moved and whose readers need no resolving (a record
    # write, the common case), as ``EntryWriter.upsert`` would (same data,
    # cursors by the same rule, through Kinto's ``storage.update`` statement),
    # returning their new entry so that the writer leaves them alone. With
    # cursor_0 the newest one and v_i = min(records timestamp, now) of the
    # i-th written entry, cursor_i = max(cursor_{i-1} + 1, v_i)
    #                              = i + max(cursor_0, max over j <= i of v_j - j).
    LOCK = "SELECT pg_advisory_xact_lock(:key);"
    STATES = """
    WITH base AS (
      SELECT as_epoch(clock_timestamp()::TIMESTAMP) AS now,
             GREATEST(
               COALESCE((SELECT as_epoch(last_modified)
                           FROM objects
                          WHERE parent_id = :parent_id AND resource_name = :resource_name
                          ORDER BY last_modified DESC
                          LIMIT 1), 0),
               -- The cursors of access changes (``access.ACCESS``).
               COALESCE((SELECT as_epoch(last_modified)
                           FROM objects
                          WHERE parent_id = :parent_id AND resource_name = 'changes-access'
                          ORDER BY last_modified DESC
                          LIMIT 1), 0)) AS newest_cursor
    ), states AS (
      SELECT c.*,
             EXISTS (SELECT 1
                       FROM objects
                      WHERE resource_name = 'collection' AND NOT deleted
                        AND parent_id = '/buckets/' || c.bucket_id
                        AND id = c.collection_id) AS present,
             as_epoch(GREATEST(
               (SELECT last_modified
                  FROM objects
                 WHERE parent_id = c.uri AND resource_name = 'record'
                 ORDER BY last_modified DESC
                 LIMIT 1),
               (SELECT last_modified
                  FROM timestamps
                 WHERE parent_id = c.uri AND resource_name = 'record'))) AS records_timestamp,
             (SELECT data
                FROM objects
               WHERE parent_id = :parent_id AND resource_name = :resource_name
                 AND id = c.entry_id AND NOT deleted) AS entry
        FROM (SELECT *, '/buckets/' || bucket_id || '/collections/' || collection_id AS uri
                FROM unnest(CAST(:bucket_ids AS TEXT[]),
                            CAST(:collection_ids AS TEXT[]),
                            CAST(:entry_ids AS TEXT[]),
                            CAST(:resolve AS BOOLEAN[]))
                     WITH ORDINALITY AS u(bucket_id, collection_id, entry_id, resolve, position)
             ) AS c
    ), moved AS (
      SELECT states.*, row_number() OVER (ORDER BY position) AS n
        FROM states
       WHERE present AND records_timestamp IS NOT NULL
         AND NOT resolve AND (entry ? '_readers' OR NOT :tracks_readers)
         AND entry -> 'deleted' IS DISTINCT FROM 'true'::JSONB
         AND entry -> '_timestamp' IS DISTINCT FROM to_jsonb(records_timestamp)
    ), cursors AS (
      SELECT moved.*,
             jsonb_build_object('bucket', bucket_id, 'collection', collection_id,
                                'host', CAST(:host AS TEXT),
                                '_timestamp', records_timestamp)
               || CASE WHEN entry ? '_readers'
                       THEN jsonb_build_object('_readers', entry -> '_readers')
                       ELSE '{}'::JSONB END AS new_entry,
             n + GREATEST(newest_cursor,
                          MAX(LEAST(records_timestamp, now) - n) OVER (ORDER BY position))
               AS cursor
        FROM moved, base
    ), written AS (
      INSERT INTO objects (id, parent_id, resource_name, data, last_modified, deleted)
      SELECT entry_id, :parent_id, :resource_name, new_entry, from_epoch(cursor), FALSE
        FROM cursors
       ORDER BY position
      ON CONFLICT (id, parent_id, resource_name) DO UPDATE
      SET data = EXCLUDED.data,
          deleted = FALSE,
          last_modified = EXCLUDED.last_modified
    )
    SELECT now,
           GREATEST(newest_cursor, (SELECT MAX(cursor) FROM cursors)) AS newest_cursor,
           (SELECT json_agg(json_build_array(states.present, states.records_timestamp,
                                             COALESCE(cursors.new_entry, states.entry))
                            ORDER BY position)
              FROM states LEFT JOIN cursors USING (position)) AS states
      FROM base
    """
    # Types of the parameters of ``STATES``, in the order of its function's arguments.
    PARAMETERS = {
        "parent_id": "TEXT",
        "resource_name": "TEXT",
        "bucket_ids": "TEXT[]",
        "collection_ids": "TEXT[]",
        "entry_ids": "TEXT[]",
        "resolve": "BOOLEAN[]",
        "tracks_readers": "BOOLEAN",
        "host": "TEXT",
    }

    def __init__(self) -> None:
        self.function = StatesFunction(self.STATES, self.PARAMETERS)
        # Whether the function is installed and executable: checked at the
        # first write, and again after a call failed (e.g. it was dropped).
        self.function_usable: bool | None = None

    @contextlib.contextmanager
    def acquire(
        self,
        storage: StorageBase,
        host: str,
        keys: list,
        resolve: set = frozenset(),
        tracks_readers: bool = True,
    ) -> Iterator[Locked]:
        placeholders = {
            "key": ADVISORY_LOCK_KEY,
            "parent_id": PARENT_ID,
            "resource_name": RESOURCE_NAME,
            "bucket_ids": [bid for bid, _ in keys],
            "collection_ids": [cid for _, cid in keys],
            "entry_ids": [entry_id(host, bid, cid) for bid, cid in keys],
            "resolve": [key in resolve for key in keys],
            "tracks_readers": tracks_readers,
            "host": host,
        }
        with storage.client.connect() as conn:
            if self.function_usable is None:
                self.function_usable = self.function.is_usable(conn)
            states = self.function.call if self.function_usable else self.STATES
            query = sqlalchemy.text(f"{self.LOCK} {states}")
            try:
                row = conn.execute(query, placeholders).one()
            except sqlalchemy.exc.ProgrammingError:
                # This transaction fails (and rolls back); the next write checks again.
                self.function_usable = None
                raise
        states = {
            key: CollectionState(exists, records_timestamp, entry or {})
            for key, (exists, records_timestamp, entry) in zip(keys, row.states or [], strict=True)
        }
        yield Locked(row.now, row.newest_cursor or 0, states)

    def newest_cursor(self, storage: StorageBase) -> int:
        newest = storage.list_all(
            resource_name=RESOURCE_NAME,
            parent_id=PARENT_ID,
            sorting=[Sort("last_modified", -1)],
            limit=1,
        )
        entries = newest[0]["last_modified"] if newest else 0
        return max(entries, newest_access_cursor(storage, PARENT_ID))

    def store(self, storage: StorageBase, object_id: str, entry: dict) -> None:
        storage.update(
            resource_name=RESOURCE_NAME, parent_id=PARENT_ID, object_id=object_id, obj=entry
        )

    # ``MemoryCursorLock.bury`` in one statement: each live entry of the
    # buckets becomes ``tombstone_of(entry, host, readers of its bucket,
    # cursor)``, with cursors ``first``, ``first + 1``... in the order of their
    # ids, written as Kinto's ``storage.update`` writes them (its trigger keeps
    # a ``last_modified`` given, newer than the newest).
    BURY = """
    WITH doomed AS (
      SELECT id, data, row_number() OVER (ORDER BY id COLLATE "C") - 1 AS n
        FROM objects
       WHERE parent_id = :parent_id AND resource_name = :resource_name
         AND data->>'host' = :host
         AND (data->>'bucket' = ANY(CAST(:bucket_ids AS TEXT[]))
              OR id = ANY(CAST(:entry_ids AS TEXT[])))
         AND data->'deleted' IS DISTINCT FROM 'true'::JSONB
    ), buried AS (
      UPDATE objects AS o
         SET last_modified = from_epoch(:first + d.n),
             data = jsonb_build_object('bucket', d.data->'bucket',
                                       'collection', d.data->'collection',
                                       'host', :host, 'deleted', TRUE,
                                       '_timestamp', :first + d.n)
                    || CASE WHEN d.data ? '_readers' THEN jsonb_build_object('_readers', (
                         SELECT COALESCE(jsonb_agg(p ORDER BY p), '[]'::JSONB)
                           FROM (SELECT DISTINCT p COLLATE "C" AS p
                                   FROM jsonb_array_elements_text(
                                          d.data->'_readers'
                                          || COALESCE(CAST(:readers AS JSONB)->(d.data->>'bucket'),
                                                      '[]'::JSONB)) AS principals(p)) AS u))
                       ELSE '{}'::JSONB END
        FROM doomed AS d
       WHERE o.parent_id = :parent_id AND o.resource_name = :resource_name AND o.id = d.id
      RETURNING 1
    )
    SELECT COUNT(*) FROM buried
    """

    def bury(self, storage: StorageBase, host: str, first: int, readers: dict, **selected) -> int:
        placeholders = {
            "parent_id": PARENT_ID,
            "resource_name": RESOURCE_NAME,
            "host": host,
            "bucket_ids": sorted(selected.get("bucket_ids", ())),
            "entry_ids": sorted(selected.get("entry_ids", ())),
            "readers": json.dumps({bid: bucket or [] for bid, bucket in readers.items()}),
            "first": first,
        }
        with storage.client.connect() as conn:
            return conn.execute(sqlalchemy.text(self.BURY), placeholders).scalar()


class StatesFunction:
    """``STATES`` as a PL/pgSQL function, installed by ``kinto migrate``.

    Sent as a statement, it is planned on every write (about half of its
    cost); a function's plan is cached by each connection. Its name carries a
    digest of its text: a server finds only the function of its own version,
    and uses the statement (with a warning) until ``kinto migrate`` installs it.
    """

    # SQLAlchemy's placeholders: ``:name``, but not ``::`` casts.
    PLACEHOLDER = re.compile(r"(?<![:\w\\]):(\w+)(?!:)")

    def __init__(self, statement: str, parameters: dict[str, str]) -> None:
        found = list(dict.fromkeys(self.PLACEHOLDER.findall(statement)))
        if sorted(found) != sorted(parameters):
            raise ValueError(f"Placeholders {found} differ from the parameters {list(parameters)}")
        body = self.PLACEHOLDER.sub(r"p_\1", statement.strip())
        arguments = ", ".join(f"p_{name} {kind}" for name, kind in parameters.items())
        definition = f"""({arguments})
        RETURNS TABLE (now BIGINT, newest_cursor BIGINT, states JSON)
        LANGUAGE plpgsql VOLATILE
        -- One plan for every call: the statement's plan does not depend on
        -- the values (index lookups for each collection).
        SET plan_cache_mode = force_generic_plan
        AS $$
        #variable_conflict use_column
        BEGIN
          RETURN QUERY {body};
        END
        $$"""
        digest = hashlib.sha256(definition.encode()).hexdigest()[:12]
        self.name = f"kinto_changes_states_{digest}"
        self.signature = f"{self.name}({', '.join(parameters.values())})"
        self.create = f"CREATE OR REPLACE FUNCTION {self.name}{definition}"
        self.call = f"SELECT * FROM {self.name}({', '.join(f':{name}' for name in parameters)})"

    def is_installed(self, conn) -> bool:
        query = sqlalchemy.text("SELECT to_regprocedure(:signature) IS NOT NULL")
        return conn.execute(query, {"signature": self.signature}).scalar()

    def is_usable(self, conn) -> bool:
        """Installed, and executable by the server's role (else a warning)."""
        query = sqlalchemy.text(
            "SELECT COALESCE("
            "  has_function_privilege(to_regprocedure(:signature), 'EXECUTE'), FALSE)"
        )
        usable = conn.execute(query, {"signature": self.signature}).scalar()
        if not usable:
            logger.warning(
                f"kinto_changes: function {self.name} not found, or not executable by this "
                "role: run `kinto migrate` (until then, each write plans its statement again)."
            )
        return usable

    def install(self, client, dry_run: bool = False) -> None:
        """Create the function unless it exists (``kinto migrate`` runs may be concurrent)."""
        with client.connect(force_commit=not dry_run) as conn:
            if not dry_run:
                conn.execute(sqlalchemy.text(PostgreSQLCursorLock.LOCK), {"key": INSTALL_LOCK_KEY})
            if self.is_installed(conn):
                logger.info(f"kinto_changes: function {self.name} already installed.")
            elif dry_run:
                logger.info(f"kinto_changes: would install function {self.name}.")
            else:
                conn.execute(sqlalchemy.text(self.create))
                logger.info(f"kinto_changes: function {self.name} installed.")


def cursor_lock_for(storage: StorageBase) -> MemoryCursorLock | PostgreSQLCursorLock:
    return PostgreSQLCursorLock() if hasattr(storage, "client") else MemoryCursorLock()


class EntryWriter:
    """Write the entries of the changed collections, under the cursor lock."""

    def __init__(self, registry) -> None:
        self.storage: StorageBase = registry.storage
        self.permission = registry.permission
        self.lock = registry.changes_cursor_lock
        self.forgetting = registry.changes_forgetting
        self.settings: ChangesSettings = registry.changes

    def write(self, pending: Pending) -> None:
        """Write the entries of the collections that ``pending`` touched, the
        principals of its buckets, and one record of the access it changed."""
        host = self.settings.http_host
        keys = list(dict.fromkeys((c.bucket_id, c.collection_id) for c in pending.changes))
        changed = {(c.bucket_id, c.collection_id) for c in pending.changes if c.access_changed}
        tracks = self.settings.monitors_everything
        with self.lock.acquire(
            self.storage, host, keys, resolve=changed, tracks_readers=tracks
        ) as locked:
            self.now, self.cursor = locked.now, locked.newest_cursor
            self.concerned = set(pending.concerned)
            # The entries of deleted buckets (not re-created) and of deleted
            # collections become tombstones in one go (``bury``).
            gone = [b for b in set(pending.deleted_buckets) if not bucket_exists(self.storage, b)]
            back = set(pending.deleted_buckets) - set(gone)
            deleted = [k for k in self._in_buckets(back) if k not in locked.states]
            states = {**locked.states, **read_states(self.storage, host, deleted)}
            self._read_buckets(states, changed, pending)
            readers = self._readers(states, changed)
            for (bucket_id, collection_id), state in states.items():
                # Also for record changes: Kinto checks the collection when a
                # request starts, and another request can delete it before the
                # record commits.
                if state.exists:
                    self.upsert(bucket_id, collection_id, state, readers)
                elif not state.entry:  # Never listed (created and deleted at once).
                    self.tombstone(bucket_id, collection_id, state, self.before.get(bucket_id))
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
        # A bucket that this transaction wrote and did not delete exists: on
        # PostgreSQL, its row lock holds a concurrent deletion until we commit
        # (Kinto's memory backend has no transactions to isolate anyway).
        written = set(pending.updated_buckets) - set(pending.deleted_buckets)
        existing = [b for b in bucket_ids if b in written or bucket_exists(self.storage, b)]
        self.after = buckets_readers(self.permission, existing)

    def _write_buckets(self) -> None:
        """Store the principals of the buckets that changed, appeared or went.

        Their collections' entries are left alone: readers see a bucket's
        collections through its record. Who gained or lost one of its
        principals is concerned by the change (not for a new record: a new
        bucket has no collection yet, and an entry written before this record
        existed holds its bucket's principals too).
        """
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
            self.cursor = max(self.cursor + 1, self.now)
            log_access_change(self.storage, PARENT_ID, self.cursor, self.concerned)
            horizon = self.settings.since_horizon(self.now)
            self.forgetting.forget(self.storage, PARENT_ID, self.now, before=horizon)

    def _lost(self, bucket_id: str, old_readers, new_readers) -> set[str]:
        """Principals that could read a collection through it or its bucket, and no more."""
        before = self.before.get(bucket_id) or ()
        after = self.after[bucket_id] if bucket_id in self.after else before
        return {*old_readers, *before} - {*new_readers, *after}

    def _readers(self, states: dict, access_changed: set) -> dict[tuple[str, str], list[str]]:
        """The readers to resolve again: where access changed, where never
        resolved, and for a collection back after a tombstone.

        Only with nothing configured: otherwise every reader sees every entry.
        """
        if not self.settings.monitors_everything:
            return {}
        keys = [
            key
            for key, state in states.items()
            if state.exists
            and (key in access_changed or READERS not in state.entry or state.entry.get("deleted"))
        ]
        return collections_readers(self.permission, keys) if keys else {}

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
        # Kinto notifies the events of a /batch sub-request even when a later
        # 409 rolled it back: an unchanged entry keeps its cursor, so that
        # pollers are not told about a change that did not happen. New
        # readers get a new cursor, dated now (the records timestamp is
        # unchanged), so that their ``_since`` polls show what they may now
        # read; those who may no longer read it are concerned by the change.
        if moved or entry.get(READERS) != new_readers:
            extra = {RECORDS_TIMESTAMP: timestamp}
            if new_readers is not None:
                extra[READERS] = new_readers
            # Also when a collection comes back: the readers of its tombstone
            # that may not read it now had it in their view.
            self.concerned |= self._lost(bucket_id, entry.get(READERS, ()), new_readers or ())
            self._store(bucket_id, collection_id, timestamp if moved else self.now, extra)

    def tombstone(
        self, bucket_id: str, collection_id: str, state: CollectionState, bucket_readers
    ) -> None:
        if not state.entry.get("deleted"):
            self.cursor = max(self.cursor + 1, self.now)
            entry = {**state.entry, "bucket": bucket_id, "collection": collection_id}
            tombstone = tombstone_of(entry, self.settings.http_host, bucket_readers, self.cursor)
            object_id = entry_id(self.settings.http_host, bucket_id, collection_id)
            self.lock.store(self.storage, object_id, tombstone)

    def bury(self, bucket_ids: list[str], keys: list[tuple[str, str]]) -> None:
        """Tombstones for every live entry of these deleted buckets and
        collections, in one go (one statement on PostgreSQL)."""
        if bucket_ids or keys:
            host, first = self.settings.http_host, max(self.cursor + 1, self.now)
            entry_ids = [entry_id(host, *key) for key in keys]
            buried = self.lock.bury(
                self.storage, host, first, self.before, bucket_ids=bucket_ids, entry_ids=entry_ids
            )
            self.cursor = first + buried - 1 if buried else self.cursor

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
        self.lock.store(self.storage, object_id, entry)

    def _in_buckets(self, bucket_ids: list[str]) -> dict[tuple[str, str], dict]:
        """The live entries of the collections of these buckets."""
        return self._live_entries(Filter("bucket", list(bucket_ids), COMPARISON.IN))

    def _live_entries(self, selector: Filter) -> dict[tuple[str, str], dict]:
        if not selector.value:
            return {}
        filters = [
            selector,
            Filter("host", self.settings.http_host, COMPARISON.EQ),
            Filter("deleted", True, COMPARISON.NOT),
        ]
        entries = iter_objects(self.storage, RESOURCE_NAME, PARENT_ID, filters=filters)
        return {(e["bucket"], e["collection"]): e for e in entries}


def tombstone_of(entry: dict, host: str, bucket_readers, cursor: int) -> dict:
    """A collection's entry once it is deleted, at ``cursor`` (its timestamp too).

    Kinto deleted the permissions of the collection (and of its bucket, when
    the bucket is deleted): the tombstone keeps the principals they had.
    """
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


def _stored(storage: StorageBase, object_id: str) -> dict:
    """A stored entry (empty if none)."""
    try:
        return storage.get(resource_name=RESOURCE_NAME, parent_id=PARENT_ID, object_id=object_id)
    except storage_exceptions.ObjectNotFoundError:
        return {}


def bucket_exists(storage: StorageBase, bucket_id: str) -> bool:
    try:
        storage.get(resource_name="bucket", parent_id="", object_id=bucket_id)
    except storage_exceptions.ObjectNotFoundError:
        return False
    return True


def _exists(storage: StorageBase, bucket_id: str, collection_id: str) -> bool:
    try:
        storage.get(
            resource_name="collection", parent_id=f"/buckets/{bucket_id}", object_id=collection_id
        )
    except storage_exceptions.ObjectNotFoundError:
        return False
    return True
