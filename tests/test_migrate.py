"""Catch-up by ``kinto migrate`` (PostgreSQL: Kinto runs plugin migrations there only)."""

import logging

import pytest
import sqlalchemy
import transaction
from kinto.core.utils import msec_time

from .server import run_kinto, write_ini
from .support import (
    ALICE,
    BOB,
    LIST_URL,
    POSTGRESQL_URL,
    base_settings,
    ensure_postgresql,
    flush,
    make_app,
    postgresql_engine,
)


@pytest.fixture
def settings():
    ensure_postgresql()
    settings = base_settings("postgresql")
    yield settings
    flush(make_app(settings))


def migrate(tmp_path, settings: dict) -> str:
    ini = write_ini(tmp_path / "kinto.ini", settings, port=0)
    result = run_kinto("migrate", "--ini", str(ini))
    assert result.returncode == 0, result.stderr
    return result.stderr


def fill(app, collections) -> None:
    for bid, cid in collections:
        app.put_json(f"/buckets/{bid}", {}, headers=ALICE, status=(200, 201))
        app.put_json(f"/buckets/{bid}/collections/{cid}", {}, headers=ALICE, status=(200, 201))
        app.post_json(f"/buckets/{bid}/collections/{cid}/records", {"data": {}}, headers=ALICE)


def listed(app, params="", headers=ALICE) -> dict:
    data = app.get(f"{LIST_URL}?{params}", headers=headers).json["data"]
    return {(e["bucket"], e["collection"]): e for e in data}


def records_etag(app, bid, cid) -> int:
    url = f"/buckets/{bid}/collections/{cid}/records"
    return int(app.get(url, headers=ALICE).headers["ETag"].strip('"'))


def test_collections_created_before_the_plugin_are_listed_after_migrate(tmp_path, settings):
    without_plugin = make_app({**settings, "includes": ""})
    fill(without_plugin, [("a", "x"), ("a", "y"), ("b", "z")])
    app = make_app(settings)
    assert listed(app) == {}

    migrate(tmp_path, settings)

    entries = listed(app)
    assert set(entries) == {("a", "x"), ("a", "y"), ("b", "z")}
    for (bid, cid), entry in entries.items():
        assert entry["last_modified"] == records_etag(app, bid, cid)


def test_catch_up_after_the_plugin_was_disabled(tmp_path, settings):
    app = make_app(settings)
    fill(app, [("a", "x"), ("a", "y")])
    etag = int(app.get(LIST_URL, headers=ALICE).headers["ETag"].strip('"'))
    without_plugin = make_app({**settings, "includes": ""})
    without_plugin.post_json("/buckets/a/collections/x/records", {"data": {}}, headers=ALICE)
    without_plugin.delete("/buckets/a/collections/y", headers=ALICE)

    migrate(tmp_path, settings)

    since = listed(app, f"_since={etag}")
    assert since[("a", "x")]["last_modified"] == records_etag(app, "a", "x")
    assert since[("a", "y")]["deleted"] is True
    assert set(listed(app)) == {("a", "x")}
    # A second run has nothing left to do.
    assert "0 entries to catch up" in migrate(tmp_path, settings)


def test_collections_entering_the_monitored_set(tmp_path, settings):
    only_a = {**settings, "changes.resources": "/buckets/a"}
    app_a = make_app(only_a)
    fill(app_a, [("a", "x"), ("b", "z")])
    assert set(listed(app_a)) == {("a", "x")}

    app = make_app(settings)
    # Nothing configured: entries show their readers, who are resolved by migrate.
    assert set(listed(app)) == set()
    migrate(tmp_path, settings)
    entries = listed(app)
    assert set(entries) == {("a", "x"), ("b", "z")}
    assert entries[("b", "z")]["last_modified"] == records_etag(app, "b", "z")
    # Leaving the monitored set is immediate, no migration needed.
    assert set(listed(make_app(only_a))) == {("a", "x")}


def test_migrate_does_nothing_on_a_read_only_node(tmp_path, settings):
    without_plugin = make_app({**settings, "includes": ""})
    fill(without_plugin, [("a", "x")])
    app = make_app(settings)
    drop_function(app)
    migrate(tmp_path, {**settings, "readonly": "true"})
    assert listed(app) == {}
    assert not installed(app)  # A read-only node may point at a standby.


def test_permissions_changed_while_the_plugin_was_disabled(tmp_path, settings):
    app = make_app(settings)
    fill(app, [("a", "x"), ("a", "y")])
    bob = app.get("/", headers=BOB).json["user"]["id"]
    without_plugin = make_app({**settings, "includes": ""})
    grant = {"permissions": {"read": [bob]}}
    without_plugin.patch_json("/buckets/a/collections/x", grant, headers=ALICE)
    assert listed(app, headers=BOB) == {}

    migrate(tmp_path, settings)

    assert set(listed(app, headers=BOB)) == {("a", "x")}
    assert "0 entries to catch up" in migrate(tmp_path, settings)


def test_entries_without_readers_get_them(tmp_path, settings):
    # Entries written before readers were stored (an earlier 5.0 build), which
    # stored no principals of buckets either.
    app = make_app(settings)
    fill(app, [("a", "x")])
    storage = app.app.registry.storage
    with transaction.manager:
        storage.delete_all(resource_name="changes-bucket", parent_id="kinto_changes")
        for entry in storage.list_all(resource_name="changes", parent_id="kinto_changes"):
            del entry["_readers"]
            storage.update(
                resource_name="changes",
                parent_id="kinto_changes",
                object_id=entry["id"],
                obj=entry,
            )
    assert listed(app) == {}  # Nobody's yet: unknown readers are no readers.

    migrate(tmp_path, settings)

    assert set(listed(app)) == {("a", "x")}


