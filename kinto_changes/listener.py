"""Follow ``ResourceChanged`` events: note which monitored collections a
transaction touched, and write their entries in a before-commit hook, after
every other subscriber ran (docs/design.rst, "How commit order is obtained").
"""

from contextlib import nullcontext

import transaction
from kinto.core.events import ACTIONS, ResourceChanged
from kinto.core.listeners import ListenerBase
from pyramid.config import Configurator
from pyramid.exceptions import ConfigurationError
from pyramid.settings import aslist

from . import settings as changes_settings
from .utils import collection_uri
from .writer import Change, EntryWriter, Pending


def write_pending(pending: Pending, registry) -> None:
    """The before-commit hook (registered when a change is noted: writes that
    touched no monitored collection never take the cursor lock)."""
    metrics = getattr(registry, "metrics", None)
    timer = metrics.timer("plugins.changes.commit.seconds") if metrics else nullcontext()
    writer = EntryWriter(registry)
    with timer:
        writer.write(pending)
    # This process's waiting requests wake when the entries are visible.
    waiting = registry.changes_waiting
    transaction.get().addAfterCommitHook(lambda ok: ok and waiting.moved(writer.cursor))


def pending_changes(request) -> Pending:
    """The pending changes of the current transaction, hooked on its commit."""
    current = transaction.get()
    try:
        return current.data(Pending)
    except KeyError:
        pending = Pending()
        current.set_data(Pending, pending)
        current.addBeforeCommitHook(write_pending, args=(pending, request.registry))
        return pending


def on_resource_changed(event: ResourceChanged) -> None:
    """Note the monitored collections that this event touches."""
    payload = event.payload
    resource_name, action = payload["resource_name"], ACTIONS(payload["action"])
    if resource_name == "group":
        note_members_changes(event)
        return
    settings = event.request.registry.changes
    changes, buckets = touched(event)
    changes = [c for c in changes if settings.is_monitored(c.bucket_id, c.collection_id)]
    buckets = [b for b in buckets if settings.may_monitor_bucket(b)]
    if not changes and not buckets:
        return  # Nothing to write: no hook, no lock.

    if resource_name == "collection" and action == ACTIONS.CREATE:
        # Their records timestamps now: read-only replicas serve them at once,
        # and each precedes the cursor taken at commit.
        storage = event.request.registry.storage
        for change in changes:
            uri = collection_uri(change.bucket_id, change.collection_id)
            storage.resource_timestamp(resource_name="record", parent_id=uri)
    pending = pending_changes(event.request)
    pending.changes.extend(changes)
    if action == ACTIONS.DELETE:
        pending.deleted_buckets.extend(buckets)
    else:
        pending.updated_buckets.extend(buckets)


def touched(event: ResourceChanged) -> tuple[list[Change], list[str]]:
    """The collections whose entries an event may change, and the buckets
    whose collections' entries it may change (deleted, or new permissions)."""
    payload = event.payload
    resource_name, action = payload["resource_name"], ACTIONS(payload["action"])
    impacted_ids = [impacted["new"]["id"] for impacted in event.impacted_objects]
    # With nothing configured, entries know their readers: permissions are
    # part of buckets and collections, and any write may change them.
    access = event.request.registry.changes.monitors_everything
    if resource_name == "record":
        return [Change(payload["bucket_id"], payload["collection_id"])], []
    if resource_name == "collection" and (access or action != ACTIONS.UPDATE):
        changed = action != ACTIONS.DELETE  # Its permissions may have changed.
        return [Change(payload["bucket_id"], cid, changed) for cid in impacted_ids], []
    if resource_name == "bucket" and (access or action == ACTIONS.DELETE):
        return [], impacted_ids  # Deleted, or its principals may have changed.
    return [], []


def note_members_changes(event: ResourceChanged) -> None:
    """Members who joined or left a group (created, updated or deleted) are
    concerned by an access change: with nothing configured, their next
    ``_since`` poll is answered with the full list."""
    if not event.request.registry.changes.monitors_everything:
        return
    concerned = set()
    for impacted in event.impacted_objects:
        before = impacted.get("old", {}).get("members", ())
        after = () if impacted["new"].get("deleted") else impacted["new"].get("members", ())
        concerned |= set(before).symmetric_difference(after)
    if concerned:
        pending_changes(event.request).concerned |= concerned


class ChangesListener(ListenerBase):
    """The listener of the original configuration (``kinto.event_listeners``)."""

    def __call__(self, event: ResourceChanged) -> None:
        on_resource_changed(event)


def load_from_config(config: Configurator, prefix: str = "") -> ChangesListener:
    """Entry point of ``kinto.event_listeners.changes.use = kinto_changes.listener``:
    Kinto subscribes this listener, and ``includeme`` then subscribes no other."""
    settings = config.get_settings()
    if "kinto_changes" not in aslist(settings.get("includes", "")):
        raise ConfigurationError(
            f"{prefix}use = kinto_changes.listener also needs "
            "'kinto_changes' in kinto.includes (it serves the list)."
        )
    changes_settings.load(settings)  # Fail early, naming the bad key.
    config.registry.changes_listener_subscribed = True
    return ChangesListener()
