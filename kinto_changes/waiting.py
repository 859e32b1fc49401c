"""Long poll (SPEC §3.8): ``Prefer: wait=N`` holds an empty answer until a change.

A waiting request ends its transaction first (Kinto keeps a pooled
connection checked out until then) and waits to be woken by its process's
watcher thread, which follows the newest cursor:

- a commit of this process moves it (an after-commit hook of the writer);
- on PostgreSQL, a commit of another process too: its writer sends a NOTIFY
  with the cursor lock, delivered on commit to the watcher's LISTEN
  connection, after which it reads the newest cursor once;
- without LISTEN (refused on a hot standby, lost with a database restart), the
  watcher reads it every ``POLL_SECONDS`` while requests wait; with it, every
  ``SAFETY_SECONDS``, in case notifications get lost (e.g. by pgbouncer);
- after ``IDLE_SECONDS`` without a waiting request, it stops and closes its
  LISTEN connection (the next waiting request starts another).

When it moves, the watcher reads what changed once, and wakes only the
waiters it may concern; they read their answer again (docs/design.rst).
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
from dataclasses import dataclass, field

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
DISPATCH_SECONDS = 0.05
# Changes read at most at once to tell whether they concern a waiter.
NEWS_LIMIT = 1000
RETRY_SECONDS = (5, 60)  # First and longest delay before LISTEN again.
IDLE_SECONDS = 30


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
    deadline = time.monotonic() + seconds * random.uniform(0.9, 1.0)
    answer, timestamp, waits_for = read()
    admitted = False
    if seconds and waits_for is not False:
        waiting = request.registry.changes_waiting
        with waiting.admitted() as admitted:
            try:
                while admitted and waits_for is not False and time.monotonic() < deadline:
                    # No connection held while waiting.
                    request.tm.commit()
                    request.tm.begin()
                    waiting.wait(Waiter(timestamp, waits_for), deadline)
                    answer, timestamp, waits_for = read()
            except HTTPException as raised:  # E.g. the 307 of an access change.
                answer = raised
    response = answer if isinstance(answer, HTTPException) else request.response
    if admitted:  # It waited.
        response.headers["Preference-Applied"] = f"wait={seconds}"
        response.headers["Cache-Control"] = "no-cache, no-store"
        response.headers.pop("Expires", None)
    if request.registry.changes.wait_max_seconds:
        response.vary = (*(response.vary or ()), "Prefer")
    if isinstance(answer, HTTPException):
        raise answer
    return answer


@dataclass(eq=False)
class Waiter:
    """A waiting request: the cursor it read, and whose changes concern it."""

    seen: int
    principals: frozenset[str] | None  # ``None``: every change.
    woken: threading.Event = field(default_factory=threading.Event)


class Waiting:
    """The waiting requests of one process, and its watcher thread."""

    def __init__(
        self,
        settings,
        storage,
        listen_url=None,
        max_fetch_size=NEWS_LIMIT,
        idle_seconds=IDLE_SECONDS,
    ) -> None:
        self.settings = settings
        self.idle_seconds = idle_seconds
        self.storage = storage
        # ``list_all`` returns at most ``storage_max_fetch_size`` objects.
        self.news_limit = min(NEWS_LIMIT, max_fetch_size)
        self.listen_url = listen_url  # PostgreSQL: follow other processes' commits.
        self.changed = threading.Condition()
        self.newest = 0  # The newest cursor known.
        self.dispatched = 0  # The newest cursor the waiters were told about.
        self.waiters: set[Waiter] = set()
        self.admitted_count = 0
        self.watcher: threading.Thread | None = None
        # When to try LISTEN again, and the delay after that if it fails.
        self.listen_at, self.listen_delay = 0.0, RETRY_SECONDS[0]

    def moved(self, cursor: int) -> None:
        with self.changed:
            if cursor > self.newest:
                self.newest = cursor
                self.changed.notify_all()

    @contextlib.contextmanager
    def admitted(self) -> Iterator[bool]:
        """Whether one more request may wait (``wait_max_requests``)."""
        with self.changed:
            admitted = self.admitted_count < self.settings.wait_max_requests and self.watching()
            self.admitted_count += admitted
        try:
            yield admitted
        finally:
            with self.changed:
                self.admitted_count -= admitted

    def wait(self, waiter: Waiter, deadline: float) -> None:
        """Until the watcher wakes ``waiter``, or ``deadline``."""
        with self.changed:
            if self.newest > waiter.seen:  # Committed since it read: read again.
                return
            self.waiters.add(waiter)
        try:
            waiter.woken.wait(max(0.0, deadline - time.monotonic()))
        finally:
            with self.changed:
                self.waiters.discard(waiter)

    def watching(self) -> bool:
        """Whether the watcher runs, started if need be (with ``changed`` held).
        It starts here, after the server forked its workers (a thread of the
        parent is not alive in a child)."""
        if self.watcher is None or not self.watcher.is_alive():
            watcher = threading.Thread(target=self.watch, name="kinto_changes", daemon=True)
            try:
                watcher.start()
            except RuntimeError as error:  # No thread left: answer at once.
                logger.warning(f"kinto_changes: no watcher thread: {error}")
                return False
            self.watcher = watcher
        return True

    def watch(self) -> None:
        """The watcher thread: follow the newest cursor, wake whom it concerns,
        until no request has waited for ``idle_seconds``."""
        listener = None
        try:
            needed = time.monotonic()
            while (needed := self.needed_since(needed)) is not None:
                listener = self.follow(listener)
                if self.listen_url and self.admitted_count:
                    self.check()
                if self.dispatch_safely():
                    # Changes that come meanwhile are dispatched together: a
                    # burst of writes costs a few reads per second.
                    time.sleep(DISPATCH_SECONDS)
        finally:
            if listener is not None:
                with contextlib.suppress(Exception):
                    listener.close()
            with self.changed:
                if self.watcher is threading.current_thread():  # It failed.
                    self.watcher = None

    def needed_since(self, needed: float) -> float | None:
        """When a request last waited (now, if one does); ``None`` once none
        has for ``idle_seconds``: the watcher then stops, and a process that
        serves no waiting request is not woken by every commit."""
        with self.changed:
            now = time.monotonic()
            if self.admitted_count:
                return now
            if now - needed < self.idle_seconds:
                return needed
            self.watcher = None  # The next admitted request starts another.
            return None

    def follow(self, listener):
        """Until a commit may have moved the newest cursor, or a while; the
        LISTEN connection to use next (``None``: none)."""
        if not self.listen_url:  # Memory: commits of this process only.
            with self.changed:
                self.changed.wait_for(lambda: self.newest > self.dispatched, SAFETY_SECONDS)
        elif listener is None and self.admitted_count and time.monotonic() >= self.listen_at:
            listener = self.listen()
            self.listen_delay = (
                RETRY_SECONDS[0] if listener else min(self.listen_delay * 2, RETRY_SECONDS[1])
            )
            self.listen_at = time.monotonic() + self.listen_delay
        elif listener is None:
            with self.changed:
                self.changed.wait(POLL_SECONDS)
        else:
            listener = self.receive(listener)
        return listener

    def dispatch_safely(self) -> bool:
        """``dispatch()``, or when it fails, every waiter woken to read again
        (the thread must live on)."""
        try:
            return self.dispatch()
        except Exception:
            logger.exception("kinto_changes: dispatching a change failed")
            with self.changed:
                for waiter in self.waiters:
                    waiter.woken.set()
            return True

    def dispatch(self) -> bool:
        """Wake the waiters that the changes after their cursor may concern:
        what changed is read once per distinct cursor (``news_after``).
        Whether there were any."""
        with self.changed:
            newest = self.newest
            behind = [waiter for waiter in self.waiters if waiter.seen < newest]
        news = {}
        for waiter in behind:
            if waiter.principals is not None and waiter.seen not in news:
                news[waiter.seen] = self.read(
                    functools.partial(
                        news_after, self.storage, waiter.seen, newest, self.news_limit
                    )
                )
            found = news.get(waiter.seen)
            if (
                waiter.principals is None
                or found is None
                or concerned_by(waiter.principals, found)
            ):
                waiter.woken.set()
            else:
                waiter.seen = max(waiter.seen, found["newest"])  # Nothing for them.
        self.dispatched = newest
        return bool(behind)

    def read(self, read: Callable):
        """``read()`` in a transaction of its own; ``None`` if it failed."""
        try:
            with transaction.manager:
                return read()
        except Exception as error:
            logger.warning(f"kinto_changes: watcher read failed: {error}")
            return None

    def check(self) -> None:
        """Read the newest cursor (one indexed read)."""
        cursor = self.read(functools.partial(newest_cursor, self.storage))
        if cursor is not None:
            self.moved(cursor)

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


def news_after(storage, seen: int, newest: int, limit: int = NEWS_LIMIT) -> dict | None:
    """The entries and access changes with a cursor after ``seen`` and up to
    ``newest``, a cursor already committed (cursors follow commit order: all
    those before it are committed too, whatever the two reads see), with the
    principals of their buckets; ``None`` when there are too many (then every
    waiter reads its answer again)."""
    between = [
        Filter("last_modified", seen, COMPARISON.GT),
        Filter("last_modified", newest, COMPARISON.MAX),
    ]
    read = functools.partial(storage.list_all, parent_id=PARENT_ID, filters=between, limit=limit)
    entries = read(resource_name=RESOURCE_NAME, include_deleted=True)
    access = read(resource_name=ACCESS)
    if len(entries) >= limit or len(access) >= limit:
        return None
    bucket_ids = sorted({entry["bucket"] for entry in entries if "bucket" in entry})
    buckets = stored_buckets_readers(storage, PARENT_ID, bucket_ids)
    return dict(seen=seen, newest=newest, entries=entries, access=access, buckets=buckets)