def installed(app) -> bool:
    """Asked on a new connection (one in a transaction may not see new functions)."""
    function = app.app.registry.changes_backend.function
    engine = postgresql_engine()
    with engine.connect() as conn:
        query = sqlalchemy.text("SELECT to_regprocedure(:signature) IS NOT NULL")
        found = conn.execute(query, {"signature": function.signature}).scalar()
    engine.dispose()
    return found


def drop_function(app) -> None:
    function = app.app.registry.changes_backend.function
    with app.app.registry.storage.client.connect(force_commit=True) as conn:
        conn.execute(sqlalchemy.text(f"DROP FUNCTION IF EXISTS {function.signature}"))


def test_migrate_installs_the_function_of_the_cursor_lock(tmp_path, settings):
    app = make_app(settings)
    drop_function(app)
    assert not installed(app)

    ini = write_ini(tmp_path / "kinto.ini", settings, port=0)
    dry = run_kinto("migrate", "--dry-run", "--ini", str(ini))
    assert dry.returncode == 0, dry.stderr
    assert "would install function kinto_changes_states_" in dry.stderr
    assert not installed(app)

    assert "function kinto_changes_states_" in migrate(tmp_path, settings)
    assert installed(app)
    # Installed once: later runs (concurrent ones too) leave it alone.
    assert "already installed" in migrate(tmp_path, settings)
    dry = run_kinto("migrate", "--dry-run", "--ini", str(ini))
    assert "already installed" in dry.stderr


def test_writes_call_the_function_and_survive_its_removal(settings, caplog):
    app = make_app(settings)
    fill(app, [("a", "x")])  # Found at the first write, then called.
    drop_function(app)
    url = "/buckets/a/collections/x/records"
    # The write calling the dropped function fails as a whole...
    app.post_json(url, {"data": {"lost": True}}, headers=ALICE, status=503)
    records = app.get(url, headers=ALICE).json["data"]
    assert [r for r in records if r.get("lost")] == []
    # ... and the next one looks again: the statement, with a warning.
    with caplog.at_level(logging.WARNING, logger="kinto_changes"):
        app.post_json(url, {"data": {}}, headers=ALICE)
    assert any("run `kinto migrate`" in r.getMessage() for r in caplog.records)
    assert listed(app)[("a", "x")]["last_modified"] == records_etag(app, "a", "x")


def test_a_function_the_role_may_not_execute_is_not_used(settings):
    app = make_app(settings)
    function = app.app.registry.changes_backend.function
    engine = postgresql_engine()
    with engine.connect() as conn:  # Rolled back at the end: DDL is transactional.
        assert function.is_usable(conn)
        conn.execute(
            sqlalchemy.text(f"REVOKE EXECUTE ON FUNCTION {function.signature} FROM PUBLIC")
        )
        conn.execute(sqlalchemy.text("CREATE ROLE kinto_changes_test_restricted"))
        conn.execute(sqlalchemy.text("SET LOCAL ROLE kinto_changes_test_restricted"))
        assert function.is_installed(conn)
        assert not function.is_usable(conn)
        conn.rollback()
    engine.dispose()


def test_writes_work_until_migrate_installs_the_function(settings, caplog):
    app = make_app(settings)
    drop_function(app)  # make_app installed it, as ``kinto migrate`` would.
    with caplog.at_level(logging.WARNING, logger="kinto_changes"):
        fill(app, [("a", "x"), ("a", "y")])
        app.delete("/buckets/a/collections/y", headers=ALICE)
    warnings = [r.getMessage() for r in caplog.records if "run `kinto migrate`" in r.getMessage()]
    assert len(warnings) == 1  # At the first write, not at every write.

    entries = listed(app, f"_since={msec_time() - 60_000}")
    assert entries[("a", "x")]["last_modified"] == records_etag(app, "a", "x")
    assert entries[("a", "y")]["deleted"] is True
    # Cursors and timestamps as the function writes them, with the other app.
    other = make_app(settings)
    other.post_json("/buckets/a/collections/x/records", {"data": {}}, headers=ALICE)
    app.post_json("/buckets/a/collections/x/records", {"data": {}}, headers=ALICE)
    assert listed(other)[("a", "x")]["last_modified"] == records_etag(other, "a", "x")
    cursors = [e["last_modified"] for e in app.get(LIST_URL, headers=ALICE).json["data"]]
    assert len(cursors) == len(set(cursors))


def test_dry_run_on_a_database_never_migrated(tmp_path, settings):
    url = sqlalchemy.engine.make_url(POSTGRESQL_URL)
    name = f"{url.database}_fresh"
    fresh = url.set(database=name).render_as_string(hide_password=False)
    admin = postgresql_engine("postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    try:
        ini = write_ini(tmp_path / "kinto.ini", {**settings, "storage_url": fresh}, port=0)
        dry = run_kinto("migrate", "--dry-run", "--ini", str(ini))
        assert dry.returncode == 0, dry.stderr
        assert "no storage schema yet, nothing to catch up" in dry.stderr
    finally:
        with admin.connect() as conn:
            conn.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
