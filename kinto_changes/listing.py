"""The read-only list: a Kinto resource reading the entries, so it speaks
Kinto's whole list protocol (docs/api.rst). Timestamps, ``_since``, ``_before``
and the default order use the entries' cursor; each entry's ``last_modified``
is its collection's records timestamp.
"""

import functools
from collections.abc import Callable

import colander
from kinto.core import Service, resource
from kinto.core.errors import ERRORS, http_error, raise_invalid
from kinto.core.events import ACTIONS
from kinto.core.resource.model import Model
from kinto.core.resource.schema import RequestSchema
from kinto.core.resource.viewset import ViewSet
from kinto.core.storage import Filter, Sort
from kinto.core.utils import COMPARISON, msec_time
from pyramid.config import Configurator
from pyramid.httpexceptions import HTTPMethodNotAllowed, HTTPNotModified
from pyramid.security import NO_PERMISSION_REQUIRED

from .access import READERS, Reader, last_concerned, reader_for
from .http import (
    ChangesRouteFactory,
    redirect_if_access_changed,
    redirect_old_since,
    set_list_cache_headers,
)
from .schemas import ListQuerySchema, query_string_validator, valid_token, valid_value
from .settings import ChangesSettings
from .waiting import waited
from .writer import PARENT_ID, RECORDS_TIMESTAMP, RESOURCE_NAME, newest_cursor


class ChangesSchema(resource.ResourceSchema):
    bucket = colander.SchemaNode(colander.String())
    collection = colander.SchemaNode(colander.String())
    host = colander.SchemaNode(colander.String())

    class Options:
        preserve_unknown = False


def visibility_filters(settings: ChangesSettings, include_deleted: bool) -> list[Filter]:
    """Storage filters: the entries of this host, but for the hidden collections
    (applied when reading: a collection leaving the monitored set disappears at once)."""
    filters = [
        Filter("host", settings.http_host, COMPARISON.EQ),
        Filter("id", list(settings.hidden_entry_ids), COMPARISON.EXCLUDE),
    ]
    if settings.excluded_buckets:
        filters.append(Filter("bucket", list(settings.excluded_buckets), COMPARISON.EXCLUDE))
    if not include_deleted:
        filters.append(Filter("deleted", True, COMPARISON.NOT))
    return filters


def monitored_rules(settings: ChangesSettings) -> list[list[Filter]]:
    """The configured collections as disjoint alternatives (none: every one):
    the configured buckets, the configured collections of other buckets."""
    rules = []
    if settings.monitored_buckets:
        rules.append([Filter("bucket", sorted(settings.monitored_buckets), COMPARISON.IN)])
    if settings.monitored_entry_ids:
        rules.append([Filter("id", list(settings.monitored_entry_ids), COMPARISON.IN)])
    return rules


