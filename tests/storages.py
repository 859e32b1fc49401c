"""Kinto's real storage backends with two test hooks, used as ``storage_backend``.

- ``calls`` lists the storage methods called, to show that a response was
  decided without any storage access;
- ``race`` (a callable, e.g. an HTTP write) runs in another thread, hence in
  another transaction that commits on its own, right after each of the next
  ``races`` timestamp reads of ``race_on`` resources: a concurrent write
  landing in the middle of a changeset read.
"""

import threading

from kinto.core.storage import StorageBase, memory, postgresql


STORAGE_API = frozenset(name for name in vars(StorageBase) if not name.startswith("_"))


def instrumented_settings(settings: dict) -> dict:
    """``settings`` with the instrumented variant of their storage backend."""
    backend = "postgresql" if "postgresql" in settings["storage_backend"] else "memory"
    cls = {"memory": InstrumentedMemory, "postgresql": InstrumentedPostgreSQL}[backend]
    return {**settings, "storage_backend": f"{__name__}.{cls.__name__}"}


class Instrumented:
    def __init__(self, *args, **kwargs) -> None:
        self.calls: list[str] = []
        self.race = None
        self.races = 0
        self.race_on = "record"
        self._racing = False
        super().__init__(*args, **kwargs)

    def __getattribute__(self, name: str):
        if name in STORAGE_API:
            object.__getattribute__(self, "calls").append(name)
        return super().__getattribute__(name)

    # The reads of a timestamp: the race lands right after them.

    def resource_timestamp(self, resource_name: str, parent_id: str) -> int:
        timestamp = super().resource_timestamp(resource_name, parent_id)
        self._maybe_race(resource_name)
        return timestamp

    def all_resources_timestamps(self, resource_name: str) -> dict:
        timestamps = super().all_resources_timestamps(resource_name)
        self._maybe_race(resource_name)
        return timestamps

    def list_all(self, resource_name: str, *args, **kwargs) -> list:
        objects = super().list_all(resource_name, *args, **kwargs)
        if kwargs.get("limit") == 1:  # The list's newest cursor, on PostgreSQL.
            self._maybe_race(resource_name)
        return objects

    def _maybe_race(self, resource_name: str) -> None:
        if self._racing or self.races <= 0 or resource_name != self.race_on:
            return
        self.races -= 1
        self._racing = True
        try:
            thread = threading.Thread(target=self.race)
            thread.start()
            thread.join(timeout=30)
            assert not thread.is_alive(), "the concurrent write is blocked"
        finally:
            self._racing = False


class InstrumentedMemory(Instrumented, memory.Storage):
    @classmethod
    def load_from_config(cls, config) -> "InstrumentedMemory":
        return cls()


class InstrumentedPostgreSQL(Instrumented, postgresql.Storage):
    @classmethod
    def load_from_config(cls, config) -> "InstrumentedPostgreSQL":
        storage = postgresql.load_from_config(config)
        max_fetch_size = int(config.get_settings()["storage_max_fetch_size"])
        return cls(storage.client, max_fetch_size, readonly=storage.readonly)
