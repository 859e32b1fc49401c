"""Long poll (SPEC §3.8): ``Prefer: wait=N`` holds an empty answer until a change.

A waiting request ends its transaction first (Kinto keeps a pooled
connection checked out until then), waits until its process's newest cursor
moves past the one it read, and reads again. What moves it:

- a commit of this process (an after-commit hook of the writer);
- on PostgreSQL, a commit of another process: its writer sends a NOTIFY with
  the cursor lock, delivered on commit to one LISTEN connection per process,
  after which the process reads the newest cursor once;
- without LISTEN (refused on a hot standby, lost with a database restart), the
  same read every ``POLL_SECONDS`` while requests wait; with it, every
  ``SAFETY_SECONDS``, in case notifications get lost (e.g. by pgbouncer).
"""

import contextlib
import functools
import logging
import os
import random
import select
import threading
import time
from collections.abc import Callable, Iterator

import transaction
from kinto.core.storage import Filter
from kinto.core.utils import COMPARISON, sqlalchemy
from pyramid.httpexceptions import HTTPException

from .access import ACCESS, concerned_by, stored_buckets_readers
from .writer import PARENT_ID, RESOURCE_NAME, newest_cursor


logger = logging.getLogger(__name__)

CHANNEL = "kinto_changes"
POLL_SECONDS = 0.2
SAFETY_SECONDS = 1.0
# Changes read at most at once to tell whether they concern a waiter.
NEWS_LIMIT = 1000
RETRY_SECONDS = (5, 60)  # First and longest delay before LISTEN again.


def preferred_wait(header: str | None) -> int | None:
    """The ``wait`` preference of a ``Prefer`` header (RFC 7240), ``None`` if
    absent or invalid: the first one counts, and an invalid one is ignored."""
    for preference in (header or "").split(","):
        name, _, value = preference.split(";")[0].partition("=")
        if name.strip().lower() == "wait":
            value = value.strip().strip('"')
            if not (value.isascii() and value.isdigit()):
                return None
            return int(value.lstrip("0")[:12] or 0)
    return None


def requested_seconds(request) -> int:
    """How long this request may wait (0: answer at once)."""
    settings = request.registry.changes
    eligible = (
        settings.wait_max_seconds
        and request.method == "GET"
        and getattr(request, "parent", None) is None  # A sub-request of ``/batch``.
        and ("_since" in request.GET or "If-None-Match" in request.headers)
    )
    seconds = preferred_wait(request.headers.get("Prefer")) if eligible else None
    return min(seconds or 0, settings.wait_max_seconds)


def waited(request, read: Callable[[], tuple]):
    """``read()`` → ``(answer, list timestamp, waits_for)``, where ``waits_for``
    is ``False`` for a final answer, ``None`` when any change may change it, or
    the reader's principals; read again until the answer is final or the
    request's wait is over. An HTTP exception answer (``304``) is raised."""
    seconds = requested_seconds(request)
    answer, timestamp, waits_for = read()
    if seconds and waits_for is not False:
        waiting = request.registry.changes_waiting
        deadline = time.monotonic() + seconds * random.uniform(0.9, 1.0)
        with waiting.admitted() as admitted:
            while admitted and waits_for is not False and time.monotonic() < deadline:
                # No connection held while waiting.
                request.tm.commit()
                request.tm.begin()
                newest = waiting.wait(timestamp, deadline)
                if newest is None:
                    answer, timestamp, waits_for = read()  # The last one.
                    break
                news = waiting.news(timestamp, newest) if waits_for is not None else None
                if news is None or concerned_by(waits_for, news):
                    answer, timestamp, waits_for = read()
                # Everything up to there is read: wait for what comes next.
                timestamp = max(timestamp, newest, news["newest"] if news else 0)
        if admitted:
            response = answer if isinstance(answer, HTTPException) else request.response
            response.headers["Preference-Applied"] = f"wait={seconds}"
            response.headers["Cache-Control"] = "no-cache, no-store"
            response.headers.pop("Expires", None)
    if request.registry.changes.wait_max_seconds:
        response = answer if isinstance(answer, HTTPException) else request.response
        response.vary = (*(response.vary or ()), "Prefer")
    if isinstance(answer, HTTPException):
        raise answer
    return answer


