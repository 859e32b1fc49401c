"""The PostgreSQL backend of the writer and the list: the SQL that pays off
(docs/design.rst, "What the cursor costs writers"). Each statement mirrors what
Kinto's storage API does for :class:`kinto_changes.writer.MemoryBackend`, and
is tested against it (``tests/test_read_write_paths.py``).
"""

import contextlib
import hashlib
import logging
import re
from collections.abc import Iterator

from kinto.core.storage import MISSING, Filter, Sort, StorageBase
from kinto.core.utils import COMPARISON, json, sqlalchemy

from .utils import entry_id
from .writer import PARENT_ID, RESOURCE_NAME, CollectionState, Locked


logger = logging.getLogger(__name__)

# Key of the advisory lock that serialises cursor assignment.
ADVISORY_LOCK_KEY = int.from_bytes(b"kchanges", "big") >> 1
# Key of the one that serialises the installs of the function by ``kinto migrate``.
INSTALL_LOCK_KEY = int.from_bytes(b"kchinsta", "big") >> 1


class PostgreSQLBackend:
    """Cursors in commit order between every process sharing the database: an
    advisory lock held until the transaction commits."""

    # ``LOCK`` and ``STATES`` go in one round trip (psycopg2 binds parameters
    # client-side); ``STATES`` takes its snapshot once the lock is granted, so
    # it sees what the previous holder committed. It reads what ``read_states``
    # and ``newest_cursor`` read (without storing a missing records timestamp),
    # and upserts the entries of record writes as ``EntryWriter.upsert`` would
    # (Kinto's ``storage.update`` statement), returning them so that the writer
    # leaves them alone. The cursor rule, with cursor_0 the newest cursor and
    # v_i = min(records timestamp, now) of the i-th entry written:
    # cursor_i = max(cursor_{i-1} + 1, v_i) = i + max(cursor_0, max over j <= i of v_j - j).
    LOCK = "SELECT pg_advisory_xact_lock(:key);"
    # Wakes the waiting requests of every process (``waiting``) when the
    # transaction commits, and not before: PostgreSQL delivers it then.
    NOTIFY = "SELECT pg_notify('kinto_changes', '');"
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

    def __init__(self, max_fetch_size: int = 10000) -> None:
        self.max_fetch_size = max_fetch_size  # Kinto's ``storage_max_fetch_size``.
        self.function = StatesFunction(self.STATES, self.PARAMETERS)
        # Whether the function is installed and executable: checked at the
        # first write, and again after a call failed (e.g. it was dropped).
        self.function_usable: bool | None = None

    @contextlib.contextmanager
    def locked(
        self, storage: StorageBase, host: str, keys: list, resolve=frozenset(), tracks_readers=True
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
            query = sqlalchemy.text(f"{self.LOCK} {self.NOTIFY} {states}")
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

    # ``MemoryBackend.bury`` in one statement: ``tombstone_of`` each live entry,
    # at cursors ``first``, ``first + 1``... in the order of their ids, written
    # as Kinto's ``storage.update`` does (its trigger keeps a newer ``last_modified``).
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

    def list_entries(self, storage: StorageBase, **query) -> list[dict] | None:
        """What ``storage.list_all(RESOURCE_NAME, PARENT_ID, **query)`` returns,
        or ``None`` for a query ``LIST`` does not translate."""
        holders = {"parent_id": PARENT_ID, "resource_name": RESOURCE_NAME}
        where = all_of(query.get("filters") or [], "f", holders)
        rules = query.get("pagination_rules") or []
        alternatives = [all_of(rule, f"r{i}_", holders) for i, rule in enumerate(rules)]
        if where is None or None in alternatives:
            return None
        conditions = [where] if query.get("include_deleted") else ["NOT deleted", where]
        if alternatives:
            conditions.append("(" + " OR ".join(f"({rule})" for rule in alternatives) + ")")
        sorting = query.get("sorting") or []
        sorts = [sort_expression(sort, f"s{i}", holders) for i, sort in enumerate(sorting)]
        limit = query.get("limit")
        holders["limit"] = min(self.max_fetch_size + 1, limit) if limit else self.max_fetch_size
        sql = LIST.format(
            conditions="".join(f" AND {c}" for c in conditions),
            sorting=f"ORDER BY {', '.join(sorts)}" if sorts else "",
        )
        with storage.client.connect(readonly=True) as conn:
            rows = conn.execute(sqlalchemy.text(sql), holders).fetchall()
        entries = json.loads(f"[{','.join(row.data for row in rows)}]")
        for entry, row in zip(entries, rows, strict=True):
            entry["id"], entry["last_modified"] = row.id, row.last_modified
        return entries

    def install(self, storage: StorageBase, client=None, dry_run: bool = False) -> None:
        """``kinto migrate``: install the function of ``STATES``."""
        self.function.install(client or storage.client, dry_run)


class StatesFunction:
    """``STATES`` as a PL/pgSQL function, installed by ``kinto migrate``: each
    connection plans it once (planning a statement was half its cost). Its name
    carries a digest of its text: a server uses only its own version's function,
    and the statement (with a warning) until ``kinto migrate`` installs it."""

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
                conn.execute(sqlalchemy.text(PostgreSQLBackend.LOCK), {"key": INSTALL_LOCK_KEY})
            if self.is_installed(conn):
                logger.info(f"kinto_changes: function {self.name} already installed.")
            elif dry_run:
                logger.info(f"kinto_changes: would install function {self.name}.")
            else:
                conn.execute(sqlalchemy.text(self.create))
                logger.info(f"kinto_changes: function {self.name} installed.")


# ``storage.list_all`` for the list's entries: Kinto's query
# (``kinto.core.storage.postgresql.Storage.list_all``) for the filters, sorts and
# pagination rules the list builds (``None`` for any other), with the rows' JSON
# parsed in one call by Kinto's parser (rapidjson): psycopg2 parses ``jsonb``
# row by row with the standard ``json``, most of a 10,000-entry list's cost.
LIST = """
SELECT id, as_epoch(last_modified) AS last_modified, data::TEXT AS data
  FROM objects
 WHERE parent_id = :parent_id AND resource_name = :resource_name
   {conditions}
 {sorting}
 LIMIT :limit
"""
# Kinto's SQL operators, and its treatment of a data field missing from an
# object: no match for some operators, a match for others.
OPERATORS = {
    COMPARISON.EQ: "=",
    COMPARISON.NOT: "<>",
    COMPARISON.LT: "<",
    COMPARISON.GT: ">",
    COMPARISON.MAX: "<=",
    COMPARISON.MIN: ">=",
}
MISSING_MATCHES = {COMPARISON.NOT, COMPARISON.EXCLUDE, COMPARISON.GT, COMPARISON.MIN}
MANY = {COMPARISON.IN: "= ANY", COMPARISON.EXCLUDE: "<> ALL"}


def all_of(filters: list[Filter], prefix: str, holders: dict) -> str | None:
    """Filters ANDed, ``None`` if one is not translated."""
    parts = [condition(f, f"{prefix}{i}", holders) for i, f in enumerate(filters)]
    return None if None in parts else " AND ".join(parts) or "TRUE"


def condition(f: Filter, name: str, holders: dict) -> str | None:
    """A filter in SQL, as Kinto writes it, with its values in ``holders``."""
    many = MANY.get(f.operator)
    if "." in f.field or f.value is MISSING or (many and not f.value):
        return None  # Kinto's ``IN (NULL)`` for an empty list: its own query.
    if f.field in ("id", "last_modified"):
        value = str(f.value) if f.field == "id" and isinstance(f.value, int) else f.value
        as_sql = "from_epoch(:{})" if f.field == "last_modified" else ":{}"
        if f.operator in OPERATORS:
            holders[name] = value
            return f"{f.field} {OPERATORS[f.operator]} {as_sql.format(name)}"
        if many and f.field == "id":
            holders[name] = [str(v) for v in value]
            return f"id {many}(CAST(:{name} AS TEXT[]))"
        return None
    holders[f"{name}_field"] = f.field
    column = f"data->:{name}_field"
    if f.operator == COMPARISON.HAS:
        return f"{column} IS {'NOT ' if f.value else ''}NULL"
    if f.operator in OPERATORS:
        holders[name] = json.dumps(f.value)
        sql = f"{column} {OPERATORS[f.operator]} CAST(:{name} AS JSONB)"
    elif many:
        holders[name] = [json.dumps(v) for v in f.value]
        sql = f"{column} {many}(CAST(:{name} AS JSONB[]))"
    elif f.operator == COMPARISON.CONTAINS_ANY:
        holders[name] = [json.dumps(v) for v in f.value]
        elements = f"(SELECT array_agg(e) FROM jsonb_array_elements({column}) AS e)"
        sql = f"jsonb_typeof({column}) = 'array' AND {elements} && CAST(:{name} AS JSONB[])"
    else:
        return None
    if f.operator in MISSING_MATCHES:
        return f"({column} IS NULL OR {sql})"
    if f.operator in (COMPARISON.EQ, COMPARISON.IN, COMPARISON.CONTAINS_ANY):
        return f"({column} IS NOT NULL AND {sql})"
    return f"({sql})"


def sort_expression(sort: Sort, name: str, holders: dict) -> str:
    """A sort in SQL, as Kinto writes it (nested fields too)."""
    if sort.field in ("id", "last_modified"):
        column = {"id": "id", "last_modified": "objects.last_modified"}[sort.field]
    else:
        column = "data"
        for i, part in enumerate(sort.field.split(".")):
            holders[f"{name}_{i}"] = part
            column += f"->:{name}_{i}"
    return f"{column} {'ASC' if sort.direction > 0 else 'DESC'}"
