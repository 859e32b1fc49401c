"""Upgrade, with ``kinto migrate``, of a database written by the code of commit a09cdd0.

``upgrade/a09cdd0.sql`` is that database, filled through HTTP by
``upgrade/make_dump.py`` with that commit's code: several tenants, private,
public and shared buckets, grants to users, to ``system.Authenticated`` and
through groups, deleted collections and a deleted bucket. ``upgrade/a09cdd0.json``
holds what each reader got from the list at one point (``recorded``, before the
last few changes) and just before the dump (``at_dump``).

The tests load the dump, run the migration as ``kinto migrate`` does, then
check what users see, never how it is stored (SPEC §3.1): each reader's list
is what they may read now, as Kinto lists it, and their earlier views
converge to it through ``_since`` polls, also after new writes and access
changes made by the current code.
"""

import hashlib
import json
from pathlib import Path
from urllib.parse import urlsplit

import kinto
import pytest
import sqlalchemy
import webtest
from kinto.core import scripts
from kinto.core.testing import get_user_headers

from .support import (
    ALICE,
    BOB,
    LIST_URL,
    POSTGRESQL_URL,
    base_settings,
    ensure_postgresql,
    make_app,
    postgresql_engine,
)


UPGRADE = Path(__file__).parent / "upgrade"
DUMP = UPGRADE / "a09cdd0.sql"
STATE = json.loads((UPGRADE / "a09cdd0.json").read_text())
CAROL = get_user_headers("carol")
READERS = {"alice": ALICE, "bob": BOB, "carol": CAROL, "anonymous": {}}


