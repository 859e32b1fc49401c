"""The Kinto servers under test, their databases, and the data they hold.

Every variant runs from the same settings; only the plugin's lines differ:
``plugin`` monitors ``/buckets/bench`` (everyone sees every entry), ``no
plugin`` lacks ``kinto.includes`` (the plugin's settings are then ignored), and
``unconfigured`` has no ``collections`` setting, so each reader sees only the
entries of the collections they may read (README.rst, "Who sees what").
"""

import base64
import configparser
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy

from bench.loadgen import Client


ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/kc_bench"

BUCKET = "bench"  # Holds the N monitored collections.
REF_BUCKET, REF_COLLECTION = "ref", "reference"  # Holds N records; not monitored.
LIST_PATH = "/buckets/monitor/collections/changes"
REF_PATH = f"/buckets/{REF_BUCKET}/collections/{REF_COLLECTION}"
AUTH = {"Authorization": "Basic " + base64.b64encode(b"bench:bench").decode()}
# A second user, who may read the first ``READABLE`` collections of the
# ``unconfigured`` server only (``bench`` owns the bucket: it sees them all).
READER_AUTH = {"Authorization": "Basic " + base64.b64encode(b"reader:reader").decode()}
READABLE = 100
# A third user, who writes into their own bucket while ``bench`` toggles the
# read permission of its N collections' bucket (the ``noisy`` metric).
VICTIM_AUTH = {"Authorization": "Basic " + base64.b64encode(b"victim:victim").decode()}
VICTIM_PATH = "/buckets/victim/collections/own/records"
# Kinto's default ``batch_max_requests``.
BATCH_SIZE = 25


def collection_id(index: int) -> str:
    return f"c{index:05d}"


# ``small``: the plugin's settings, held at the smallest N for the whole run,
# so that ``since`` and ``notmod`` at N are compared with the same at the
# smallest N in the same rounds (not minutes apart, on a drifting machine).
KINDS = ("plugin", "no plugin", "unconfigured", "small")
# Kind -> suffix of its PostgreSQL database name: each server has its own.
DATABASE_SUFFIXES = {
    "plugin": "",
    "no plugin": "_plain",
    "unconfigured": "_open",
    "small": "_small",
}


