"""Long poll (SPEC §3.8): ``Prefer: wait=N`` on the list and its changeset.

Waiters run in threads of the test process, against a real Kinto app on
memory and on PostgreSQL; ``tests/test_long_poll_servers.py`` covers
processes, a database restart and a hot standby.
"""

import os
import threading
import time

import pytest
import sqlalchemy

from .support import (
    ALICE,
    BOB,
    LIST_URL,
    BaseWebTest,
    base_settings,
    listen_connections,
    postgresql_engine,
)


CHANGESET_URL = "/buckets/monitor/collections/changes/changeset"
# A waiter answers this long after the write that wakes it, at most.
WAKE_SECONDS = 1.0


class Waiter(threading.Thread):
    """One request in a thread: its response and how long it took."""

    def __init__(self, app, url: str, headers: dict) -> None:
        super().__init__(daemon=True)
        self.app, self.url, self.headers = app, url, headers
        self.response = None
        self.answered_at = None

    def run(self) -> None:
        self.started_at = time.monotonic()
        self.response = self.app.get(self.url, headers=self.headers, status="*")
        self.answered_at = time.monotonic()

    @property
    def seconds(self) -> float:
        return self.answered_at - self.started_at

    def result(self, timeout: float = 30):
        self.join(timeout)
        assert not self.is_alive(), "the waiter never answered"
        return self.response


class LongPollTest(BaseWebTest):
    MAX_SECONDS = 3
    MAX_REQUESTS = 2

    @classmethod
    def get_app_settings(cls, backend: str) -> dict:
        return {
            **base_settings(backend),
            "changes.wait_max_seconds": cls.MAX_SECONDS,
            "changes.wait_max_requests": cls.MAX_REQUESTS,
        }

    def waiter(self, url: str, seconds=3, headers=ALICE, **extra) -> Waiter:
        waiter = Waiter(self.app, url, {**headers, "Prefer": f"wait={seconds}", **extra})
        waiter.start()
        time.sleep(0.3)  # Now waiting (or answered, which the tests check).
        return waiter

    def woken_by(self, waiter: Waiter, write, status: int = 200):
        """``waiter``'s answer, checked to come within WAKE_SECONDS of ``write()``."""
        assert waiter.is_alive(), f"answered before the write: {waiter.response}"
        write()
        written_at = time.monotonic()
        response = waiter.result()
        assert waiter.answered_at - written_at < WAKE_SECONDS
        assert response.status_code == status
        assert response.headers["Preference-Applied"] == "wait=3"
        assert "Prefer" in response.headers["Vary"]
        assert "no-store" in response.headers["Cache-Control"]
        return response