@pytest.fixture
def database(request) -> str:
    """The URL of a new database (one per test) holding the dump."""
    ensure_postgresql()
    # Kinto keeps one engine per URL: a database dropped and re-created
    # under the same name would leave it with dead connections.
    digest = hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:8]
    url = sqlalchemy.engine.make_url(POSTGRESQL_URL)
    name = f"{url.database}_upgrade_{digest}"
    admin = postgresql_engine("postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    load_dump(name)
    yield url.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def load_dump(name: str) -> None:
    """Run the dump's SQL, without the ``psql`` binary (its connection is
    closed afterwards: the dump changes the session's ``search_path``)."""
    engine = postgresql_engine(name, poolclass=sqlalchemy.pool.NullPool)
    connection = engine.raw_connection()
    try:
        with connection.cursor() as cursor:
            cursor.execute(DUMP.read_text())  # No parameters: no ``%`` interpolation.
        connection.commit()
    finally:
        connection.close()
    engine.dispose()


def settings_for(database: str) -> dict:
    return {
        **base_settings("postgresql"),
        "storage_url": database,
        "permission_url": database,
        # The user ids stored in the dump are derived from it.
        "userid_hmac_secret": "tests-secret",
        # The recorded ETags age: never answer them with the old ``_since`` redirect.
        "changes.since_max_age_days": "-1",
        # Tells who may read what (see ``readable``).
        "experimental_permissions_endpoint": "true",
    }


def kinto_migrate(settings: dict, dry_run: bool = False) -> None:
    """What ``kinto migrate [--dry-run]`` does once it has built the app from its ini."""
    registry = kinto.main({"command": "migrate"}, **settings).registry
    scripts.migrate({"registry": registry}, dry_run=dry_run)


def upgraded_app(database: str) -> webtest.TestApp:
    """The current code's app on the dump, after ``kinto migrate``."""
    settings = settings_for(database)
    kinto_migrate(settings)
    return make_app(settings)


# What readers see.


def etag(response) -> int:
    return int(response.headers["ETag"].strip('"'))


def by_id(entries: list[dict]) -> dict[str, dict]:
    return {entry["id"]: entry for entry in entries}


def plain_list(app, reader: str) -> tuple[int, dict[str, dict]]:
    """A reader's list: its ETag and its entries by id."""
    response = app.get(LIST_URL, headers=READERS[reader])
    return etag(response), by_id(response.json["data"])


def readable(app, reader: str, bucket_ids: list[str]) -> dict[tuple[str, str], int]:
    """``{(bucket, collection): records ETag}`` of the collections the reader may
    read now: Kinto's listing of each bucket's collections for the reader, less
    those where Kinto's permissions endpoint gives them no ``read`` on the
    collection or its bucket (Kinto also lists the collections where they may
    only create records, which do not count)."""
    headers, found = READERS[reader], {}
    permissions = app.get("/permissions", headers=headers).json["data"]
    granted = {p["uri"] for p in permissions if "read" in p["permissions"]}
    for bid in bucket_ids:
        listed = app.get(f"/buckets/{bid}/collections", headers=headers, status=(200, 401, 403))
        for collection in listed.json.get("data", []):
            uri = f"/buckets/{bid}/collections/{collection['id']}"
            if {f"/buckets/{bid}", uri} & granted:
                found[(bid, collection["id"])] = etag(app.get(f"{uri}/records", headers=headers))
    return found


def poll(app, reader: str, since: int, view: dict[str, dict]) -> tuple[int, dict[str, dict]]:
    """A client's ``_since`` poll applied to its view: the status and the new view.

    A redirect replaces the view with the full list; otherwise tombstones
    remove entries and the others replace them.
    """
    headers = READERS[reader]
    response = app.get(f"{LIST_URL}?_since={since}", headers=headers, status=(200, 307))
    if response.status_code == 307:
        location = urlsplit(response.location)
        path = location.path.removeprefix("/v1")
        full = app.get(f"{path}?{location.query}" if location.query else path, headers=headers)
        return 307, by_id(full.json["data"])
    assert etag(response) >= since
    answer = by_id(response.json["data"])
    # Nobody learns about collections they could not read (SPEC §3.1): the
    # answer names those of their view, those they read now, or those they
    # could read in between (among them, in these tests, those of the
    # recorded views).
    _, now = plain_list(app, reader)
    known = set(view) | set(now) | shown_before_the_dump(reader)
    assert set(answer) <= known, f"{reader} told about others' collections"
    polled = {**view, **answer}
    return 200, {i: entry for i, entry in polled.items() if not entry.get("deleted")}


def assert_converges(app, reader: str, since: int, view: dict, bucket_ids: list[str]) -> int:
    """The reader's view, updated by a ``_since`` poll, is their list now, which
    lists what they may read now. Returns the poll's status."""
    status, polled = poll(app, reader, since, view)
    _, now = plain_list(app, reader)
    assert polled == now, f"{reader}'s view after _since={since}"
    listed = {(e["bucket"], e["collection"]): e["last_modified"] for e in now.values()}
    assert listed == readable(app, reader, bucket_ids), f"{reader}'s list"
    return status


def shown_before_the_dump(reader: str) -> set[str]:
    """The ids of the entries the reader's recorded lists held."""
    return {
        entry["id"]
        for moment in ("recorded", "at_dump")
        for entry in STATE[moment][reader]["entries"]
    }


def views(app) -> dict[str, tuple[int, dict[str, dict]]]:
    return {reader: plain_list(app, reader) for reader in READERS}


def recorded(moment: str) -> dict[str, tuple[int, dict[str, dict]]]:
    """Each reader's ETag and view at a moment before the dump."""
    return {
        reader: (int(seen["etag"].strip('"')), by_id(seen["entries"]))
        for reader, seen in STATE[moment].items()
    }


# Before the first change.


def test_readers_see_what_they_saw_before_the_upgrade(database):
    app = upgraded_app(database)
    for user, user_id in STATE["user_ids"].items():
        assert app.get("/", headers=READERS[user]).json["user"]["id"] == user_id
    for reader, (etag_before, entries_before) in recorded("at_dump").items():
        etag_now, entries_now = plain_list(app, reader)
        # The same entries (ids included: clients keep their state), the same timestamps.
        assert entries_now == entries_before, reader
        assert etag_now >= etag_before, reader
        listed = {(e["bucket"], e["collection"]): e["last_modified"] for e in entries_now.values()}
        assert listed == readable(app, reader, STATE["buckets"]), reader


def test_polls_from_before_the_upgrade_converge(database):
    # Deleted after the first recorded views: tombstones to deliver.
    deleted = {("alice-private", "drafts"), ("doomed", "a"), ("doomed", "b")}
    seen = {
        (e["bucket"], e["collection"])
        for _, v in recorded("recorded").values()
        for e in v.values()
    }
    assert deleted <= seen
    app = upgraded_app(database)
    for moment in ("recorded", "at_dump"):
        for reader, (since, view) in recorded(moment).items():
            assert_converges(app, reader, since, view, STATE["buckets"])


def test_polls_from_before_the_upgrade_are_not_redirected(database):
    """No access was lost between the recorded views and the dump, and the
    upgrade changes nobody's access: no reader is sent to the full list
    (SPEC §3.1: never for readers no access change concerned)."""
    app = upgraded_app(database)
    statuses = {
        (moment, reader): poll(app, reader, since, view)[0]
        for moment in ("recorded", "at_dump")
        for reader, (since, view) in recorded(moment).items()
    }
    assert statuses == dict.fromkeys(statuses, 200)


def snapshot(database: str) -> dict:
    """Every table's rows, columns and indexes, and every function's definition."""
    engine = postgresql_engine(sqlalchemy.engine.make_url(database).database)
    queries = {
        "tables": "SELECT table_name, column_name, data_type FROM information_schema.columns"
        " WHERE table_schema = 'public'",
        "indexes": "SELECT indexdef FROM pg_indexes WHERE schemaname = 'public'",
        "functions": "SELECT pg_get_functiondef(p.oid) FROM pg_proc p"
        " JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public'",
    }
    with engine.connect() as conn:
        state = {
            name: sorted(map(tuple, conn.execute(sqlalchemy.text(q))))
            for name, q in queries.items()
        }
        for (table,) in conn.execute(
            sqlalchemy.text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        ):
            rows = conn.execute(sqlalchemy.text(f'SELECT t::text FROM public."{table}" t'))
            state[table] = sorted(rows.scalars())
    engine.dispose()
    return state


def test_dry_run_changes_nothing_and_a_second_run_is_harmless(database):
    settings = settings_for(database)
    loaded = snapshot(database)
    kinto_migrate(settings, dry_run=True)
    assert snapshot(database) == loaded

    app = upgraded_app(database)
    seen, migrated = views(app), snapshot(database)
    kinto_migrate(settings)
    assert snapshot(database) == migrated
    assert views(app) == seen


# After changes made by the current code.


def test_writes_and_grants_after_the_upgrade_converge(database):
    app = upgraded_app(database)
    after_upgrade = views(app)
    ids = STATE["user_ids"]
    alice, bob, carol = ids["alice"], ids["bob"], ids["carol"]
    app.post_json("/buckets/alice-private/collections/notes/records", {"data": {}}, headers=ALICE)
    app.post_json("/buckets/lab/collections/results/records", {"data": {}}, headers=CAROL)
    app.post_json("/buckets/public/collections/calendar/records", {"data": {}}, headers=ALICE)
    # Granted on a bucket: Carol may read Alice's private collections (not
    # the one deleted before the dump).
    app.patch_json("/buckets/alice-private", {"permissions": {"read": [carol]}}, headers=ALICE)
    # Granted on a collection, and a new public bucket.
    grant = {"permissions": {"read": [carol, bob]}}  # Carol keeps hers.
    app.patch_json("/buckets/team/collections/secret", grant, headers=ALICE)
    app.put_json("/buckets/fresh", {"permissions": {"read": ["system.Everyone"]}}, headers=BOB)
    app.put_json("/buckets/fresh/collections/c", {}, headers=BOB)
    app.post_json("/buckets/fresh/collections/c/records", {"data": {}}, headers=BOB)
    # A collection deleted, another one emptied.
    app.delete("/buckets/members/collections/events", headers=BOB)
    app.delete("/buckets/public/collections/news/records", headers=ALICE)
    # Read granted to a group before it exists, then to its first member.
    grant = {"permissions": {"read": ["/buckets/lab/groups/readers"]}}
    app.patch_json("/buckets/lab/collections/results", grant, headers=CAROL)
    app.put_json("/buckets/lab/groups/readers", {"data": {"members": [alice]}}, headers=CAROL)

    bucket_ids = [*STATE["buckets"], "fresh"]
    for moment, seen in (("recorded", recorded("recorded")), ("upgrade", after_upgrade)):
        for reader, (since, view) in seen.items():
            status = assert_converges(app, reader, since, view, bucket_ids)
            if moment == "upgrade" and reader == "anonymous":
                assert status == 200, "No access change concerned the anonymous reader"


def test_access_lost_after_the_upgrade_converges(database):
    app = upgraded_app(database)
    after_upgrade = views(app)
    carol = STATE["user_ids"]["carol"]
    # Bob leaves the group that lets him write team/group-shared...
    app.put_json("/buckets/team/groups/editors", {"data": {"members": [carol]}}, headers=ALICE)
    # ... then Carol leaves it in the same /batch that deletes the collection.
    batch = {
        "requests": [
            {"method": "PUT", "path": "/buckets/team/groups/editors", "body": {"data": {}}},
            {"method": "DELETE", "path": "/buckets/team/collections/group-shared"},
        ]
    }
    responses = app.post_json("/batch", batch, headers=ALICE).json["responses"]
    assert [r["status"] for r in responses] == [200, 200]
    # Carol's bucket is no longer readable by Bob.
    app.patch_json("/buckets/lab", {"permissions": {"read": []}}, headers=CAROL)
    # The members' bucket is no longer readable by every authenticated user.
    app.patch_json("/buckets/members", {"permissions": {"read": []}}, headers=BOB)
    # Bob's bucket deleted before the dump is re-created by Carol, with a
    # collection of the same id: what Bob was told about it still holds.
    app.put_json("/buckets/doomed", {}, headers=CAROL)
    app.put_json("/buckets/doomed/collections/a", {}, headers=CAROL)

    for moment, seen in (("recorded", recorded("recorded")), ("upgrade", after_upgrade)):
        for reader, (since, view) in seen.items():
            status = assert_converges(app, reader, since, view, STATE["buckets"])
            if moment == "upgrade" and reader == "anonymous":
                assert status == 200, "No access change concerned the anonymous reader"
