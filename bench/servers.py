"""The Kinto servers under test, their databases, and the data they hold.

Every variant runs from the same settings; only ``kinto.includes`` differs
(the plugin's own settings are ignored by a Kinto without the plugin).
"""

import base64
import contextlib
import os
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy

from bench.loadgen import Client
from tests.server import KintoServer, run_kinto


ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/kc_bench"

BUCKET = "bench"  # Holds the N monitored collections.
REF_BUCKET, REF_COLLECTION = "ref", "reference"  # Holds N records; not monitored.
LIST_PATH = "/buckets/monitor/collections/changes"
REF_PATH = f"/buckets/{REF_BUCKET}/collections/{REF_COLLECTION}"
AUTH = {"Authorization": "Basic " + base64.b64encode(b"bench:bench").decode()}
# Kinto's default ``batch_max_requests``.
BATCH_SIZE = 25


def collection_id(index: int) -> str:
    return f"c{index:05d}"


def settings_for(backend: str, plugin: bool, database_url: str | None) -> dict:
    """Kinto settings of one variant: the same for all, but the plugin line."""
    settings = {
        "includes": "kinto_changes" if plugin else None,
        "multiauth.policies": "basicauth",
        "userid_hmac_secret": "bench-secret",
        "bucket_create_principals": "system.Authenticated",
        "cache_backend": "kinto.core.cache.memory",
        "changes.resources": f"/buckets/{BUCKET}",
    }
    if backend == "postgresql":
        settings.update(
            storage_backend="kinto.core.storage.postgresql",
            storage_url=database_url,
            permission_backend="kinto.core.permission.postgresql",
            permission_url=database_url,
        )
    else:
        settings.update(
            storage_backend="kinto.core.storage.memory",
            permission_backend="kinto.core.permission.memory",
        )
    return settings


def postgresql_available(database_url: str) -> str | None:
    """``None`` when PostgreSQL answers, else the reason why not."""
    try:
        with admin_engine(database_url).connect() as conn:
            conn.execute(sqlalchemy.text("SELECT 1"))
    except sqlalchemy.exc.OperationalError as error:
        return str(error).splitlines()[0]
    return None


def admin_engine(database_url: str) -> sqlalchemy.Engine:
    url = sqlalchemy.engine.make_url(database_url).set(drivername="postgresql+psycopg2")
    return sqlalchemy.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")


def recreate_database(database_url: str) -> None:
    """Drop and create the database: every run starts from an empty one."""
    name = sqlalchemy.engine.make_url(database_url).database
    engine = admin_engine(database_url)
    with engine.connect() as conn:
        conn.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()


def postgresql_version(database_url: str) -> str:
    engine = admin_engine(database_url)
    with engine.connect() as conn:
        version = conn.execute(sqlalchemy.text("SHOW server_version")).scalar()
    engine.dispose()
    return version


@dataclass
class Variant:
    """One running server: a backend, with or without the plugin."""

    backend: str
    plugin: bool
    server: KintoServer
    database_url: str | None = None
    size: int = 0  # Monitored collections (and reference records) it holds.
    written: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.backend}/{'plugin' if self.plugin else 'no plugin'}"

    @property
    def url(self) -> str:
        return self.server.url

    def client(self) -> Client:
        return Client(self.url)


@contextlib.contextmanager
def running_variants(backends: list[str], database_url: str) -> Iterator[list[Variant]]:
    """Start one server per backend and plugin setting, stop them all at the end."""
    variants = []
    with contextlib.ExitStack() as stack:
        for backend in backends:
            for plugin in (True, False):
                url = None
                if backend == "postgresql":
                    url = database_url if plugin else f"{database_url}_plain"
                    recreate_database(url)
                server = KintoServer(settings_for(backend, plugin, url), env=server_env())
                if url:
                    migrated = run_kinto("migrate", "--ini", str(server.ini))
                    if migrated.returncode != 0:
                        raise RuntimeError(f"kinto migrate failed:\n{migrated.stderr}")
                stack.enter_context(server)
                variants.append(Variant(backend, plugin, server, url))
        for variant in variants:
            create_containers(variant)
        yield variants


def server_env() -> dict:
    """The worktree first in ``PYTHONPATH``: the servers import this checkout's plugin."""
    python_path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    return {"PYTHONPATH": python_path}


def create_containers(variant: Variant) -> None:
    client = variant.client()
    client.json("PUT", f"/buckets/{BUCKET}", AUTH, {}, expect=201)
    client.json("PUT", f"/buckets/{REF_BUCKET}", AUTH, {}, expect=201)
    everyone = {"data": {}, "permissions": {"read": ["system.Everyone"]}}
    client.json("PUT", REF_PATH, AUTH, everyone, expect=201)
    client.close()


def fill_requests(start: int, stop: int) -> Iterator[dict]:
    """Collections ``start`` to ``stop`` and as many reference records.

    A reference record has the fields of a list entry, with values of the
    same length, so that both answers weigh the same.
    """
    for index in range(start, stop):
        cid = collection_id(index)
        yield {"method": "PUT", "path": f"/buckets/{BUCKET}/collections/{cid}", "body": {}}
        record = {"bucket": BUCKET, "collection": cid, "host": ""}
        yield {"method": "PUT", "path": f"{REF_PATH}/records/{uuid.uuid4()}", "body": record}


def grow(variants: list[Variant], size: int) -> None:
    """Bring every variant to ``size`` collections and reference records, in parallel.

    Then refresh PostgreSQL's statistics, as its autovacuum would at some
    point: query plans no longer depend on when it last ran.
    """
    with ThreadPoolExecutor(len(variants)) as pool:
        for future in [pool.submit(_grow, variant, size) for variant in variants]:
            future.result()
    for variant in variants:
        if variant.database_url:
            analyze(variant.database_url)


def analyze(database_url: str) -> None:
    url = sqlalchemy.engine.make_url(database_url).set(drivername="postgresql+psycopg2")
    engine = sqlalchemy.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sqlalchemy.text("VACUUM ANALYZE"))
    engine.dispose()


def _grow(variant: Variant, size: int) -> None:
    client = variant.client()
    requests = list(fill_requests(variant.size, size))
    for start in range(0, len(requests), BATCH_SIZE):
        chunk = requests[start : start + BATCH_SIZE]
        body = {"requests": [{**r, "body": {"data": r["body"]}} for r in chunk]}
        answer = client.json("POST", "/batch", AUTH, body)
        failed = [r for r in answer["responses"] if r["status"] >= 400]
        if failed:
            raise RuntimeError(f"{variant.name}: batch failed: {failed[0]}")
    client.close()
    variant.size = size
