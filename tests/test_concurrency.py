"""Concurrent writers never make a cursor-following poller miss a change (§3.2).

Real ``kinto start`` processes on 127.0.0.1: on PostgreSQL two processes of
four threads share one database; on memory, one process of eight threads.
Eight writers spread a bounded number of writes over sixty monitored
collections while a poller follows the list's cursor. Run with ``-s`` to see
the counts.
"""

import threading
import time

import pytest

from .server import KintoServer
from .traffic import (
    Poller,
    Tally,
    Writer,
    collection_names,
    consistency,
    create_collections,
    empty_database,
    server_settings,
    summary,
)


# Server processes: `make test` runs these with the newest Kinto only.
pytestmark = pytest.mark.processes


COLLECTIONS = collection_names(60)
WRITERS = 8
OPERATIONS_PER_WRITER = 50
TIME_LIMIT_SECONDS = 30


def run_traffic(urls: list[str], label: str) -> tuple[Tally, dict]:
    """Writers and a poller against these servers, then the consistency counts."""
    create_collections(urls[0], COLLECTIONS)
    tally, stop_writers, stop_poller = Tally(), threading.Event(), threading.Event()
    poller = Poller(lambda: urls, tally, stop_poller)
    assert poller.poll(), "the first poll failed"
    writers = [
        Writer(
            lambda i=i: urls[i % len(urls)],
            COLLECTIONS,
            tally,
            OPERATIONS_PER_WRITER,
            i,
            stop_writers,
        )
        for i in range(WRITERS)
    ]
    started = time.monotonic()
    poller.start()
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=max(0, started + TIME_LIMIT_SECONDS - time.monotonic()))
    stop_writers.set()
    for writer in writers:
        writer.join(timeout=10)
    stop_poller.set()
    poller.join(timeout=10)
    assert not any(thread.is_alive() for thread in [*writers, poller])
    assert poller.poll(), "the final poll failed"
    result = consistency(urls[0], poller, COLLECTIONS)
    print("\n" + summary(label, tally, result, time.monotonic() - started))
    return tally, result


def assert_nothing_missed(tally: Tally, result: dict) -> None:
    assert result == {"missed changes": 0, "entries differing": 0}
    assert tally["5xx"] == 0
    assert tally["records written"] > WRITERS * OPERATIONS_PER_WRITER


def test_two_postgresql_processes_with_concurrent_writers():
    settings = server_settings("postgresql", COLLECTIONS)
    with (
        empty_database(settings),
        KintoServer(settings, threads=4) as first,
        KintoServer(settings, threads=4) as second,
    ):
        tally, result = run_traffic([first.url, second.url], "postgresql, 2 processes x 4 threads")
    assert_nothing_missed(tally, result)


def test_memory_threads_with_concurrent_writers():
    settings = server_settings("memory", COLLECTIONS)
    with KintoServer(settings, threads=8) as server:
        tally, result = run_traffic([server.url], "memory, 1 process x 8 threads")
    assert_nothing_missed(tally, result)
    # Nothing collides on memory: no conflict to retry.
    assert tally["409"] == 0