def settings_for(backend: str, kind: str, database_url: str | None) -> dict:
    """Kinto settings of one variant: the same for all, but the plugin lines."""
    settings = {
        "includes": None if kind == "no plugin" else "kinto_changes",
        "multiauth.policies": "basicauth",
        "userid_hmac_secret": "bench-secret",
        "bucket_create_principals": "system.Authenticated",
        "cache_backend": "kinto.core.cache.memory",
        "changes.resources": None if kind == "unconfigured" else f"/buckets/{BUCKET}",
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


def run_sql(database_url: str, *statements: str, admin: bool = True):
    """Run ``statements`` in autocommit on the server's ``postgres`` database
    (on the URL's own if not ``admin``); the last one's scalar, if it has rows."""
    url = sqlalchemy.engine.make_url(database_url).set(drivername="postgresql+psycopg2")
    url = url.set(database="postgres") if admin else url
    engine = sqlalchemy.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            for statement in statements:
                result = conn.execute(sqlalchemy.text(statement))
            return result.scalar() if result.returns_rows else None
    finally:
        engine.dispose()


def postgresql_available(database_url: str) -> str | None:
    """``None`` when PostgreSQL answers, else the reason why not."""
    try:
        run_sql(database_url, "SELECT 1")
    except sqlalchemy.exc.OperationalError as error:
        return str(error).splitlines()[0]
    return None


def recreate_database(database_url: str) -> None:
    """Drop and create the database: every run starts from an empty one."""
    name = sqlalchemy.engine.make_url(database_url).database
    run_sql(
        database_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"'
    )


# The ``kinto`` command of this environment; the worktree first in
# ``PYTHONPATH``: the servers import this checkout's plugin.
KINTO = str(Path(sys.executable).parent / "kinto")
PYTHONPATH = os.pathsep.join(filter(None, (str(ROOT), os.environ.get("PYTHONPATH"))))
ENV = {**os.environ, "PYTHONPATH": PYTHONPATH}


class KintoServer:
    """``kinto start`` on a free port of 127.0.0.1, from an ini of ``settings``
    (written under ``kinto.``, but ``multiauth.``); stopped when the block exits."""

    def __init__(self, settings: dict, threads: int = 4) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/v1"
        self._tmp = tempfile.TemporaryDirectory(prefix="kinto-changes-")
        self.ini = Path(self._tmp.name) / "kinto.ini"
        self.log = Path(self._tmp.name) / "server.log"
        app = {"use": "egg:kinto"}
        for key, value in settings.items():
            if value is not None:
                app[key if key.startswith("multiauth.") else f"kinto.{key}"] = value
        ini = configparser.ConfigParser(interpolation=None)
        ini.read_dict(
            {
                "app:main": app,
                "server:main": {
                    "use": "egg:waitress#main",
                    "host": "127.0.0.1",
                    "port": port,
                    "threads": threads,
                },
                # The root logger at WARNING: ``kinto start`` sets INFO, a line per request.
                "loggers": {"keys": "root"},
                "handlers": {"keys": "console"},
                "formatters": {"keys": ""},
                "logger_root": {"level": "WARNING", "handlers": "console"},
                "handler_console": {"class": "StreamHandler", "args": "(sys.stderr,)"},
            }
        )
        with open(self.ini, "w") as file:
            ini.write(file)

    def migrate(self) -> None:
        command = [KINTO, "migrate", "--ini", str(self.ini)]
        run = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=120)
        if run.returncode != 0:
            raise RuntimeError(f"kinto migrate failed:\n{run.stderr}")

    def __enter__(self) -> "KintoServer":
        with open(self.log, "wb") as log:
            command = [KINTO, "start", "--ini", str(self.ini)]
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=ENV, start_new_session=True
            )
        deadline = time.monotonic() + 30
        while self.process.poll() is None and time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{self.url}/__heartbeat__", timeout=2)
                return self
            except OSError:
                time.sleep(0.1)
        message = f"Kinto exited or did not answer in 30 s:\n{self.log.read_text()}"
        self.__exit__()
        raise RuntimeError(message)

    def __exit__(self, *exc) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._tmp.cleanup()

    def peak_rss_kib(self) -> int:
        """Peak resident memory of the server process (VmHWM), in KiB."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        line = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
        return int(line.split()[1])


@dataclass
class Variant:
    """One running server: a backend and a kind (one of ``KINDS``)."""

    backend: str
    kind: str
    server: KintoServer
    database_url: str | None = None
    size: int = 0  # Monitored collections (and reference records) it holds.
    written: dict = field(default_factory=dict)
    reader_id: str | None = None  # Granted ``read`` here: on ``unconfigured`` only.

    @property
    def name(self) -> str:
        return f"{self.backend}/{self.kind}"

    @property
    def has_reference(self) -> bool:
        """Whether it holds the reference collection: not where nothing reads it.

        (It would also show in every list of ``unconfigured``, and filling
        its records there and on ``small`` would lengthen ``make bench-quick``
        for nothing.)
        """
        return self.kind in ("plugin", "no plugin")

    @property
    def url(self) -> str:
        return self.server.url

    def client(self) -> Client:
        return Client(self.url)


@contextlib.contextmanager
def running_variants(
    backends: list[str], database_url: str, kinds: tuple[str, ...] = KINDS
) -> Iterator[list[Variant]]:
    """Start one server per backend and kind, stop them all at the end."""
    variants = []
    with contextlib.ExitStack() as stack:
        for backend in backends:
            for kind in kinds:
                url = None
                if backend == "postgresql":
                    url = database_url + DATABASE_SUFFIXES[kind]
                    recreate_database(url)
                server = KintoServer(settings_for(backend, kind, url))
                if url:
                    server.migrate()
                stack.enter_context(server)
                variants.append(Variant(backend, kind, server, url))
        for variant in variants:
            create_containers(variant)
        yield variants


def create_containers(variant: Variant) -> None:
    """The buckets, the public reference collection; the reader's id on
    ``unconfigured``; the victim's bucket where the ``noisy`` metric writes."""
    client = variant.client()
    client.json("PUT", f"/buckets/{BUCKET}", AUTH, {}, expect=201)
    if variant.has_reference:
        client.json("PUT", f"/buckets/{REF_BUCKET}", AUTH, {}, expect=201)
        everyone = {"data": {}, "permissions": {"read": ["system.Everyone"]}}
        client.json("PUT", REF_PATH, AUTH, everyone, expect=201)
    if variant.kind == "unconfigured":
        variant.reader_id = client.json("GET", "/", READER_AUTH)["user"]["id"]
    if variant.kind in ("unconfigured", "no plugin"):
        client.json("PUT", "/buckets/victim", VICTIM_AUTH, {}, expect=201)
        client.json("PUT", VICTIM_PATH.rsplit("/", 1)[0], VICTIM_AUTH, {}, expect=201)
    client.close()


def fill_requests(
    start: int, stop: int, reference: bool = True, reader_id: str | None = None
) -> Iterator[dict]:
    """Collections ``start`` to ``stop`` and, with ``reference``, as many reference records.

    A reference record has the fields of a list entry, with values of the
    same length, so that both answers weigh the same. With a ``reader_id``,
    the first ``READABLE`` collections grant it ``read``.
    """
    for index in range(start, stop):
        cid = collection_id(index)
        collection = {"data": {}}
        if reader_id and index < READABLE:
            collection["permissions"] = {"read": [reader_id]}
        yield {"method": "PUT", "path": f"/buckets/{BUCKET}/collections/{cid}", "body": collection}
        if reference:
            record = {"bucket": BUCKET, "collection": cid, "host": ""}
            path = f"{REF_PATH}/records/{uuid.uuid4()}"
            yield {"method": "PUT", "path": path, "body": {"data": record}}


def grow(variants: list[Variant], size: int) -> None:
    """Bring every variant to ``size`` collections and reference records, in parallel.

    Then refresh PostgreSQL's statistics, as its autovacuum would at some
    point: query plans no longer depend on when it last ran.
    """
    if not variants:
        return
    with ThreadPoolExecutor(len(variants)) as pool:
        for future in [pool.submit(_grow, variant, size) for variant in variants]:
            future.result()
    for variant in variants:
        if variant.database_url:
            run_sql(variant.database_url, "VACUUM ANALYZE", admin=False)


def _grow(variant: Variant, size: int) -> None:
    client = variant.client()
    requests = list(fill_requests(variant.size, size, variant.has_reference, variant.reader_id))
    for start in range(0, len(requests), BATCH_SIZE):
        body = {"requests": requests[start : start + BATCH_SIZE]}
        answer = client.json("POST", "/batch", AUTH, body)
        failed = [r for r in answer["responses"] if r["status"] >= 400]
        if failed:
            raise RuntimeError(f"{variant.name}: batch failed: {failed[0]}")
    client.close()
    variant.size = size
