"""A server killed with SIGKILL in the middle of a stream of writes loses nothing.

An entry and the records it follows commit in one PostgreSQL transaction: a
transaction cut short by the kill rolls back whole. The server is killed
while writers stream writes and while one transaction is inside its commit,
its entries written and the cursor lock held (the worst moment). After a
restart on the same database every entry equals its collection's records
timestamp, and a poller that polled before the kill sees, with ``_since``,
every collection whose records timestamp moved. Run with ``-s`` to see the
counts.
"""

import threading
import time
from contextlib import ExitStack
from pathlib import Path

import pytest
import requests
import sqlalchemy

from .server import KintoServer
from .support import ALICE, postgresql_engine
from .traffic import (
    Poller,
    Tally,
    Writer,
    collection_names,
    consistency,
    create_collections,
    empty_database,
    records_path,
    server_settings,
    summary,
)


# Server processes: `make test` runs these with the newest Kinto only.
pytestmark = pytest.mark.processes


COLLECTIONS = collection_names(60)
WRITERS = 6
# Writes before the kill; the writers would go on much longer.
WRITES_BEFORE_KILL = 150
TIME_LIMIT_SECONDS = 20
# Written by no writer: the paused request cannot get a 409.
PAUSED_COLLECTION = ("b0", "paused")
PAUSED_RECORD = f"{records_path(*PAUSED_COLLECTION)}/paused"
# The server processes import ``tests.failing_plugin``.
ENV = {"PYTHONPATH": str(Path(__file__).parent.parent)}


def wait_for(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def transactions_in_flight(engine, idle_for_ms: int = 0) -> int:
    """Transactions of other sessions, idle inside a transaction for a while if asked."""
    query = """
    SELECT count(*) FROM pg_stat_activity
     WHERE datname = current_database() AND pid <> pg_backend_pid()
       AND xact_start IS NOT NULL
       AND (:idle_for_ms = 0 OR (state = 'idle in transaction'
            AND now() - state_change > :idle_for_ms * interval '1 millisecond'))
    """
    with engine.connect() as conn:
        return conn.execute(sqlalchemy.text(query), {"idle_for_ms": idle_for_ms}).scalar()


def put_paused_record(url: str) -> None:
    body = {"data": {"pause_at_commit": 60}}
    try:
        requests.put(f"{url}{PAUSED_RECORD}", json=body, headers=ALICE, timeout=90)
    except requests.ConnectionError:
        pass  # Killed, as expected.


def test_sigkill_during_writes_loses_no_change():
    settings = server_settings("postgresql", COLLECTIONS)
    settings["includes"] = "kinto_changes tests.failing_plugin"
    engine = postgresql_engine(poolclass=sqlalchemy.pool.NullPool)
    tally, stop = Tally(), threading.Event()
    with ExitStack() as servers:
        servers.enter_context(empty_database(settings))
        current = servers.enter_context(KintoServer(settings, threads=4, env=ENV))
        create_collections(current.url, [*COLLECTIONS, PAUSED_COLLECTION])
        poller = Poller(lambda: [current.url], tally, stop)
        # This one polls before the kill, then only after the restart.
        sleeper = Poller(lambda: [current.url], Tally(), stop)
        assert poller.poll() and sleeper.poll()

        writers = [
            Writer(lambda: current.url, COLLECTIONS, tally, 10_000, seed, stop)
            for seed in range(WRITERS)
        ]
        started = time.monotonic()
        for thread in [poller, *writers]:
            thread.start()
        wait_for(lambda: tally["records written"] >= WRITES_BEFORE_KILL, TIME_LIMIT_SECONDS)
        paused = threading.Thread(target=put_paused_record, args=(current.url,))
        paused.start()
        assert wait_for(lambda: transactions_in_flight(engine, idle_for_ms=300) > 0, 10)
        in_flight = transactions_in_flight(engine)
        current.kill()
        written_before_kill = tally["records written"]
        for thread in [paused, *writers]:
            thread.join(timeout=10)
            assert not thread.is_alive()

        current = servers.enter_context(KintoServer(settings, threads=4, env=ENV))
        polls_before_restart = tally["polls"]
        assert wait_for(lambda: tally["polls"] > polls_before_restart, 10)
        stop.set()
        poller.join(timeout=10)
        assert poller.poll() and sleeper.poll()
        result = consistency(current.url, poller, [*COLLECTIONS, PAUSED_COLLECTION])
        slept = consistency(current.url, sleeper, [*COLLECTIONS, PAUSED_COLLECTION])
        paused_status = requests.get(f"{current.url}{PAUSED_RECORD}", headers=ALICE).status_code
    engine.dispose()

    tally.add("transactions in flight at the kill", in_flight)
    print(
        "\n"
        + summary("postgresql, SIGKILL during writes", tally, result, time.monotonic() - started)
    )
    print(f"poller asleep from before the kill until after the restart: {slept}")
    assert written_before_kill >= WRITES_BEFORE_KILL
    # Killed in the middle of its commit: rolled back.
    assert paused_status == 404
    assert result == {"missed changes": 0, "entries differing": 0}
    assert slept == {"missed changes": 0, "entries differing": 0}
    assert tally["5xx"] == 0
