"""A Kinto plugin for the tests: requests that fail after the changes listener ran.

Include it after ``kinto_changes`` (``kinto.includes = kinto_changes
tests.failing_plugin``), so that its subscriber runs after the listener and
its before-commit hooks run after the one that writes the entries. A record
whose data holds:

- ``"fail": true`` makes the ``ResourceChanged`` subscriber raise;
- ``"fail_at_commit": true`` makes the transaction fail when it commits,
  after the entries were written;
- ``"pause_at_commit": <seconds>`` sleeps while the transaction commits,
  after the entries were written, holding the cursor lock (to kill the
  server at that moment);
- ``"hold": true`` stops the ``ResourceChanged`` subscriber, before the entries
  are written, until the test sets ``registry.release`` (it sets
  ``registry.holding`` when it stops);
- ``"probe": true`` looks at the database from another connection while the
  transaction commits, after the entries were written, and keeps what it saw
  in ``registry.commit_probes``.
"""

import threading
import time

import sqlalchemy
import transaction
from kinto.core.events import ResourceChanged
from pyramid.config import Configurator

from kinto_changes.postgresql import ADVISORY_LOCK_KEY
from kinto_changes.writer import PARENT_ID


class PluginFailure(Exception):
    """Raised on purpose."""


def includeme(config: Configurator) -> None:
    config.registry.commit_probes = []
    config.registry.holding = threading.Event()
    config.registry.release = threading.Event()
    config.add_subscriber(on_resource_changed, ResourceChanged, for_resources=("record",))


def on_resource_changed(event: ResourceChanged) -> None:
    flagged = [i["new"] for i in event.impacted_objects if "new" in i]
    if any(record.get("fail") for record in flagged):
        raise PluginFailure("A ResourceChanged subscriber failed")
    if any(record.get("hold") for record in flagged):
        registry = event.request.registry
        registry.holding.set()
        registry.release.wait(timeout=10)
    current = transaction.get()
    if any(record.get("fail_at_commit") for record in flagged):
        current.addBeforeCommitHook(fail_at_commit)
    pauses = [record["pause_at_commit"] for record in flagged if "pause_at_commit" in record]
    if pauses:
        current.addBeforeCommitHook(time.sleep, args=(max(pauses),))
    if any(record.get("probe") for record in flagged):
        current.addBeforeCommitHook(probe, args=(event.request.registry,))


def fail_at_commit() -> None:
    raise PluginFailure("The transaction failed at commit")


def probe(registry) -> None:
    """From another connection: is the cursor lock free? which entries are visible?"""
    url = sqlalchemy.engine.make_url(registry.settings["storage_url"])
    engine = sqlalchemy.create_engine(
        url.set(drivername="postgresql+psycopg2"), poolclass=sqlalchemy.pool.NullPool
    )
    with engine.connect() as conn:
        lock_free = conn.execute(
            sqlalchemy.text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY}
        ).scalar()
        visible = conn.execute(
            sqlalchemy.text("SELECT id, data FROM objects WHERE parent_id = :parent"),
            {"parent": PARENT_ID},
        ).all()
        conn.rollback()
    engine.dispose()
    registry.commit_probes.append({"lock_free": lock_free, "entries": dict(visible)})
