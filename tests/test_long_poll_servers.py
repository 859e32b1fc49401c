"""Long poll across real server processes on PostgreSQL (SPEC §3.8).

A waiter on one process is woken by a write through another (NOTIFY /
LISTEN), after its LISTEN connection is killed (as by a database restart),
and on a read-only node reading a real hot standby, where LISTEN is refused.
"""

import contextlib
import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest
import requests
import sqlalchemy

from .server import KintoServer, free_port
from .support import (
    ALICE,
    LIST_URL,
    base_settings,
    ensure_postgresql,
    flush,
    listen_connections,
    make_app,
    postgresql_engine,
)


# Server processes: `make test` runs these with the newest Kinto only.
pytestmark = pytest.mark.processes


WAKE_SECONDS = 1.0
WAIT = {"changes.wait_max_seconds": 20, "changes.wait_max_requests": 2}


class Waiter(threading.Thread):
    """``GET <list>?_since=<etag>`` with ``Prefer: wait=20`` in a thread."""

    def __init__(self, url: str, since: int) -> None:
        super().__init__(daemon=True)
        self.url, self.since = url, since
        self.response, self.answered_at = None, None
        self.start()
        time.sleep(0.5)  # Now waiting.

    def run(self) -> None:
        headers = {**ALICE, "Prefer": "wait=20"}
        url = f"{self.url}{LIST_URL}?_since={self.since}"
        self.response = requests.get(url, headers=headers, timeout=60)
        self.answered_at = time.monotonic()

    def woken_by(self, write) -> list[str]:
        """The collections it was told about, within WAKE_SECONDS of ``write()``."""
        assert self.is_alive(), f"answered before the write: {self.response}"
        write()
        written_at = time.monotonic()
        self.join(30)
        assert self.answered_at - written_at < WAKE_SECONDS
        assert self.response.headers["Preference-Applied"] == "wait=20"
        return [entry["collection"] for entry in self.response.json()["data"]]


def put(url: str, path: str, data: dict | None = None) -> requests.Response:
    response = requests.put(f"{url}{path}", json={"data": data or {}}, headers=ALICE, timeout=10)
    response.raise_for_status()
    return response


def list_etag(url: str) -> int:
    response = requests.get(f"{url}{LIST_URL}", headers=ALICE, timeout=10)
    return int(response.headers["ETag"].strip('"'))


@pytest.fixture
def two_processes():
    ensure_postgresql()
    settings = {**base_settings("postgresql"), **WAIT}
    app = make_app(settings)
    flush(app)
    with KintoServer(settings) as first, KintoServer(settings) as second:
        put(second.url, "/buckets/main")
        put(second.url, "/buckets/main/collections/cfr")
        yield first, second
    flush(app)


def test_a_waiter_is_woken_by_a_write_through_another_process(two_processes):
    first, second = two_processes
    waiter = Waiter(first.url, list_etag(first.url))
    assert waiter.woken_by(lambda: put(second.url, "/buckets/main/collections/cfr/records/r")) == [
        "cfr"
    ]


def test_a_lost_listen_connection_misses_nothing(two_processes):
    first, second = two_processes
    engine = postgresql_engine()
    waiter = Waiter(first.url, list_etag(first.url))
    pids = listen_connections(engine, first.process.pid)
    assert len(pids) == 1
    with engine.connect() as conn:
        conn.execute(sqlalchemy.text("SELECT pg_terminate_backend(:pid)"), {"pid": pids.pop()})
    time.sleep(0.3)
    assert waiter.woken_by(lambda: put(second.url, "/buckets/main/collections/cfr/records/r")) == [
        "cfr"
    ]
    # It listens again while requests wait.
    waiter = Waiter(first.url, list_etag(first.url))
    deadline = time.monotonic() + 10
    while not listen_connections(engine, first.process.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(listen_connections(engine, first.process.pid)) == 1
    assert waiter.woken_by(lambda: put(second.url, "/buckets/main/collections/cfr/records/s")) == [
        "cfr"
    ]
    engine.dispose()


def postgres_bindir() -> Path:
    """Where PostgreSQL's server programs are (a hot standby is made with them)."""
    if shutil.which("pg_config"):
        found = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True)
        if (Path(found.stdout.strip()) / "initdb").exists():
            return Path(found.stdout.strip())
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))
    if not versions:
        message = "PostgreSQL's server programs (initdb, pg_ctl) are not installed"
        pytest.fail(message) if os.environ.get("CI") else pytest.skip(message)
    return versions[-1]


