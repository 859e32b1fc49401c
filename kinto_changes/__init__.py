from importlib.metadata import version

from kinto.core import metrics
from kinto.core.events import ResourceChanged
from kinto.core.storage.postgresql import Storage as PostgreSQLStorage
from pyramid.config import Configurator

from . import settings as changes_settings
from .access import Forgetting
from .changeset import add_changeset_services
from .listener import on_resource_changed
from .listing import add_list_services
from .migration import CatchUp
from .postgresql import PostgreSQLBackend
from .waiting import Waiting
from .writer import MemoryBackend


__version__ = version("kinto-changes")

# The original plugin's text: clients and dashboards may show or match it.
CAPABILITY_DESCRIPTION = (
    "Track modifications of records in Kinto and store the collection timestamps "
    "into a specific bucket and collection."
)


def includeme(config: Configurator) -> None:
    """Track the records timestamps of the monitored collections.

    Validates the settings (a bad value stops the server), serves the
    read-only list and the changesets, exposes the ``changes`` capability,
    subscribes the listener to ``ResourceChanged`` (unless Kinto already did,
    through ``kinto.event_listeners``) and registers the catch-up of
    ``kinto migrate``.
    """
    registry = config.registry
    registry.changes = settings = changes_settings.load(config.get_settings())
    is_postgresql = isinstance(registry.storage, PostgreSQLStorage)
    max_fetch_size = int(registry.settings["storage_max_fetch_size"])
    registry.changes_backend = (
        PostgreSQLBackend(max_fetch_size) if is_postgresql else MemoryBackend()
    )
    registry.changes_forgetting = Forgetting()
    listen_url = registry.settings["storage_url"] if is_postgresql else None
    registry.changes_waiting = Waiting(settings, registry.storage, listen_url, max_fetch_size)

    config.add_api_capability(
        "changes",
        description=CAPABILITY_DESCRIPTION,
        url="https://github.com/Kinto/kinto-changes",
        version=__version__,
        collections=list(settings.collections),
    )
    add_list_services(config)
    add_changeset_services(config)

    if not getattr(registry, "changes_listener_subscribed", False):
        listener = metrics.listener_with_timer(config, "plugins.changes", on_resource_changed)
        config.add_subscriber(
            listener, ResourceChanged, for_resources=("bucket", "collection", "group", "record")
        )
    config.add_migration(CatchUp(registry))
