"""Read replicas: ``kinto.readonly = true`` nodes sharing the PostgreSQL database (§4).

The read-only node connects with a database role that may only ``SELECT``:
every answer it gives below is proof that serving it wrote nothing.
PostgreSQL only: a memory backend cannot be shared between two apps.
"""

import kinto
import pytest
import sqlalchemy
import transaction
import webtest
from kinto.core import scripts
from kinto.core.storage import exceptions as storage_exceptions
from kinto.core.testing import get_request_class

from .server import run_kinto, write_ini
from .support import (
    ALICE,
    LIST_URL,
    POSTGRESQL_URL,
    base_settings,
    ensure_postgresql,
    flush,
    make_app,
)


def reader_url() -> str:
    """The database URL of a role that can read Kinto's tables, and nothing else."""
    url = sqlalchemy.engine.make_url(POSTGRESQL_URL).set(drivername="postgresql+psycopg2")
    role = f"{url.database}_reader"
    engine = sqlalchemy.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        exists = conn.execute(
            sqlalchemy.text("SELECT 1 FROM pg_roles WHERE rolname = :role"), {"role": role}
        ).scalar()
        if not exists:
            conn.execute(sqlalchemy.text(f'CREATE ROLE "{role}" LOGIN'))
        conn.execute(sqlalchemy.text(f'GRANT CONNECT ON DATABASE "{url.database}" TO "{role}"'))
        conn.execute(sqlalchemy.text(f'GRANT USAGE ON SCHEMA public TO "{role}"'))
        conn.execute(sqlalchemy.text(f'GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{role}"'))
    engine.dispose()
    return url.set(username=role).render_as_string(hide_password=False)


def replica_settings() -> dict:
    url = reader_url()
    return {
        **base_settings("postgresql"),
        "readonly": True,
        "storage_url": url,
        "permission_url": url,
    }


def read_only_app(settings: dict) -> webtest.TestApp:
    """Like ``make_app``, without initialising schemas (that would write)."""
    app = webtest.TestApp(kinto.main({}, **settings))
    app.RequestClass = get_request_class("v1")
    return app


class TestReadReplica:
    @pytest.fixture(scope="class", autouse=True)
    @classmethod
    def _apps(cls):
        ensure_postgresql()
        cls.primary = make_app(base_settings("postgresql"))
        flush(cls.primary)
        cls.replica_settings = replica_settings()
        cls.replica = read_only_app(cls.replica_settings)
        yield
        flush(cls.primary)

    @pytest.fixture(autouse=True)
    def _flush(self):
        yield
        flush(self.primary)

    def write(self, bid: str, cid: str, records: int = 1) -> None:
        self.primary.put_json(f"/buckets/{bid}", {}, headers=ALICE, status=(200, 201))
        url = f"/buckets/{bid}/collections/{cid}"
        self.primary.put_json(url, {"data": {}}, headers=ALICE, status=(200, 201))
        for _ in range(records):
            self.primary.post_json(f"{url}/records", {"data": {}}, headers=ALICE)

    def both(self, url: str, **kwargs) -> tuple:
        """The same request on both nodes, answered the same way."""
        on_primary = self.primary.get(url, headers=ALICE, **kwargs)
        on_replica = self.replica.get(url, headers=ALICE, **kwargs)
        assert on_replica.status_code == on_primary.status_code
        assert on_replica.headers.get("ETag") == on_primary.headers.get("ETag")
        assert on_replica.body == on_primary.body
        return on_replica

    def test_the_reader_role_cannot_write(self):
        storage = self.replica.app.registry.storage
        with pytest.raises(storage_exceptions.BackendError, match="permission denied"):
            storage.create(resource_name="record", parent_id="/buckets/b/collections/c", obj={})
        transaction.abort()

    def test_list_304_and_since_polls_give_the_primary_answers(self):
        for cid in ("c1", "c2", "c3"):
            self.write("b", cid, records=2)
        listed = self.both(LIST_URL)
        assert len(listed.json["data"]) == 3
        etag = listed.headers["ETag"]
        self.both(LIST_URL, status=304, extra_environ={"HTTP_IF_NONE_MATCH": etag})

        self.write("b", "c2")
        self.primary.delete("/buckets/b/collections/c3", headers=ALICE)
        changed = self.both(f"{LIST_URL}?_since={etag.strip(chr(34))}")
        assert {(e["collection"], e.get("deleted", False)) for e in changed.json["data"]} == {
            ("c2", False),
            ("c3", True),
        }
        self.both(f"{LIST_URL}?_limit=1&_sort=bucket,collection")

    def test_collection_created_a_moment_ago_is_readable_on_the_replica(self):
        self.write("b", "fresh", records=0)
        self.write("b", "filled", records=1)
        entries = {
            e["collection"]: e for e in self.replica.get(LIST_URL, headers=ALICE).json["data"]
        }
        for cid in ("fresh", "filled"):
            records = self.replica.get(f"/buckets/b/collections/{cid}/records", headers=ALICE)
            assert int(records.headers["ETag"].strip('"')) == entries[cid]["last_modified"]

    def test_migrate_does_nothing_on_a_read_only_node(self, tmp_path):
        # A collection written while the plugin was not enabled: catching up
        # would list it.
        without_plugin = make_app({**base_settings("postgresql"), "includes": ""})
        without_plugin.put_json("/buckets/b", {}, headers=ALICE)
        without_plugin.put_json("/buckets/b/collections/old", {"data": {}}, headers=ALICE)
        before = self.replica.get(LIST_URL, headers=ALICE)

        ini = write_ini(tmp_path / "replica.ini", self.replica_settings, port=0)
        result = run_kinto("migrate", "--ini", str(ini))
        assert result.returncode == 0, result.stderr
        assert "read-only node, nothing to catch up" in result.stderr

        after = self.replica.get(LIST_URL, headers=ALICE)
        assert (after.body, after.headers["ETag"]) == (before.body, before.headers["ETag"])
        # The same catch-up on the primary lists it.
        scripts.migrate({"registry": self.primary.app.registry})
        assert [
            e["collection"] for e in self.replica.get(LIST_URL, headers=ALICE).json["data"]
        ] == ["old"]