class TestWaiting(LongPollTest):
    def setup_method(self):
        self.create_collection("main", "cfr")
        self.etag = self.list_etag()

    def test_immediate_answer_when_something_is_newer(self):
        self.create_record("main", "cfr")
        started = time.monotonic()
        response = self.app.get(
            f"{LIST_URL}?_since={self.etag}", headers={**ALICE, "Prefer": "wait=5"}
        )
        assert time.monotonic() - started < WAKE_SECONDS
        assert [e["collection"] for e in response.json["data"]] == ["cfr"]
        assert "Preference-Applied" not in response.headers

    def test_since_waiter_woken_by_a_write(self):
        waiter = self.waiter(f"{LIST_URL}?_since={self.etag}")
        response = self.woken_by(waiter, lambda: self.create_record("main", "cfr"))
        assert [e["collection"] for e in response.json["data"]] == ["cfr"]
        assert int(response.headers["ETag"].strip('"')) > self.etag

    def test_if_none_match_waiter_woken_by_a_write(self):
        waiter = self.waiter(LIST_URL, **{"If-None-Match": f'"{self.etag}"'})
        response = self.woken_by(waiter, lambda: self.create_record("main", "cfr"))
        assert response.status_code == 200
        assert int(response.headers["ETag"].strip('"')) > self.etag

    def test_list_changeset_waiter_woken_by_a_write(self):
        waiter = self.waiter(f"{CHANGESET_URL}?_expected=1&_since={self.etag}")
        response = self.woken_by(waiter, lambda: self.create_record("main", "cfr"))
        assert [e["collection"] for e in response.json["changes"]] == ["cfr"]
        assert response.json["timestamp"] > self.etag

    def test_timeout_gives_the_usual_empty_answers(self):
        since = self.waiter(f"{LIST_URL}?_since={self.etag}", seconds=1)
        not_modified = self.waiter(LIST_URL, seconds=1, **{"If-None-Match": f'"{self.etag}"'})
        for waiter, status in ((since, 200), (not_modified, 304)):
            response = waiter.result()
            assert response.status_code == status
            assert 0.9 <= waiter.seconds < 1 + WAKE_SECONDS
            assert response.headers["Preference-Applied"] == "wait=1"
            assert response.headers["ETag"] == f'"{self.etag}"'
        assert since.response.json["data"] == []

    def test_a_private_write_does_not_wake_a_reader_who_cannot_see_it(self):
        self.grant_read("main", ["cfr"])
        etag = self.list_etag(headers=BOB)
        waiter = self.waiter(f"{LIST_URL}?_since={etag}", seconds=2, headers=BOB)
        self.create_collection("alice-only", "secrets")
        self.create_record("alice-only", "secrets")
        time.sleep(0.5)
        assert waiter.is_alive()
        response = waiter.result()
        assert waiter.seconds >= 1.8
        assert response.json["data"] == []
        # A write they may see wakes them.
        etag = int(response.headers["ETag"].strip('"'))
        waiter = self.waiter(f"{LIST_URL}?_since={etag}", headers=BOB)
        response = self.woken_by(waiter, lambda: self.create_record("main", "cfr"))
        assert [e["collection"] for e in response.json["data"]] == ["cfr"]

    def test_a_collection_of_a_new_bucket_they_may_read_wakes_a_reader(self):
        etag = self.list_etag(headers=BOB)
        bob = self.app.get("/", headers=BOB).json["user"]["id"]
        waiter = self.waiter(f"{LIST_URL}?_since={etag}", headers=BOB)

        def write():
            bucket = {"permissions": {"read": [bob]}}
            self.app.put_json("/buckets/shared", bucket, headers=ALICE)
            self.app.put_json("/buckets/shared/collections/news", {}, headers=ALICE)

        response = self.woken_by(waiter, write)
        assert [e["collection"] for e in response.json["data"]] == ["news"]

    def test_a_grant_wakes_a_reader_with_what_they_may_now_read(self):
        etag = self.list_etag(headers=BOB)
        waiter = self.waiter(f"{LIST_URL}?_since={etag}", headers=BOB)
        response = self.woken_by(waiter, lambda: self.grant_read("main", ["cfr"]))
        assert [e["collection"] for e in response.json["data"]] == ["cfr"]

    def test_joining_a_group_wakes_a_reader_with_a_redirect(self):
        etag = self.list_etag(headers=BOB)
        bob = self.app.get("/", headers=BOB).json["user"]["id"]
        waiter = self.waiter(f"{LIST_URL}?_since={etag}", headers=BOB)
        group = {"data": {"members": [bob]}}
        join = lambda: self.app.put_json("/buckets/main/groups/g", group, headers=ALICE)  # noqa: E731
        response = self.woken_by(waiter, join, status=307)
        assert "_since" not in response.headers["Location"]

    def test_an_old_since_is_redirected_at_once(self):
        started = time.monotonic()
        headers = {**ALICE, "Prefer": "wait=5"}
        self.app.get(f"{LIST_URL}?_since=1", headers=headers, status=307)
        assert time.monotonic() - started < WAKE_SECONDS

    def test_batch_sub_requests_never_wait(self):
        started = time.monotonic()
        body = {"requests": [{"path": f"{LIST_URL}?_since={self.etag}"}]}
        headers = {**ALICE, "Prefer": "wait=5"}
        response = self.app.post_json("/batch", body, headers=headers)
        assert time.monotonic() - started < WAKE_SECONDS
        assert response.json["responses"][0]["body"]["data"] == []

    def test_wait_is_capped_at_wait_max_seconds(self):
        waiter = self.waiter(f"{LIST_URL}?_since={self.etag}", seconds=3600)
        response = waiter.result()
        assert response.headers["Preference-Applied"] == f"wait={self.MAX_SECONDS}"
        assert 0.9 * self.MAX_SECONDS <= waiter.seconds < self.MAX_SECONDS + WAKE_SECONDS

    def test_requests_beyond_wait_max_requests_answer_at_once(self):
        waiters = [self.waiter(f"{LIST_URL}?_since={self.etag}", seconds=2) for _ in range(3)]
        waiters[-1].join(WAKE_SECONDS)
        assert not waiters[-1].is_alive()
        assert "Preference-Applied" not in waiters[-1].response.headers
        assert all(w.is_alive() for w in waiters[:2])
        for waiter in waiters[:2]:
            assert waiter.result().headers["Preference-Applied"] == "wait=2"

    @pytest.mark.parametrize(
        "prefer",
        [
            "wait=abc",
            "wait=-1",
            "wait=",
            "wait",
            "wait=1.5",
            "wait=²",
            "wait=0",
            "wait=\t",
            "respond-async",
            "wait=x, wait=5",  # Only the first one counts.
            "wait=" + "9" * 10000,  # Capped, not an error.
        ],
    )
    def test_invalid_preferences_are_ignored(self, prefer):
        started = time.monotonic()
        headers = {**ALICE, "Prefer": prefer}
        response = self.app.get(f"{LIST_URL}?_since={self.etag}", headers=headers, status="*")
        if prefer.startswith("wait=9"):
            assert response.headers["Preference-Applied"] == f"wait={self.MAX_SECONDS}"
            return
        assert response.status_code == 200
        assert time.monotonic() - started < WAKE_SECONDS
        assert "Preference-Applied" not in response.headers

    def test_other_preferences_do_not_hide_wait(self):
        headers = {**ALICE, "Prefer": 'respond-async, wait="1"; foo=bar'}
        waiter = Waiter(self.app, f"{LIST_URL}?_since={self.etag}", headers)
        waiter.start()
        assert waiter.result().headers["Preference-Applied"] == "wait=1"
        assert waiter.seconds >= 0.9