class Waiting:
    """The waiting requests of one process, and the newest cursor it knows."""

    def __init__(self, settings, storage, listen_url: str | None = None) -> None:
        self.settings = settings
        self.storage = storage
        self.listen_url = listen_url  # PostgreSQL: watch other processes' commits.
        self.changed = threading.Condition()
        self.newest = 0
        self.waiting = 0
        self.watcher_pid: int | None = None
        self.reading = threading.Lock()
        self.last_news: dict | None = None

    def moved(self, cursor: int) -> None:
        with self.changed:
            if cursor > self.newest:
                self.newest = cursor
                self.changed.notify_all()

    @contextlib.contextmanager
    def admitted(self) -> Iterator[bool]:
        """Whether one more request may wait (``wait_max_requests``)."""
        with self.changed:
            admitted = self.waiting < self.settings.wait_max_requests
            self.waiting += admitted
            if admitted and self.listen_url and self.watcher_pid != os.getpid():
                # Started here, after the server forked its workers.
                self.watcher_pid = os.getpid()
                threading.Thread(target=self.watch, name="kinto_changes", daemon=True).start()
        try:
            yield admitted
        finally:
            with self.changed:
                self.waiting -= admitted

    def wait(self, seen: int, deadline: float) -> int | None:
        """The newest cursor known once newer than ``seen``; ``None`` at ``deadline``."""
        with self.changed:
            timeout = max(0.0, deadline - time.monotonic())
            return (
                self.newest if self.changed.wait_for(lambda: self.newest > seen, timeout) else None
            )

    def news(self, seen: int, newest: int) -> dict | None:
        """The entries and access changes after cursor ``seen`` (up to at least
        ``newest``), with the principals of their buckets: read once for the
        waiters of this process that read the same ``seen``. ``None`` when there
        are too many: every waiter reads its answer again."""
        with self.reading:
            cached = self.last_news
            if not (cached and cached["seen"] == seen and cached["newest"] >= newest):
                self.last_news = cached = news_after(self.storage, seen)
            return cached

    def watch(self) -> None:
        """The watcher thread: LISTEN, or else read the newest cursor at intervals."""
        listener, retry_at, delay = None, 0.0, RETRY_SECONDS[0]
        while True:
            if listener is None and self.waiting and time.monotonic() >= retry_at:
                listener = self.listen()
                delay = RETRY_SECONDS[0] if listener else min(delay * 2, RETRY_SECONDS[1])
                retry_at = time.monotonic() + delay
            elif listener is None:
                time.sleep(POLL_SECONDS)
            else:
                listener = self.receive(listener)
            if self.waiting:
                self.check()

    def listen(self):
        """A LISTEN connection of its own (autocommit), ``None`` if refused."""
        try:
            import psycopg2

            url = sqlalchemy.engine.make_url(self.listen_url).set(drivername="postgresql")
            dsn = url.render_as_string(hide_password=False)
            connection = psycopg2.connect(
                dsn, application_name=f"kinto_changes listener {os.getpid()}"
            )
            connection.autocommit = True
            connection.cursor().execute(f"LISTEN {CHANNEL}")
            return connection
        except Exception as error:
            logger.warning(f"kinto_changes: LISTEN failed, reading at intervals: {error}")
            return None

    def receive(self, connection):
        """Wait for notifications; the connection, ``None`` once it broke."""
        try:
            if select.select([connection], [], [], SAFETY_SECONDS)[0]:
                connection.poll()
                connection.notifies.clear()
            return connection
        except Exception as error:
            logger.warning(f"kinto_changes: LISTEN connection lost: {error}")
            with contextlib.suppress(Exception):
                connection.close()
            return None

    def check(self) -> None:
        """Read the newest cursor (one indexed read), in a transaction of its own."""
        try:
            with transaction.manager:
                cursor = newest_cursor(self.storage)
        except Exception as error:
            logger.warning(f"kinto_changes: newest cursor unreadable: {error}")
            return
        self.moved(cursor)


def news_after(storage, seen: int) -> dict | None:
    """See :meth:`Waiting.news`."""
    after = [Filter("last_modified", seen, COMPARISON.GT)]
    read = functools.partial(
        storage.list_all, parent_id=PARENT_ID, filters=after, limit=NEWS_LIMIT + 1
    )
    entries = read(resource_name=RESOURCE_NAME, include_deleted=True)
    access = read(resource_name=ACCESS)
    if len(entries) > NEWS_LIMIT or len(access) > NEWS_LIMIT:
        return None
    bucket_ids = sorted({entry["bucket"] for entry in entries if "bucket" in entry})
    buckets = stored_buckets_readers(storage, PARENT_ID, bucket_ids)
    newest = max((change["last_modified"] for change in (*entries, *access)), default=seen)
    return {
        "seen": seen,
        "newest": newest,
        "entries": entries,
        "access": access,
        "buckets": buckets,
    }
