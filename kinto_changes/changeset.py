"""``GET .../changeset``: a collection, or the list, in one request (docs/api.rst).

Read-only: no storage write, unless Kinto has to initialise a missing records
timestamp (never on a ``kinto.readonly`` node: 503 there).
"""

import functools
from collections.abc import Callable, Iterable

import colander
from kinto.core import Service
from kinto.core.authorization import DYNAMIC, RouteFactory
from kinto.core.cornice.validators import colander_validator
from kinto.core.errors import ERRORS, http_error
from kinto.core.resource.schema import ErrorResponseSchema
from kinto.core.storage import Filter
from kinto.core.storage import exceptions as storage_exceptions
from kinto.core.utils import COMPARISON
from kinto.views import object_exists_or_404
from pyramid.config import Configurator
from pyramid.httpexceptions import HTTPNotFound, HTTPServiceUnavailable

from .http import (
    ChangesRouteFactory,
    redirect_if_access_changed,
    redirect_old_since,
    set_cache_headers,
    set_list_cache_headers,
)
from .listing import ChangesModel, public_entry
from .schemas import ChangesetRequest, ListChangesetRequest, query_string_validator
from .settings import ChangesSettings
from .utils import NEWEST_FIRST, collection_uri, iter_objects, iter_pages
from .waiting import waited


# Filters of the list's changeset.
LIST_FILTERS = ("bucket", "collection")
# Reads of one changeset retried while writes land in between.
SNAPSHOT_ATTEMPTS = 5


class ChangesetBody(colander.MappingSchema):
    metadata = colander.SchemaNode(colander.Mapping(unknown="preserve"))
    timestamp = colander.SchemaNode(colander.Integer())
    changes = colander.SequenceSchema(colander.SchemaNode(colander.Mapping(unknown="preserve")))


class ChangesetResponse(colander.MappingSchema):
    body = ChangesetBody()


RESPONSES = {
    "200": ChangesetResponse(description="The changes, newest first."),
    "400": ErrorResponseSchema(description="Invalid query string."),
    "401": ErrorResponseSchema(description="Authentication required."),
    "403": ErrorResponseSchema(description="Not allowed to read."),
    "503": ErrorResponseSchema(
        description="Data changed during every read attempt, or "
        "timestamp missing on a read-only node; retry later."
    ),
}
LIST_RESPONSES = {
    **RESPONSES,
    "307": colander.MappingSchema(description="_since too old: the same URL without it."),
}
COLLECTION_RESPONSES = {
    **RESPONSES,
    "404": ErrorResponseSchema(description="Unknown bucket or collection."),
}


class ChangesetRouteFactory(RouteFactory):
    """The permission Kinto requires on ``GET .../records``: read on the
    collection or its bucket (or ``kinto.record_read_principals``)."""

    def __init__(self, request) -> None:
        super().__init__(request)
        bid, cid = request.matchdict["bucket_id"], request.matchdict["collection_id"]
        self.resource_name = "record"
        self.required_permission = "read"
        self.permission_object_id = f"{collection_uri(bid, cid)}/records"
        # The first object of the path whose id Kinto could not have stored,
        # if any: no permission exists on it.
        self.unstorable_uri = None
        if not is_valid_id(request, "bucket", bid):
            self.unstorable_uri = f"/buckets/{bid}"
        elif not is_valid_id(request, "collection", cid):
            self.unstorable_uri = collection_uri(bid, cid)

    def check_permission(self, principals, bound_perms) -> bool:
        # Ask only about the objects that may exist, as for a missing object:
        # PostgreSQL refuses some characters (e.g. NUL) in a query.
        if self.unstorable_uri:
            bound_perms = [(o, p) for o, p in bound_perms if not o.startswith(self.unstorable_uri)]
        return super().check_permission(principals, bound_perms)


class ListChangesetRouteFactory(ChangesRouteFactory):
    """Readable by the configured ``principals``, like the list."""

    def __init__(self, request) -> None:
        super().__init__(request)
        self.required_permission = "read"
        self.permission_object_id = f"{request.registry.changes.list_uri}/changeset"


def is_valid_id(request, resource_name: str, object_id: str) -> bool:
    """Whether Kinto could store an object of this kind under this id
    (its id generator's format, as Kinto checks on ``PUT``)."""
    generators = request.registry.id_generators
    return bool(generators.get(resource_name, generators[""]).match(object_id))


def collection_changeset(request) -> dict:
    """The collection, its records timestamp and its records (newest first)."""
    bid, cid = request.matchdict["bucket_id"], request.matchdict["collection_id"]
    query = request.validated["querystring"]
    for resource_name, object_id in (("bucket", bid), ("collection", cid)):
        if not is_valid_id(request, resource_name, object_id):
            details = {"id": object_id, "resource_name": resource_name}
            raise http_error(HTTPNotFound(), errno=ERRORS.MISSING_RESOURCE, details=details)
    metadata = object_exists_or_404(request, "collection", cid, parent_id=f"/buckets/{bid}")

    storage, uri = request.registry.storage, collection_uri(bid, cid)
    read_timestamp = functools.partial(records_timestamp, storage, uri)
    read_records = functools.partial(
        iter_objects,
        storage,
        "record",
        uri,
        filters=since_filters(query),
        include_deleted="_since" in query,
        limit=query.get("_limit"),
    )
    timestamp, changes = consistent_read(read_timestamp, read_records)
    cache_busting = "_expected" in query
    seconds = collection_cache_seconds(request.registry.changes, bid, cid, metadata, cache_busting)
    set_cache_headers(request, seconds)
    return changeset(request, metadata, timestamp, changes)


