"""Test harness: real Kinto apps (webtest), on memory and on PostgreSQL.

Subclass :class:`BaseWebTest` once per settings variant (override
``get_app_settings``); each test then runs on both backends. PostgreSQL tests
skip when the database is unreachable, except in CI (``CI`` set), where they
fail.
"""

import os

import kinto
import pytest
import sqlalchemy
import webtest
from kinto.core.storage import postgresql
from kinto.core.testing import get_request_class, get_user_headers

from kinto_changes.writer import PARENT_ID, RESOURCE_NAME


POSTGRESQL_URL = os.environ.get(
    "KINTO_CHANGES_TEST_DB", "postgresql://postgres@127.0.0.1:5432/kinto_changes_test"
)
BACKENDS = ("memory", "postgresql")

ALICE = get_user_headers("alice")
BOB = get_user_headers("bob")
LIST_URL = "/buckets/monitor/collections/changes/records"


def base_settings(backend: str) -> dict:
    """Kinto settings shared by every test app."""
    settings = {
        "includes": "kinto_changes",
        "multiauth.policies": "basicauth",
        "userid_hmac_secret": "tests-secret",
        "bucket_create_principals": "system.Authenticated",
        "cache_backend": "kinto.core.cache.memory",
    }
    if backend == "postgresql":
        settings.update(
            {
                "storage_backend": "kinto.core.storage.postgresql",
                "storage_url": POSTGRESQL_URL,
                "permission_backend": "kinto.core.permission.postgresql",
                "permission_url": POSTGRESQL_URL,
                "storage_pool_size": 5,
            }
        )
    else:
        settings.update(
            {
                "storage_backend": "kinto.core.storage.memory",
                "permission_backend": "kinto.core.permission.memory",
            }
        )
    return settings


def postgresql_engine(database: str | None = None, **kwargs) -> sqlalchemy.Engine:
    """An engine on the test database (or on ``database`` of the same server)."""
    url = sqlalchemy.engine.make_url(POSTGRESQL_URL).set(drivername="postgresql+psycopg2")
    return sqlalchemy.create_engine(url.set(database=database or url.database), **kwargs)


def listen_connections(engine: sqlalchemy.Engine, pid: int) -> set[int]:
    """The backend pids of the long poll's LISTEN connections of process ``pid``."""
    query = "SELECT pid FROM pg_stat_activity WHERE application_name = :name"
    with engine.connect() as conn:
        name = f"kinto_changes listener {pid}"
        return set(conn.execute(sqlalchemy.text(query), {"name": name}).scalars())


def ensure_postgresql() -> None:
    """Create the test database if needed; skip (or fail in CI) if unreachable."""
    name = sqlalchemy.engine.make_url(POSTGRESQL_URL).database
    try:
        admin = postgresql_engine("postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            exists = conn.execute(
                sqlalchemy.text("SELECT 1 FROM pg_database WHERE datname = :name"),
                {"name": name},
            ).scalar()
            if not exists:
                conn.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
    except sqlalchemy.exc.OperationalError as error:
        message = f"PostgreSQL unreachable at {POSTGRESQL_URL}: {error}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def make_app(settings: dict) -> webtest.TestApp:
    """A Kinto app with these settings, its schemas initialised (with the
    plugin's function on PostgreSQL, as ``kinto migrate`` installs it)."""
    wsgi_app = kinto.main({}, **settings)
    registry = wsgi_app.registry
    registry.storage.initialize_schema()
    registry.permission.initialize_schema()
    if hasattr(registry, "changes") and isinstance(registry.storage, postgresql.Storage):
        registry.changes_backend.function.install(registry.storage.client)
    app = webtest.TestApp(wsgi_app)
    app.RequestClass = get_request_class("v1")
    return app


def flush(app: webtest.TestApp) -> None:
    registry = app.app.registry
    registry.storage.flush()
    registry.permission.flush()
    registry.cache.flush()


class BaseWebTest:
    """A Kinto app with the plugin; every test runs on memory and PostgreSQL."""

    backend: str
    app: webtest.TestApp

    @classmethod
    def get_app_settings(cls, backend: str) -> dict:
        return base_settings(backend)

    @pytest.fixture(scope="class", autouse=True, params=BACKENDS)
    @classmethod
    def _app(cls, request):
        cls.backend = request.param
        if cls.backend == "postgresql":
            ensure_postgresql()
        cls.app = make_app(cls.get_app_settings(cls.backend))
        flush(cls.app)  # Whatever an interrupted run left in the database.
        yield
        flush(cls.app)

    @pytest.fixture(autouse=True)
    def _flush_after_test(self):
        yield
        flush(self.app)

    # Helpers, as a client would do it.

    def create_collection(self, bid: str, cid: str, headers=ALICE, **data) -> dict:
        self.app.put_json(f"/buckets/{bid}", {}, headers=headers, status=(200, 201))
        url = f"/buckets/{bid}/collections/{cid}"
        return self.app.put_json(url, {"data": data}, headers=headers).json["data"]

    def create_record(self, bid: str, cid: str, headers=ALICE, **data) -> dict:
        url = f"/buckets/{bid}/collections/{cid}/records"
        return self.app.post_json(url, {"data": data}, headers=headers).json["data"]

    def records_etag(self, bid: str, cid: str, headers=ALICE) -> int:
        response = self.app.get(f"/buckets/{bid}/collections/{cid}/records", headers=headers)
        return int(response.headers["ETag"].strip('"'))

    def get_list(self, params: str = "", headers=ALICE, status=200, url=LIST_URL):
        """The list as ``headers`` reads it: by default as Alice, who creates
        the collections of most tests (with nothing configured, a reader sees
        the collections they may read)."""
        query = f"?{params}" if params else ""
        return self.app.get(f"{url}{query}", headers=headers, status=status)

    def entries(self, params: str = "", **kwargs) -> dict:
        """The list as ``{(bucket, collection): entry}``."""
        data = self.get_list(params, **kwargs).json["data"]
        return {(e["bucket"], e["collection"]): e for e in data}

    def stored_entries(self, **query) -> list[dict]:
        """The entries as stored (``_readers``, cursors), through the storage API."""
        storage = self.app.app.registry.storage
        return storage.list_all(resource_name=RESOURCE_NAME, parent_id=PARENT_ID, **query)

    def grant_read(self, bid: str, cids: list[str], headers=BOB) -> str:
        """Let the user of ``headers`` read these collections (Alice's); their id."""
        user_id = self.app.get("/", headers=headers).json["user"]["id"]
        grant = {"permissions": {"read": [user_id]}}
        for cid in cids:
            self.app.patch_json(f"/buckets/{bid}/collections/{cid}", grant, headers=ALICE)
        return user_id

    def list_etag(self, **kwargs) -> int:
        return int(self.get_list(**kwargs).headers["ETag"].strip('"'))