class ChangesModel(Model):
    """Read the entries the reader may see; the resource timestamp is the newest cursor."""

    def __init__(self, request) -> None:
        registry = request.registry
        super().__init__(registry.storage, registry.permission, resource_name=RESOURCE_NAME)
        self.settings = registry.changes
        self.backend = registry.changes_backend
        self.principals = request.prefixed_principals
        self.concerned_after: dict[int, int] = {}

    @functools.cached_property
    def reader(self) -> Reader | None:
        """What this reader may see (``None``: everything); read when first needed."""
        return reader_for(self.storage, PARENT_ID, self.settings, self.principals)

    def visible(self, include_deleted: bool = False, tombstones_after: int = 0) -> list:
        """Disjoint alternatives of filters selecting what this reader sees (none: all)."""
        if self.reader is None:
            return monitored_rules(self.settings)
        return self.reader.rules(include_deleted, tombstones_after)

    def last_concerned(self, since: int) -> int:
        """The newest access change after ``since`` concerning the reader, or ``since``."""
        if self.reader is None:
            return since
        if since not in self.concerned_after:
            found = last_concerned(self.storage, PARENT_ID, self.reader.principals, since)
            self.concerned_after[since] = found
        return self.concerned_after[since]

    def waits_for(self) -> frozenset[str] | None:
        """The principals whose changes concern this reader (``None``: everyone's)."""
        return self.reader and self.reader.principals

    def timestamp(self, parent_id=None) -> int:
        # The same for every reader: it says that something changed, not what.
        return newest_cursor(self.storage)

    def get_objects(
        self,
        filters=None,
        sorting=None,
        pagination_rules=None,
        limit=None,
        include_deleted=False,
        parent_id=None,
    ) -> list:
        """The entries this reader sees: Kinto's query, with the visibility
        filters of the settings and the reader's rules added."""
        filters = list(filters or [])
        tombstones_after = self.tombstones_after(filters) if include_deleted else 0
        # Ours come last: a ``has_`` filter must not override them.
        filters += visibility_filters(self.settings, include_deleted)
        rules = combined(pagination_rules, self.visible(include_deleted, tombstones_after))
        query = dict(filters=filters, sorting=sorting or [], pagination_rules=rules, limit=limit)
        query["include_deleted"] = include_deleted
        entries = self.backend.list_entries(self.storage, **query)
        return super().get_objects(**query, parent_id=PARENT_ID) if entries is None else entries

    def tombstones_after(self, filters: list[Filter]) -> int:
        """Tombstones are shown only when newer than the reader's last access
        change: after it, they may read what the group they joined could, but
        they could not before (a tombstone says a collection existed)."""
        bounds = [
            f.value - (f.operator == COMPARISON.MIN)
            for f in filters
            if f.field == "last_modified" and f.operator in (COMPARISON.GT, COMPARISON.MIN)
        ]
        horizon = self.settings.since_horizon(msec_time())
        return self.last_concerned(max([horizon, *bounds]))

    def count_objects(self, filters=None, parent_id=None) -> int:
        filters = [*(filters or []), *visibility_filters(self.settings, False)]
        count = functools.partial(super().count_objects, parent_id=PARENT_ID)
        # Disjoint alternatives: their counts add up.
        return sum(count(filters=[*filters, *rule]) for rule in self.visible() or [[]])


def combined(pagination: list[list[Filter]] | None, alternatives: list[list[Filter]]) -> list:
    """Kinto's pagination rules (alternatives) AND these alternatives (none: no
    condition), as alternatives: every pair of one of each."""
    if not alternatives:
        return pagination
    return [[*page, *visible] for page in (pagination or [[]]) for visible in alternatives]


class Changes(resource.Resource):
    """``GET|HEAD /buckets/{bucket}/collections/{collection}/records``."""

    schema = ChangesSchema

    def __init__(self, request, context=None) -> None:
        self.model = ChangesModel(request)
        super().__init__(request, context)

    def postprocess(self, result, action=ACTIONS.READ, old=None) -> dict:
        # Unlike Kinto's resources, no ``ResourceRead`` event for the list.
        return {"data": [public_entry(entry) for entry in result]}

    def _extract_partial_fields(self) -> list | None:
        fields = super()._extract_partial_fields()
        return fields and [*fields, RECORDS_TIMESTAMP]

    def _extract_filters(self) -> list[Filter]:
        # Kinto turns filter values into JSON values: refuse what the storage
        # cannot compare (every Kinto release of the range does not).
        filters = super()._extract_filters()
        for f in filters:
            many = f.operator in (COMPARISON.IN, COMPARISON.EXCLUDE)
            if f.operator != COMPARISON.HAS and not valid_value(f.field, f.value, many):
                name = next((n for n in self.request.GET if n.endswith(f.field)), f.field)
                raise_invalid(self.request, "querystring", name, f"Invalid value for {name}")
        return filters

    def _extract_pagination_rules_from_token(self, limit: int, sorting: list[Sort]) -> tuple:
        token = self.request.validated["querystring"].get("_token")
        if token and not (isinstance(token, str) and valid_token(token, sorting)):
            raise_invalid(self.request, "querystring", "_token", "_token has invalid content")
        return super()._extract_pagination_rules_from_token(limit, sorting)

    def _add_cache_header(self, response) -> None:
        set_list_cache_headers(self.request)