def list_changeset(request) -> dict:
    """The list entries (newest cursor first) and the list's cursor."""
    query = request.validated["querystring"]
    filters = [Filter(name, query[name], COMPARISON.EQ) for name in LIST_FILTERS if name in query]
    filters += since_filters(query)

    def read() -> tuple:
        model = ChangesModel(request)
        seen = model.timestamp()  # Before the access check: a later change wakes it.
        redirect_if_access_changed(request, model)
        fetch = functools.partial(
            model.get_objects, sorting=[NEWEST_FIRST], include_deleted="_since" in query
        )
        timestamp, entries = consistent_read(
            model.timestamp, lambda: list(iter_pages(fetch, filters, query.get("_limit")))
        )
        body = changeset(request, {}, timestamp, [public_entry(entry) for entry in entries])
        return body, seen, "_since" in query and not entries and model.waits_for()

    set_list_cache_headers(request)
    return waited(request, read)


def since_filters(query: dict) -> list[Filter]:
    return [Filter("last_modified", query["_since"], COMPARISON.GT)] if "_since" in query else []


def changeset(request, metadata: dict, timestamp: int, changes: list[dict]) -> dict:
    request.response.last_modified = timestamp / 1000.0
    return {"metadata": metadata, "timestamp": timestamp, "changes": changes}


def consistent_read(read_timestamp: Callable[[], int], read_changes: Callable[[], Iterable]):
    """``(timestamp, changes)`` of one state: retried while writes land in between
    (every write bumps the timestamp: equal before and after, none committed)."""
    for _ in range(SNAPSHOT_ATTEMPTS):
        before = read_timestamp()
        changes = list(read_changes())
        if read_timestamp() == before:
            return before, changes
    raise http_error(
        HTTPServiceUnavailable(),
        errno=ERRORS.BACKEND,
        message="The collection kept changing while it was read, please retry later.",
    )


def records_timestamp(storage, collection_uri: str) -> int:
    """The collection's records timestamp; Kinto writes it only when missing."""
    try:
        return storage.resource_timestamp(resource_name="record", parent_id=collection_uri)
    except storage_exceptions.ReadonlyError:
        raise http_error(
            HTTPServiceUnavailable(),
            errno=ERRORS.BACKEND,
            message="Resource timestamp cannot be written. Plural endpoint must be "
            "hit at least once from a writable instance.",
        ) from None


def collection_cache_seconds(
    settings: ChangesSettings, bid: str, cid: str, collection: dict, cache_busting: bool
) -> int | None:
    """Kinto's rules for the records of this collection (``kinto/views/records.py``):
    the most specific setting wins (collection, bucket, global, then the legacy
    names), the ``maximum`` variant first when ``cache_busting``; the collection's
    ``cache_expires`` field raises the result."""
    levels = (f"{bid}.{cid}.", f"{bid}.", "", f"{bid}_{cid}_", f"{bid}_")
    variants = ("maximum_expires_seconds", "expires_seconds")[0 if cache_busting else 1 :]
    keys = [f"{level}record_cache_{variant}" for level in levels for variant in variants]
    found = settings.record_cache_seconds
    seconds = next((found[key] for key in keys if key in found), None)
    if collection.get("cache_expires") is not None:
        seconds = max(seconds or -1, collection["cache_expires"])
    return seconds


def add_changeset_services(config: Configurator) -> None:
    """Serve the changesets: the list's first, since Pyramid tries routes in order."""
    view_arguments = {
        "permission": DYNAMIC,
        "tags": ["Changes"],
        "cors_headers": ("Last-Modified", "Cache-Control", "Expires", "Pragma"),
    }
    list_service = Service(
        "changes-changeset",
        f"{config.registry.changes.list_uri}/changeset",
        description="The list of collection timestamps, as a changeset",
        factory=ListChangesetRouteFactory,
    )
    list_service.add_view(
        "GET",
        list_changeset,
        schema=ListChangesetRequest(),
        validators=[query_string_validator, colander_validator, redirect_old_since],
        operation_id="get_changes_changeset",
        response_schemas=LIST_RESPONSES,
        **view_arguments,
    )
    config.add_cornice_service(list_service)

    service = Service(
        "collection-changeset",
        "/buckets/{bucket_id}/collections/{collection_id}/changeset",
        description="Everything needed to sync one collection",
        factory=ChangesetRouteFactory,
    )
    service.add_view(
        "GET",
        collection_changeset,
        schema=ChangesetRequest(),
        validators=[query_string_validator, colander_validator],
        operation_id="get_collection_changeset",
        response_schemas=COLLECTION_RESPONSES,
        **view_arguments,
    )
    config.add_cornice_service(service)
