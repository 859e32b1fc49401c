"""Read and validate the plugin settings, once, at startup: each is spelled
``kinto.changes.<key>`` or ``kinto.event_listeners.changes.<key>`` (the original
listener's spelling). Kinto stores them without ``kinto.``, and applies
environment overrides only to keys in the ini file: the environment is read here.
"""

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

from pyramid.exceptions import ConfigurationError
from pyramid.settings import aslist

from .utils import collection_uri, entry_id


SHORT_PREFIX = "changes."
LISTENER_PREFIX = "event_listeners.changes."

# Kinto's own id format for buckets and collections (``NameGenerator``).
ID_PATTERN = r"[a-zA-Z0-9][a-zA-Z0-9_-]*"
URI_PATTERN = re.compile(rf"^/buckets/({ID_PATTERN})(?:/collections/({ID_PATTERN}))?$")
ID_REGEXP = re.compile(rf"^{ID_PATTERN}$")

DEFAULT_SINCE_MAX_AGE_DAYS = 21
DAY_MSEC = 24 * 3600 * 1000
DEFAULT_REDIRECT_TTL_SECONDS = 86400
# Long poll: off unless configured; one waiting request per process leaves
# three of ``kinto start``'s four waitress threads free.
DEFAULT_WAIT_MAX_REQUESTS = 1
WAIT_MAX_SECONDS_LIMIT = 3600

# Kinto's record cache settings (``[{bid}.[{cid}.]]record_cache_expires_seconds``
# and the legacy ``{bid}[_{cid}]_record_cache_...``), with their maximum variant.
RECORD_CACHE_SUFFIXES = ("record_cache_expires_seconds", "record_cache_maximum_expires_seconds")


@dataclass(frozen=True)
class ChangesSettings:
    """The plugin settings, typed and validated."""

    collections: tuple[str, ...] = ()
    excluded_collections: tuple[str, ...] = ()
    principals: tuple[str, ...] = ("system.Everyone",)
    bucket: str = "monitor"
    collection: str = "changes"
    http_host: str = ""
    since_max_age_days: int = DEFAULT_SINCE_MAX_AGE_DAYS
    since_max_age_redirect_ttl_seconds: int = DEFAULT_REDIRECT_TTL_SECONDS
    cache_expires_seconds: int | None = None
    cache_maximum_expires_seconds: int | None = None
    # Every Kinto setting ending with one of RECORD_CACHE_SUFFIXES, by key.
    record_cache_seconds: Mapping[str, int] = field(default_factory=dict, hash=False)
    # Kinto's ``record_read_principals`` and ``record_write_principals``: they
    # may read the records of every collection.
    global_readers: frozenset[str] = frozenset()
    wait_max_seconds: int = 0
    wait_max_requests: int = DEFAULT_WAIT_MAX_REQUESTS

    # Derived from the fields above once per settings object, as sets.

    @property
    def monitors_everything(self) -> bool:
        return not self.collections

    @cached_property
    def monitored_buckets(self) -> frozenset[str]:
        return frozenset(bucket_ids(self.collections))

    @cached_property
    def monitored_collections(self) -> frozenset[tuple[str, str]]:
        return frozenset(collection_ids(self.collections))

    @cached_property
    def excluded_buckets(self) -> frozenset[str]:
        return frozenset(bucket_ids(self.excluded_collections))

    @cached_property
    def hidden_collections(self) -> frozenset[tuple[str, str]]:
        """Collections never listed: the list's own, and the excluded ones."""
        excluded = collection_ids(self.excluded_collections)
        return frozenset(((self.bucket, self.collection), *excluded))

    @cached_property
    def hidden_entry_ids(self) -> tuple[str, ...]:
        return tuple(sorted(entry_id(self.http_host, *key) for key in self.hidden_collections))

    @cached_property
    def monitored_entry_ids(self) -> tuple[str, ...]:
        """Of the monitored collections outside the monitored buckets."""
        keys = [(b, c) for b, c in self.monitored_collections if b not in self.monitored_buckets]
        return tuple(sorted(entry_id(self.http_host, *key) for key in keys))

    def since_horizon(self, now: int) -> int:
        """The oldest ``_since`` served (older ones are redirected), 0 if none;
        older access changes are forgotten, and older tombstones shown to nobody."""
        return 0 if self.since_max_age_days < 0 else now - self.since_max_age_days * DAY_MSEC

    @property
    def list_uri(self) -> str:
        return collection_uri(self.bucket, self.collection)

    def may_monitor_bucket(self, bucket_id: str) -> bool:
        """Whether some collection of this bucket may be monitored."""
        buckets = {*self.monitored_buckets, *(b for b, _ in self.monitored_collections)}
        excluded = bucket_id in self.excluded_buckets
        return not excluded and (self.monitors_everything or bucket_id in buckets)

    def is_monitored(self, bucket_id: str, collection_id: str) -> bool:
        """Whether changes of this collection are listed (set lookups only)."""
        key = (bucket_id, collection_id)
        if key in self.hidden_collections or bucket_id in self.excluded_buckets:
            return False
        return (
            self.monitors_everything
            or bucket_id in self.monitored_buckets
            or key in self.monitored_collections
        )


