"""Configuration: both spellings, environment overrides, startup errors."""

import pytest
from pyramid.exceptions import ConfigurationError

from .support import ALICE, BOB, LIST_URL, BaseWebTest, base_settings, make_app


LISTENER_SETTINGS = {
    "event_listeners": "changes",
    "event_listeners.changes.use": "kinto_changes.listener",
}


def build(**extra):
    return make_app({**base_settings("memory"), **extra})


def listed(app) -> set:
    """What Alice, who creates the collections, sees of the list."""
    url = "/buckets/monitor/collections/changes/records"
    data = app.get(url, headers=ALICE).json["data"]
    return {(e["bucket"], e["collection"]) for e in data}


def fill(app) -> None:
    for bid, cid in [("a", "x"), ("a", "y"), ("b", "z")]:
        app.put_json(f"/buckets/{bid}", {}, headers=ALICE, status=(200, 201))
        app.put_json(f"/buckets/{bid}/collections/{cid}", {}, headers=ALICE)


class TestListenerSpelling(BaseWebTest):
    @classmethod
    def get_app_settings(cls, backend):
        return {
            **base_settings(backend),
            **LISTENER_SETTINGS,
            "event_listeners.changes.collections": "/buckets/a",
            "event_listeners.changes.principals": "system.Authenticated",
        }

    def test_configured_collections_are_listed(self):
        fill(self.app)
        assert listed_as(self, ALICE) == {("a", "x"), ("a", "y")}

    def test_principals_are_read_from_the_listener_spelling(self):
        self.get_list(headers={}, status=401)

    def test_each_change_is_recorded_once(self):
        # One write per change: the list's ETag (the newest cursor) is then the
        # records timestamp itself, not one cursor step beyond it.
        fill(self.app)
        self.create_record("a", "x", n=1)
        entry = self.entries(headers=ALICE)[("a", "x")]
        assert self.list_etag(headers=ALICE) == entry["last_modified"]

    def test_other_resources_do_not_move_the_list(self):
        # Kinto subscribes this listener to every resource (no ``resources`` filter).
        fill(self.app)
        etag = self.list_etag(headers=ALICE)
        self.app.put_json("/buckets/a/groups/g", {"data": {"members": []}}, headers=ALICE)
        self.app.patch_json("/buckets/a/collections/x", {"data": {"t": 1}}, headers=ALICE)
        assert self.list_etag(headers=ALICE) == etag

    def test_capability_lists_configured_uris(self):
        capability = self.app.get("/").json["capabilities"]["changes"]
        assert capability["collections"] == ["/buckets/a"]
        assert set(capability) == {"description", "url", "version", "collections"}
        # The original plugin's text, word for word.
        assert capability["description"] == (
            "Track modifications of records in Kinto and store the collection "
            "timestamps into a specific bucket and collection."
        )
        assert capability["url"] == "https://github.com/Kinto/kinto-changes"


def listed_as(test, headers) -> set:
    return set(test.entries(headers=headers))


class TestBothSpellingsAtOnce(BaseWebTest):
    @classmethod
    def get_app_settings(cls, backend):
        return {
            **base_settings(backend),
            **LISTENER_SETTINGS,
            "event_listeners.changes.collections": "/buckets/a",
            "changes.resources": "/buckets/a",
        }

    def test_each_change_is_recorded_once(self):
        fill(self.app)
        for n in range(3):
            self.create_record("a", "y", n=n)
        entry = self.entries()[("a", "y")]
        assert entry["last_modified"] == self.records_etag("a", "y")
        assert self.list_etag() == entry["last_modified"]
        assert set(self.entries()) == {("a", "x"), ("a", "y")}


class TestShortSpelling(BaseWebTest):
    @classmethod
    def get_app_settings(cls, backend):
        return {
            **base_settings(backend),
            "changes.collections": "/buckets/a/collections/x /buckets/b",
            "changes.excluded_collections": "/buckets/b/collections/z",
        }

    def test_collection_and_bucket_uris_minus_excluded(self):
        fill(self.app)
        self.app.put_json("/buckets/b/collections/w", {}, headers=ALICE)
        assert set(self.entries()) == {("a", "x"), ("b", "w")}

    def test_writes_in_unmonitored_collections_do_not_move_the_etag(self):
        fill(self.app)
        etag = self.list_etag()
        self.create_record("a", "y", n=1)
        self.create_record("b", "z", n=1)
        assert self.list_etag() == etag

    def test_deleting_an_unmonitored_bucket_changes_nothing(self):
        fill(self.app)
        self.create_collection("c", "q")
        etag = self.list_etag()
        self.app.delete("/buckets/c", headers=ALICE)
        assert self.list_etag() == etag
        assert self.get_list(f"_since={etag}").json["data"] == []