def public_entry(entry: dict) -> dict:
    """An entry as clients see it: ``last_modified`` is the records timestamp."""
    public = {k: v for k, v in entry.items() if k not in (READERS, RECORDS_TIMESTAMP)}
    if RECORDS_TIMESTAMP in entry:
        public["last_modified"] = entry[RECORDS_TIMESTAMP]
    return public


class ListQuery(Changes):
    """Cornice validator: Kinto's 400 for an invalid filter, sort, field or token
    of the list, before any redirect; unlike ``Changes``, it reads nothing."""

    def __init__(self, request, **kwargs) -> None:
        self.request, self.context, self.model = request, request.context, ChangesModel(request)
        if not request.errors:
            limit = self._extract_limit()
            self._extract_filters()
            sorting = self._extract_sorting(limit)
            self._extract_partial_fields()
            self._extract_pagination_rules_from_token(limit, sorting)


def entry_not_allowed(request):
    """Entries are only read through the list."""
    raise http_error(
        HTTPMethodNotAllowed(),
        errno=ERRORS.METHOD_NOT_ALLOWED,
        message="Entries of the changes list can only be read through the list.",
    )


def list_view(method_name: str) -> Callable:
    """The list's view calling ``Changes.<method_name>()``.

    A function view, not ``klass=Changes``: Cornice would build the resource,
    which reads the list timestamp, before running the validators.
    """

    def view(request):
        def read() -> tuple:
            resource = Changes(request, context=request.context)
            redirect_if_access_changed(request, resource.model)
            try:
                answer = getattr(resource, method_name)()
            except HTTPNotModified as not_modified:
                return not_modified, resource.timestamp, None
            empty = method_name == "plural_get" and "_since" in request.GET and not answer["data"]
            return answer, resource.timestamp, empty and resource.model.waits_for()

        return waited(request, read)

    view.__doc__ = getattr(Changes, method_name).__doc__
    return view


def add_list_services(config: Configurator) -> None:
    """Serve the list at ``{list_uri}/records``: registered here, since the path
    comes from the settings (``@resource.register`` fixes it at import time)."""
    path = f"{config.registry.changes.list_uri}/records"
    list_request = RequestSchema().bind(querystring=ListQuerySchema())
    viewset = ViewSet(
        name="changes",
        plural_path=path,
        object_path=None,
        default_arguments={"tags": ["Changes"], **ViewSet.default_arguments},
        plural_get_arguments={**ViewSet.plural_get_arguments, "schema": list_request},
        plural_head_arguments={**ViewSet.plural_head_arguments, "schema": list_request},
    )
    plural = Service(
        "changes-plural",
        path,
        description="Timestamps of the monitored collections",
        factory=ChangesRouteFactory,
    )
    plural.viewset, plural.resource, plural.type = viewset, Changes, "plural"
    plural.plural_path, plural.object_path = path, None
    for method in ("HEAD", "GET"):
        arguments = viewset.plural_arguments(Changes, method)
        arguments["operation_id"] = f"{method.lower()}_changes"
        arguments["validators"] = [
            query_string_validator,
            *arguments["validators"],
            ListQuery,
            redirect_old_since,
        ]
        plural.add_view(method, list_view(viewset.get_view("plural", method)), **arguments)
    config.add_cornice_service(plural)

    entry = Service("changes-entry", f"{path}/{{id}}", description="Not served: use the list")
    entry.add_view(
        "GET",
        entry_not_allowed,
        permission=NO_PERMISSION_REQUIRED,
        tags=["Changes"],
        operation_id="get_changes_entry",
        response_schemas={"405": resource.schema.ErrorResponseSchema(description="Always")},
    )
    config.add_cornice_service(entry)