def bucket_ids(uris: tuple[str, ...]) -> tuple[str, ...]:
    """The bucket ids of the bucket URIs among ``uris``."""
    return tuple(m[1] for m in map(URI_PATTERN.match, uris) if not m[2])


def collection_ids(uris: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """The (bucket id, collection id) of the collection URIs among ``uris``."""
    return tuple((m[1], m[2]) for m in map(URI_PATTERN.match, uris) if m[2])


def load(settings: Mapping, environ: Mapping | None = None) -> ChangesSettings:
    """Build the plugin settings from Kinto's (unprefixed) settings; raise
    ``ConfigurationError`` naming the key for a malformed value or disagreeing spellings."""
    reader = _Reader(settings, os.environ if environ is None else environ)
    _check_listener_filters(reader)

    bucket = _identifier(*reader.get("bucket", default="monitor"))
    collection = _identifier(*reader.get("collection", default="changes"))
    cache_prefix = f"{bucket}.{collection}.record_cache_"
    collections = _uris(*reader.get("collections", aliases=("resources",)))
    if not collections:
        _check_listener_follows_access(reader)
    return ChangesSettings(
        collections=collections,
        excluded_collections=_uris(*reader.get("excluded_collections")),
        principals=_principals(*reader.get("principals", default="system.Everyone")),
        bucket=bucket,
        collection=collection,
        http_host=str(reader.get("http_host", default=settings.get("http_host") or "")[1]),
        since_max_age_days=_integer(
            *reader.get("since_max_age_days", default=DEFAULT_SINCE_MAX_AGE_DAYS), minimum=-1
        ),
        since_max_age_redirect_ttl_seconds=_integer(
            *reader.get("since_max_age_redirect_ttl_seconds", default=DEFAULT_REDIRECT_TTL_SECONDS)
        ),
        cache_expires_seconds=_optional_integer(
            *reader.get_plain(f"{cache_prefix}expires_seconds")
        ),
        cache_maximum_expires_seconds=_optional_integer(
            *reader.get_plain(f"{cache_prefix}maximum_expires_seconds")
        ),
        record_cache_seconds=_record_cache_seconds(settings),
        global_readers=frozenset(
            principal
            for key in ("record_read_principals", "record_write_principals")
            for principal in aslist(str(settings.get(key) or ""))
        ),
        wait_max_seconds=_integer(
            *reader.get("wait_max_seconds", default=0), maximum=WAIT_MAX_SECONDS_LIMIT
        ),
        wait_max_requests=_integer(
            *reader.get("wait_max_requests", default=DEFAULT_WAIT_MAX_REQUESTS)
        ),
    )


@dataclass(frozen=True)
class _Reader:
    """Look a setting up under every spelling, environment first."""

    settings: Mapping
    environ: Mapping

    def get(self, name: str, default=None, aliases: tuple[str, ...] = ()) -> tuple[str, object]:
        keys = [SHORT_PREFIX + n for n in (name, *aliases)] + [LISTENER_PREFIX + name]
        return self.get_plain(*keys, default=default)

    def get_plain(self, *keys: str, default=None) -> tuple[str, object]:
        """``(key, value)`` of the first key set, if every key set agrees."""
        # The environment variables that override a key, as Kinto names them.
        upper = [key.replace(".", "_").replace("-", "_").upper() for key in keys]
        env = {n: self.environ[n] for u in upper for n in (u, f"KINTO_{u}") if n in self.environ}
        found = env or {key: self.settings[key] for key in keys if key in self.settings}
        if len({" ".join(aslist(str(value))) for value in found.values()}) > 1:
            listed = ", ".join(f"{k}={v!r}" for k, v in found.items())
            raise ConfigurationError(f"Conflicting values for the same setting: {listed}")
        return next(iter(found.items()), (keys[0], default))


def _check_listener_filters(reader: _Reader) -> None:
    # Under the listener spelling, Kinto reads ``resources`` as resource names.
    key = LISTENER_PREFIX + "resources"
    _, value = reader.get_plain(key, default="")
    uris = [v for v in aslist(str(value)) if v.startswith("/")]
    if uris:
        raise ConfigurationError(
            f"{key}={value!r}: Kinto reads this key as resource names (e.g. 'record'). "
            f"List bucket and collection URIs in {LISTENER_PREFIX}collections instead."
        )


def _check_listener_follows_access(reader: _Reader) -> None:
    # Kinto passes the listener only the events these keys let through.
    needs = {
        "resources": ("bucket", "collection", "group"),
        "actions": ("create", "update", "delete"),
    }
    for name, needed in needs.items():
        key = LISTENER_PREFIX + name
        _, value = reader.get_plain(key)
        missing = [n for n in needed if value is not None and n not in aslist(str(value))]
        if missing:
            raise ConfigurationError(
                f"{key}={value!r} leaves out {', '.join(missing)}: with no collections "
                "configured, each reader sees the collections they may read, and the "
                f"listener must follow those changes. Add them, or configure "
                f"{LISTENER_PREFIX}collections."
            )


def _uris(key: str, value: object) -> tuple[str, ...]:
    uris = aslist(str(value or ""))
    for uri in uris:
        if not URI_PATTERN.match(uri):
            raise ConfigurationError(
                f"{key}: {uri!r} is not a bucket URI (/buckets/<bid>) "
                "nor a collection URI (/buckets/<bid>/collections/<cid>)"
            )
    return tuple(dict.fromkeys(uris))


def _identifier(key: str, value: object) -> str:
    value = str(value)
    if not ID_REGEXP.match(value):
        raise ConfigurationError(f"{key}: {value!r} is not a valid bucket or collection id")
    return value


def _principals(key: str, value: object) -> tuple[str, ...]:
    principals = tuple(aslist(str(value or "")))
    if not principals:
        raise ConfigurationError(f"{key}: at least one principal is required")
    return principals


def _integer(key: str, value: object, minimum: int = 0, maximum: int | None = None) -> int:
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ConfigurationError(f"{key}: {value!r} is not an integer") from None
    if number < minimum:
        raise ConfigurationError(f"{key}: {value!r} must be at least {minimum}")
    if maximum is not None and number > maximum:
        raise ConfigurationError(f"{key}: {value!r} must be at most {maximum}")
    return number


def _record_cache_seconds(settings: Mapping) -> dict[str, int]:
    # Kinto reads these per request for its records endpoints; changesets
    # follow the same rules, with values validated here once.
    return {
        key: _integer(key, value)
        for key, value in settings.items()
        if key.endswith(RECORD_CACHE_SUFFIXES) and value is not None
    }


def _optional_integer(key: str, value: object) -> int | None:
    return None if value is None else _integer(key, value)