class TestWaitingOffByDefault(BaseWebTest):
    def test_prefer_wait_is_ignored(self):
        etag = self.list_etag()
        started = time.monotonic()
        headers = {**ALICE, "Prefer": "wait=5"}
        response = self.app.get(f"{LIST_URL}?_since={etag}", headers=headers)
        assert time.monotonic() - started < WAKE_SECONDS
        assert "Preference-Applied" not in response.headers
        assert "Prefer" not in response.headers.get("Vary", "")


class TestNoConnectionHeldWhileWaiting(LongPollTest):
    """One pooled connection (Kinto keeps it checked out until a request
    ends): a write gets it while a request waits, and wakes it."""

    backends = ("postgresql",)

    @classmethod
    def get_app_settings(cls, backend: str) -> dict:
        pool = {"storage_pool_size": 1, "storage_max_overflow": 0, "storage_pool_timeout": 2}
        return {**super().get_app_settings(backend), **pool}

    def test_a_write_gets_the_connection_and_wakes_the_waiter(self):
        self.create_collection("main", "cfr")
        waiter = self.waiter(f"{LIST_URL}?_since={self.list_etag()}")
        response = self.woken_by(waiter, lambda: self.create_record("main", "cfr"))
        assert [e["collection"] for e in response.json["data"]] == ["cfr"]


class TestWatcherStopsWhenIdle(LongPollTest):
    """A process that serves no waiting request has no watcher (and on
    PostgreSQL no LISTEN connection, woken by every commit); the next
    waiting request starts them again."""

    IDLE_SECONDS = 0.5

    def setup_method(self):
        self.create_collection("main", "cfr")
        # Shortened for the test (30 s in a server).
        self.app.app.registry.changes_waiting.idle_seconds = self.IDLE_SECONDS

    def watchers(self) -> set:
        """The watcher threads and LISTEN connections of this test process."""
        threads = {t for t in threading.enumerate() if t.name == "kinto_changes" and t.is_alive()}
        if self.backend != "postgresql":
            return threads
        engine = postgresql_engine(poolclass=sqlalchemy.pool.NullPool)
        return threads | listen_connections(engine, os.getpid())

    def test_the_watcher_stops_when_idle_and_starts_again(self):
        before = self.watchers()
        waiter = self.waiter(f"{LIST_URL}?_since={self.list_etag()}")
        self.woken_by(waiter, lambda: self.create_record("main", "cfr"))
        started = self.watchers() - before
        # A thread, and on PostgreSQL its LISTEN connection.
        assert len(started) == (2 if self.backend == "postgresql" else 1)

        # The watcher looks at least every 1 s; its connection ends soon after.
        deadline = time.monotonic() + self.IDLE_SECONDS + 10
        while started & self.watchers() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not started & self.watchers()

        waiter = self.waiter(f"{LIST_URL}?_since={self.list_etag()}")
        response = self.woken_by(waiter, lambda: self.create_record("main", "cfr"))
        assert [e["collection"] for e in response.json["data"]] == ["cfr"]
