"""HTTP helpers of the list and the changesets: cache headers, the
``_since`` redirects, the list's route factory."""

from urllib.parse import urlencode

from kinto.core.authorization import RouteFactory
from kinto.core.utils import msec_time
from pyramid.httpexceptions import HTTPTemporaryRedirect


def set_list_cache_headers(request) -> None:
    """The cache headers of the list and of its changeset."""
    settings, query = request.registry.changes, request.validated["querystring"]
    seconds = settings.cache_expires_seconds
    if "_expected" in query and settings.cache_maximum_expires_seconds is not None:
        seconds = settings.cache_maximum_expires_seconds
    set_cache_headers(request, seconds)


def set_cache_headers(request, seconds: int | None) -> None:
    """Kinto's rule: ``max-age`` on responses to anonymous requests only."""
    response = request.response
    if seconds is not None and request.prefixed_userid is None:
        response.cache_expires(seconds=seconds)
    else:
        response.cache_control.no_cache = True
        response.cache_control.no_store = True


def redirect_old_since(request, **kwargs) -> None:
    """Cornice validator: a ``_since`` older than ``since_max_age_days`` is
    redirected to the same URL without it, which caps the URLs a CDN caches.
    After the permission checks and the query validators (only a valid query
    is redirected), before any storage access."""
    since = request.validated.get("querystring", {}).get("_since")
    horizon = request.registry.changes.since_horizon(msec_time())  # 0: none.
    if since is not None and not request.errors and since < horizon:
        raise redirect_without_since(request)


def redirect_if_access_changed(request, model) -> None:
    """A ``_since`` poll by a reader that an access change concerned since then
    is answered as an old ``_since`` (see :mod:`kinto_changes.access`)."""
    since = request.validated.get("querystring", {}).get("_since")
    if since is not None and model.last_concerned(since) > since:
        raise redirect_without_since(request)


def redirect_without_since(request) -> HTTPTemporaryRedirect:
    """``307`` to the same URL without ``_since``."""
    settings = request.registry.changes
    # The URL as the client wrote it, minus ``_since``.
    kept = [(name, value) for name, value in request.GET.items() if name != "_since"]
    location = request.path_url + (f"?{urlencode(kept)}" if kept else "")
    redirect = HTTPTemporaryRedirect(location)
    redirect.cache_expires(seconds=settings.since_max_age_redirect_ttl_seconds)
    # WebOb makes ``Location`` absolute with Kinto's ``http_host``, or else with
    # the ``Host`` header, which a shared cache must not store for everyone.
    from_host_header = not request.registry.settings.get("http_host")
    if from_host_header or request.prefixed_userid is not None:
        redirect.cache_control.private = True
    return redirect


class ChangesRouteFactory(RouteFactory):
    """Readable by the configured ``principals``, whatever the permission backend says."""

    def __init__(self, request) -> None:
        super().__init__(request)
        self.allowed_principals = set(request.registry.changes.principals)

    def check_permission(self, principals, bound_perms) -> bool:
        return bool(self.allowed_principals.intersection(principals))

    def fetch_shared_objects(self, perm, principals, get_bound_permissions) -> list:
        # Nothing in the list is shared object by object.
        return []
