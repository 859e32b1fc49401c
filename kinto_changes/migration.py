"""Catch-up run by ``kinto migrate``.

Lists the monitored collections that existed before the plugin was enabled
(or before a settings change brought them into the monitored set), refreshes
entries whose timestamp drifted while the plugin was disabled, and turns the
entries of collections deleted meanwhile into tombstones.
"""

import logging

import transaction
from kinto.core.storage.postgresql.migrator import PostgreSQLPluginMigration
from pyramid.settings import asbool

from .entries import PARENT_ID, RECORDS_TIMESTAMP, RESOURCE_NAME, Change, EntryWriter
from .utils import collection_uri, entry_id, iter_objects


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
        changes = stale_changes(self.registry)
        logger.info(f"kinto_changes: {len(changes)} entries to catch up.")
        if dry_run or not changes:
            return
        with transaction.manager:
            writer = EntryWriter(
                self.registry.storage, self.registry.changes_cursor_lock, self.registry.changes
            )
            writer.write(changes)


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
        for collection in iter_objects(storage, "collection", f"/buckets/{bucket['id']}"):
            bid, cid = bucket["id"], collection["id"]
            if not settings.is_monitored(bid, cid):
                continue
            uri = collection_uri(bid, cid)
            timestamp = storage.resource_timestamp(resource_name="record", parent_id=uri)
            entry = entries.get(entry_id(settings.http_host, bid, cid))
            seen.add((bid, cid))
            if entry is None or entry.get("deleted") or entry[RECORDS_TIMESTAMP] != timestamp:
                stale.append(Change(bid, cid))
    for entry in entries.values():
        key = (entry["bucket"], entry["collection"])
        if key not in seen and settings.is_monitored(*key) and not entry.get("deleted"):
            stale.append(Change(entry["bucket"], entry["collection"], maybe_deleted=True))
    return stale
