"""Run by ``kinto migrate``: installs the function of the cursor lock, and
catches up what happened while the plugin was disabled or configured otherwise
(missing or drifted entries and bucket principals, tombstones of deleted collections).
"""

import logging

import transaction
from kinto.core.storage.postgresql.migrator import PostgreSQLPluginMigration
from pyramid.settings import asbool

from .access import BUCKETS, READERS, buckets_readers, collections_readers
from .utils import collection_uri, entry_id, iter_objects
from .writer import PARENT_ID, RECORDS_TIMESTAMP, RESOURCE_NAME, Change, EntryWriter, Pending


logger = logging.getLogger(__name__)


class CatchUp(PostgreSQLPluginMigration):
    """Registered with ``config.add_migration``: Kinto runs it on ``kinto migrate``."""

    name = "kinto_changes"

    def __init__(self, registry) -> None:
        self.registry = registry

    def initialize_schema(self, client=None, dry_run: bool = False) -> None:
        if asbool(self.registry.settings.get("readonly", False)):
            logger.info("kinto_changes: read-only node, nothing to catch up.")
            return
        storage = self.registry.storage
        self.registry.changes_backend.install(storage, client, dry_run)
        if dry_run and storage.get_installed_version() is None:
            # ``--dry-run`` did not create Kinto's tables either.
            logger.info("kinto_changes: no storage schema yet, nothing to catch up.")
            return
        changes = stale_changes(self.registry)
        buckets = stale_buckets(self.registry)
        logger.info(
            f"kinto_changes: {len(changes)} entries to catch up, "
            f"and the principals of {len(buckets)} buckets."
        )
        if dry_run or not (changes or buckets):
            return
        with transaction.manager:
            EntryWriter(self.registry).write(Pending(changes=changes, updated_buckets=buckets))


def stale_changes(registry) -> list[Change]:
    """The monitored collections whose entry is missing or out of date."""
    storage, settings = registry.storage, registry.changes
    entries = {
        e["id"]: e
        for e in iter_objects(storage, RESOURCE_NAME, PARENT_ID)
        if e["host"] == settings.http_host
    }
    stale, seen = [], set()
    for bucket in iter_objects(storage, "bucket", ""):
        bid = bucket["id"]
        collections = iter_objects(storage, "collection", f"/buckets/{bid}")
        keys = [(bid, c["id"]) for c in collections if settings.is_monitored(bid, c["id"])]
        seen.update(keys)
        stale += stale_in_bucket(registry, keys, entries)
    for entry in entries.values():
        key = (entry["bucket"], entry["collection"])
        if key not in seen and settings.is_monitored(*key) and not entry.get("deleted"):
            stale.append(Change(entry["bucket"], entry["collection"]))
    return stale


def stale_buckets(registry) -> list[str]:
    """The buckets whose stored principals are missing, out of date, or left
    behind by a deleted bucket (with nothing configured)."""
    storage = registry.storage
    if not registry.changes.monitors_everything:
        return []
    stored = {r["id"]: r["readers"] for r in iter_objects(storage, BUCKETS, PARENT_ID)}
    existing = [bucket["id"] for bucket in iter_objects(storage, "bucket", "")]
    current = buckets_readers(registry.permission, existing)
    return sorted(bid for bid in {*stored, *current} if stored.get(bid) != current.get(bid))


def stale_in_bucket(registry, keys: list[tuple[str, str]], entries: dict) -> list[Change]:
    """The changes to write for these existing collections of one bucket."""
    storage, host = registry.storage, registry.changes.http_host
    tracks_readers = registry.changes.monitors_everything
    readers = collections_readers(registry.permission, keys) if tracks_readers else {}
    stale = []
    for key in keys:
        uri = collection_uri(*key)
        timestamp = storage.resource_timestamp(resource_name="record", parent_id=uri)
        entry = entries.get(entry_id(host, *key)) or {"deleted": True}
        if (
            entry.get("deleted")
            or entry[RECORDS_TIMESTAMP] != timestamp
            or (tracks_readers and entry.get(READERS) != readers[key])
        ):
            stale.append(Change(*key, access_changed=True))
    return stale