class TestEverythingMonitoredExceptExcluded(BaseWebTest):
    @classmethod
    def get_app_settings(cls, backend):
        return {**base_settings(backend), "changes.excluded_collections": "/buckets/a"}

    def test_excluded_bucket_is_absent(self):
        fill(self.app)
        assert set(self.entries()) == {("b", "z")}


class TestPrincipals(BaseWebTest):
    @classmethod
    def get_app_settings(cls, backend):
        alice = make_app_userid(backend)
        return {**base_settings(backend), "changes.principals": alice}

    def test_anonymous_gets_401_in_kinto_format(self):
        response = self.get_list(headers={}, status=401)
        assert response.json["code"] == 401
        assert response.json["errno"] == 104

    def test_other_user_gets_403(self):
        response = self.get_list(headers=BOB, status=403)
        assert response.json["errno"] == 121

    def test_allowed_user_reads_the_list(self):
        fill(self.app)
        assert ("a", "x") in self.entries(headers=ALICE)


def records_etag(app, bid: str, cid: str) -> int:
    response = app.get(f"/buckets/{bid}/collections/{cid}/records", headers=ALICE)
    return int(response.headers["ETag"].strip('"'))


def make_app_userid(backend) -> str:
    """Alice's prefixed user id, as Kinto computes it."""
    app = make_app(base_settings("memory"))
    return app.get("/", headers=ALICE).json["user"]["id"]


class TestHttpHost(BaseWebTest):
    @classmethod
    def get_app_settings(cls, backend):
        return {**base_settings(backend), "http_host": "kinto.example.com"}

    def test_host_comes_from_kinto_http_host(self):
        fill(self.app)
        assert self.entries()[("a", "x")]["host"] == "kinto.example.com"


class TestHttpHostOverride(BaseWebTest):
    @classmethod
    def get_app_settings(cls, backend):
        return {
            **base_settings(backend),
            "http_host": "kinto.example.com",
            "changes.http_host": "cdn.example.com",
        }

    def test_plugin_setting_wins(self):
        fill(self.app)
        assert self.entries()[("a", "x")]["host"] == "cdn.example.com"


class TestEnvironmentOverrides:
    def test_resources_from_environment_without_ini_key(self, monkeypatch):
        monkeypatch.setenv("KINTO_CHANGES_RESOURCES", "/buckets/b")
        app = build()
        fill(app)
        assert listed(app) == {("b", "z")}

    def test_environment_replaces_both_spellings_before_conflict_check(self, monkeypatch):
        monkeypatch.setenv("KINTO_CHANGES_RESOURCES", "/buckets/a/collections/y")
        app = build(
            **LISTENER_SETTINGS,
            **{
                "event_listeners.changes.collections": "/buckets/a",
                "changes.resources": "/buckets/b",
            },
        )
        fill(app)
        assert listed(app) == {("a", "y")}

    def test_listener_spelling_from_environment(self, monkeypatch):
        monkeypatch.setenv("KINTO_EVENT_LISTENERS_CHANGES_COLLECTIONS", "/buckets/a/collections/x")
        app = build(**LISTENER_SETTINGS)
        fill(app)
        assert listed(app) == {("a", "x")}

    def test_http_host_and_principals_from_environment(self, monkeypatch):
        monkeypatch.setenv("KINTO_CHANGES_HTTP_HOST", "env.example.com")
        monkeypatch.setenv("KINTO_CHANGES_PRINCIPALS", "system.Authenticated")
        app = build()
        fill(app)
        app.get("/buckets/monitor/collections/changes/records", status=401)
        data = app.get("/buckets/monitor/collections/changes/records", headers=ALICE).json
        assert {e["host"] for e in data["data"]} == {"env.example.com"}

    def test_bucket_and_collection_from_environment(self, monkeypatch):
        monkeypatch.setenv("KINTO_CHANGES_BUCKET", "status")
        monkeypatch.setenv("KINTO_CHANGES_COLLECTION", "all")
        app = build()
        fill(app)
        data = app.get("/buckets/status/collections/all/records", headers=ALICE).json["data"]
        assert len(data) == 3

    def test_bad_value_from_environment_names_the_variable(self, monkeypatch):
        monkeypatch.setenv("KINTO_CHANGES_SINCE_MAX_AGE_DAYS", "soon")
        with pytest.raises(ConfigurationError, match="KINTO_CHANGES_SINCE_MAX_AGE_DAYS.*soon"):
            build()