def postgres_command(*args: str) -> subprocess.CompletedProcess:
    """A PostgreSQL program, as the ``postgres`` user when run as root
    (PostgreSQL refuses to run as root)."""
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    program = str(postgres_bindir() / args[0])
    return subprocess.run(
        [*as_postgres, program, *args[1:]], capture_output=True, text=True, check=True
    )


@contextlib.contextmanager
def hot_standby():
    """A small primary and its streaming hot standby: ``(primary URL, standby URL)``."""
    home = Path(tempfile.mkdtemp(prefix="kinto-changes-standby-"))
    if os.geteuid() == 0:
        shutil.chown(home, "postgres", "postgres")
    primary, standby = home / "primary", home / "standby"
    ports = {primary: free_port(), standby: free_port()}
    started = []
    try:
        postgres_command("initdb", "-D", str(primary), "-U", "postgres", "--auth=trust")
        with open(primary / "pg_hba.conf", "a") as hba:
            hba.write("host replication all 127.0.0.1/32 trust\n")
        conf = (
            f"listen_addresses = '127.0.0.1'\nunix_socket_directories = '{home}'\n"
            "wal_level = replica\nmax_wal_senders = 4\nhot_standby = on\nfsync = off\n"
        )
        (primary / "postgresql.conf").write_text(
            (primary / "postgresql.conf").read_text() + conf + f"port = {ports[primary]}\n"
        )
        postgres_command(
            "pg_ctl", "-D", str(primary), "-l", str(home / "primary.log"), "-w", "start"
        )
        started.append(primary)
        postgres_command(
            "pg_basebackup", "-h", "127.0.0.1", "-p", str(ports[primary]), "-U", "postgres",
            "-D", str(standby), "-R", "-X", "stream",
        )  # fmt: skip
        with open(standby / "postgresql.conf", "a") as standby_conf:
            standby_conf.write(f"port = {ports[standby]}\n")
        postgres_command(
            "pg_ctl", "-D", str(standby), "-l", str(home / "standby.log"), "-w", "start"
        )
        started.append(standby)
        yield tuple(
            f"postgresql://postgres@127.0.0.1:{ports[node]}/postgres"
            for node in (primary, standby)
        )
    finally:
        for node in started:
            postgres_command("pg_ctl", "-D", str(node), "-m", "immediate", "stop")
        shutil.rmtree(home, ignore_errors=True)


def node_settings(url: str, **extra) -> dict:
    storage = {"storage_url": url, "permission_url": url, "storage_pool_size": 2}
    return {**base_settings("postgresql"), **WAIT, **storage, **extra}


def test_a_waiter_on_a_read_only_node_of_a_hot_standby_is_woken():
    with hot_standby() as (primary_url, standby_url):
        make_app(node_settings(primary_url))  # Initialises the schema, as ``kinto migrate``.
        with (
            KintoServer(node_settings(primary_url)) as writer,
            KintoServer(node_settings(standby_url, readonly="true")) as reader,
        ):
            put(writer.url, "/buckets/main")
            put(writer.url, "/buckets/main/collections/cfr")
            deadline = time.monotonic() + 10
            while list_etag(reader.url) != list_etag(writer.url) and time.monotonic() < deadline:
                time.sleep(0.1)  # Replicated.
            waiter = Waiter(reader.url, list_etag(reader.url))
            write = lambda: put(writer.url, "/buckets/main/collections/cfr/records/r")  # noqa: E731
            assert waiter.woken_by(write) == ["cfr"]
            log = reader.log.read_text()
            assert "cannot execute LISTEN during recovery" in log