class TestStartupErrors:
    @pytest.mark.parametrize(
        "settings, message",
        [
            ({"changes.resources": "/buckets/a/groups/g"}, "changes.resources.*groups"),
            ({"changes.collections": "buckets/a"}, "changes.collections.*buckets/a"),
            ({"changes.resources": "/buckets/a/collections/"}, "changes.resources"),
            ({"changes.resources": "/buckets/a b/collections/c"}, "changes.resources"),
            ({"changes.excluded_collections": "/bucket/a"}, "changes.excluded_collections"),
            ({"changes.since_max_age_days": "3.5"}, r"changes.since_max_age_days.*3\.5"),
            ({"changes.since_max_age_days": "-2"}, "changes.since_max_age_days.*-2"),
            (
                {"changes.since_max_age_redirect_ttl_seconds": "1d"},
                "changes.since_max_age_redirect_ttl_seconds.*1d",
            ),
            ({"changes.bucket": "no/slash"}, "changes.bucket.*no/slash"),
            ({"changes.collection": "-x"}, "changes.collection.*-x"),
            ({"changes.principals": " "}, "changes.principals"),
            ({"changes.wait_max_seconds": "30s"}, "changes.wait_max_seconds.*30s"),
            ({"changes.wait_max_seconds": "-1"}, "changes.wait_max_seconds.*-1"),
            ({"changes.wait_max_seconds": "30000"}, "changes.wait_max_seconds.*at most 3600"),
            ({"changes.wait_max_requests": "many"}, "changes.wait_max_requests.*many"),
            (
                {"event_listeners.changes.wait_max_requests": "-3"},
                "event_listeners.changes.wait_max_requests.*-3",
            ),
            (
                {"monitor.changes.record_cache_expires_seconds": "often"},
                "monitor.changes.record_cache_expires_seconds.*often",
            ),
            (
                {"monitor.changes.record_cache_maximum_expires_seconds": "-5"},
                "monitor.changes.record_cache_maximum_expires_seconds.*-5",
            ),
            (
                {"changes.collections": "/buckets/a", "changes.resources": "/buckets/b"},
                "changes.collections.*changes.resources",
            ),
            (
                {
                    **LISTENER_SETTINGS,
                    "changes.principals": "system.Everyone",
                    "event_listeners.changes.principals": "system.Authenticated",
                },
                "principals",
            ),
            (
                {**LISTENER_SETTINGS, "event_listeners.changes.resources": "/buckets/a"},
                "event_listeners.changes.resources.*collections",
            ),
        ],
    )
    def test_bad_setting_stops_the_server(self, settings, message):
        with pytest.raises(ConfigurationError, match=message):
            build(**settings)

    def test_listener_spelling_requires_the_include(self):
        settings = {**base_settings("memory"), **LISTENER_SETTINGS, "includes": ""}
        with pytest.raises(ConfigurationError, match="kinto.includes"):
            make_app(settings)

    def test_listener_resources_keep_kintos_meaning(self):
        # Kinto's own filter on resource names still works.
        settings = {
            "event_listeners.changes.resources": "collection",
            "event_listeners.changes.collections": "/buckets/a",
        }
        app = build(**LISTENER_SETTINGS, **settings)
        fill(app)
        assert ("a", "x") in listed(app)
        app.post_json("/buckets/a/collections/x/records", {"data": {}}, headers=ALICE)
        entries = app.get(f"{LIST_URL}?collection=x", headers=ALICE).json["data"]
        entry = entries[0]
        assert entry["last_modified"] < records_etag(app, "a", "x")  # Records are filtered out.

    @pytest.mark.parametrize(
        "key, value, missing",
        [
            ("resources", "record collection", "bucket, group"),
            ("actions", "create delete", "update"),
        ],
    )
    def test_listener_filters_must_follow_access_when_nothing_is_configured(
        self, key, value, missing
    ):
        full_key = f"event_listeners.changes.{key}"
        with pytest.raises(ConfigurationError, match=f"{full_key}=.* leaves out {missing}"):
            build(**LISTENER_SETTINGS, **{full_key: value})
