"""The changeset endpoint, as a syncing client sees it."""

import kinto
import pytest
import webtest
from kinto.core.testing import get_request_class

from .storages import instrumented_settings
from .support import ALICE, BOB, BaseWebTest, base_settings


LIST_CHANGESET = "/buckets/monitor/collections/changes/changeset"


class ChangesetTest(BaseWebTest):
    def changeset(self, bid, cid, params="_expected=0", headers=ALICE, status=200):
        url = f"/buckets/{bid}/collections/{cid}/changeset?{params}"
        return self.app.get(url, headers=headers, status=status)

    def list_changeset(self, params="_expected=0", headers=ALICE, status=200):
        return self.app.get(f"{LIST_CHANGESET}?{params}", headers=headers, status=status)

    def records(self, bid, cid, params="", headers=ALICE):
        url = f"/buckets/{bid}/collections/{cid}/records?{params}"
        return self.app.get(url, headers=headers).json["data"]


class TestCollectionChangeset(ChangesetTest):
    def test_everything_to_sync_one_collection(self):
        collection = self.create_collection("b", "c", cache_expires=10)
        for i in range(3):
            self.create_record("b", "c", i=i)
        response = self.changeset("b", "c")
        body = response.json
        assert body["metadata"] == collection
        assert body["timestamp"] == self.records_etag("b", "c")
        assert body["changes"] == self.records("b", "c")
        assert [r["i"] for r in body["changes"]] == [2, 1, 0]
        assert response.last_modified.timestamp() == body["timestamp"] // 1000

    def test_empty_collection(self):
        self.create_collection("b", "c")
        body = self.changeset("b", "c").json
        assert body["changes"] == []
        assert body["timestamp"] == self.records_etag("b", "c")

    def test_since_quoted_or_not_includes_tombstones(self):
        self.create_collection("b", "c")
        kept = self.create_record("b", "c", x=1)
        doomed = self.create_record("b", "c", x=2)
        since = self.changeset("b", "c").json["timestamp"]
        self.app.delete(f"/buckets/b/collections/c/records/{doomed['id']}", headers=ALICE)
        updated = self.app.patch_json(
            f"/buckets/b/collections/c/records/{kept['id']}", {"data": {"x": 3}}, headers=ALICE
        ).json["data"]
        for value in (since, f'"{since}"'):
            body = self.changeset("b", "c", f"_expected=1&_since={value}").json
            assert body["changes"][0] == updated
            assert body["changes"][1]["id"] == doomed["id"]
            assert body["changes"][1]["deleted"] is True
            assert len(body["changes"]) == 2
            assert body["timestamp"] == self.records_etag("b", "c")

    def test_limit_gives_the_newest(self):
        self.create_collection("b", "c")
        records = [self.create_record("b", "c", i=i) for i in range(4)]
        body = self.changeset("b", "c", "_expected=0&_limit=2").json
        assert body["changes"] == [records[3], records[2]]
        since = records[0]["last_modified"]
        body = self.changeset("b", "c", f"_expected=0&_limit=1&_since={since}").json
        assert body["changes"] == [records[3]]

    def test_unknown_underscore_parameters_are_ignored(self):
        self.create_collection("b", "c")
        self.create_record("b", "c")
        body = self.changeset("b", "c", "_expected=0&_=123&_fields=x").json
        assert len(body["changes"]) == 1

    def test_collection_of_the_list_bucket_is_an_ordinary_collection(self):
        self.create_collection("monitor", "other")
        record = self.create_record("monitor", "other", x=1)
        assert self.changeset("monitor", "other").json["changes"] == [record]


class TestPermissions(ChangesetTest):
    """The changeset answers what Kinto answers on ``GET .../records``."""

    READERS = {"anonymous": {}, "alice": ALICE, "bob": BOB}

    def setup_data(self):
        self.create_collection("private", "c")
        self.create_collection("private", "shared")
        self.app.patch_json(
            "/buckets/private/collections/shared",
            {"permissions": {"read": ["system.Authenticated"]}},
            headers=ALICE,
        )
        self.app.put_json(
            "/buckets/public", {"permissions": {"read": ["system.Everyone"]}}, headers=ALICE
        )
        self.create_collection("public", "c")

    @pytest.mark.parametrize(
        "path",
        [
            "private/collections/c",
            "private/collections/shared",
            "private/collections/unknown",
            "private/collections/in%20valid",
            "unknown/collections/c",
            "public/collections/c",
            "public/collections/unknown",
            "public/collections/in%20valid",
        ],
    )
    def test_same_status_as_kinto_records(self, path):
        self.setup_data()
        for name, headers in self.READERS.items():
            url = f"/buckets/{path}"
            records = self.app.get(f"{url}/records", headers=headers, expect_errors=True)
            changeset = self.app.get(
                f"{url}/changeset?_expected=0", headers=headers, expect_errors=True
            )
            assert (name, changeset.status) == (name, records.status)
            if records.status_int >= 400:
                assert changeset.json == records.json

    def test_readers_of_the_collection(self):
        self.setup_data()
        self.create_record("private", "shared", x=1)
        assert len(self.changeset("private", "shared", headers=BOB).json["changes"]) == 1
        self.changeset("private", "shared", headers={}, status=401)
        self.changeset("private", "c", headers=BOB, status=403)
        self.changeset("public", "c", headers={})

    def test_record_create_permission_alone_is_not_enough(self):
        self.create_collection("b", "c")
        self.app.patch_json(
            "/buckets/b/collections/c",
            {"permissions": {"record:create": ["system.Authenticated"]}},
            headers=ALICE,
        )
        self.changeset("b", "c", headers=BOB, status=403)


class TestCompleteChangesets(ChangesetTest):
    """Never cut by the storage's fetch size."""

    @classmethod
    def get_app_settings(cls, backend):
        return {**base_settings(backend), "storage_max_fetch_size": 5}

    def test_every_record_and_every_tombstone(self):
        self.create_collection("b", "c")
        records = [self.create_record("b", "c", i=i) for i in range(13)]
        since = records[0]["last_modified"]
        for record in records[1:4]:
            self.app.delete(f"/buckets/b/collections/c/records/{record['id']}", headers=ALICE)
        changes = self.changeset("b", "c").json["changes"]
        assert [c["i"] for c in changes] == list(range(12, 3, -1)) + [0]
        changes = self.changeset("b", "c", f"_expected=0&_since={since}").json["changes"]
        assert len(changes) == 12
        assert sum(1 for c in changes if c.get("deleted")) == 3
        limited = self.changeset("b", "c", "_expected=0&_limit=7").json["changes"]
        assert limited == self.changeset("b", "c").json["changes"][:7]

    def test_every_list_entry(self):
        for i in range(12):
            self.create_collection("b", f"c{i}")
        entries = self.list_changeset().json["changes"]
        assert sorted(e["collection"] for e in entries) == sorted(f"c{i}" for i in range(12))
        assert len(self.list_changeset("_expected=0&_limit=6").json["changes"]) == 6


class TestListChangeset(ChangesetTest):
    def test_the_list_entries_and_its_etag(self):
        self.create_collection("b", "c1")
        self.create_collection("b", "c2")
        self.create_record("b", "c1", x=1)
        response = self.list_changeset()
        body = response.json
        assert body["metadata"] == {}
        assert body["timestamp"] == self.list_etag()
        assert body["changes"] == self.get_list().json["data"]
        assert [e["collection"] for e in body["changes"]] == ["c1", "c2"]
        assert body["changes"][0]["last_modified"] == self.records_etag("b", "c1")
        assert response.last_modified.timestamp() == body["timestamp"] // 1000

    def test_since_compares_cursors_and_includes_tombstones(self):
        self.create_collection("b", "c1")
        self.create_collection("b", "c2")
        self.create_collection("b", "c3")
        since = self.list_changeset().json["timestamp"]
        self.create_record("b", "c1", x=1)
        self.app.delete("/buckets/b/collections/c2", headers=ALICE)
        body = self.list_changeset(f'_expected=0&_since="{since}"').json
        assert body["changes"] == self.get_list(f"_since={since}").json["data"]
        by_collection = {e["collection"]: e for e in body["changes"]}
        assert by_collection.keys() == {"c1", "c2"}
        assert by_collection["c2"]["deleted"] is True
        assert by_collection["c1"]["last_modified"] == self.records_etag("b", "c1")
        assert body["timestamp"] == self.list_etag()
        assert self.list_changeset(f"_expected=0&_since={body['timestamp']}").json["changes"] == []

    def test_bucket_and_collection_filters(self):
        self.create_collection("b1", "c")
        self.create_collection("b1", "d")
        self.create_collection("b2", "c")
        since = self.list_etag()
        self.app.delete("/buckets/b1/collections/d", headers=ALICE)

        def listed(params):
            changes = self.list_changeset(f"_expected=0&{params}").json["changes"]
            return sorted((e["bucket"], e["collection"]) for e in changes)

        assert listed("bucket=b1") == [("b1", "c")]
        assert listed("collection=c") == [("b1", "c"), ("b2", "c")]
        assert listed("bucket=b2&collection=c") == [("b2", "c")]
        assert listed(f"bucket=b1&_since={since}") == [("b1", "d")]
        assert listed("bucket=unknown") == []

    def test_limit(self):
        for cid in ("c1", "c2", "c3"):
            self.create_collection("b", cid)
        changes = self.list_changeset("_expected=0&_limit=2").json["changes"]
        assert [e["collection"] for e in changes] == ["c3", "c2"]

    def test_served_by_the_plugin_even_when_the_collection_exists(self):
        self.create_collection("monitor", "changes")
        self.create_collection("b", "c")
        changes = self.list_changeset().json["changes"]
        assert [(e["bucket"], e["collection"]) for e in changes] == [("b", "c")]


class TestListChangesetPrincipals(ChangesetTest):
    @classmethod
    def get_app_settings(cls, backend):
        return {**base_settings(backend), "changes.principals": "system.Authenticated"}

    def test_readable_by_the_configured_principals_only(self):
        self.create_collection("b", "c")
        self.list_changeset(headers={}, status=401)
        assert len(self.list_changeset(headers=ALICE).json["changes"]) == 1
        # Bob may read the list, not Alice's collection (nothing configured).
        assert self.list_changeset(headers=BOB).json["changes"] == []


class TestListElsewhere(ChangesetTest):
    @classmethod
    def get_app_settings(cls, backend):
        return {
            **base_settings(backend),
            "changes.bucket": "tracking",
            "changes.collection": "all",
        }

    def test_changeset_follows_the_list_path(self):
        self.create_collection("b", "c")
        body = self.app.get(
            "/buckets/tracking/collections/all/changeset?_expected=0", headers=ALICE
        ).json
        assert body["metadata"] == {}
        assert [e["collection"] for e in body["changes"]] == ["c"]
        # The default path is now an ordinary (missing) collection.
        self.list_changeset(headers=ALICE, status=403)


class TestConsistentSnapshot(ChangesetTest):
    """A write committing in the middle of a read never yields a mix of two states."""

    @classmethod
    def get_app_settings(cls, backend):
        return instrumented_settings(base_settings(backend))

    @property
    def storage(self):
        return self.app.app.registry.storage

    def race(self, writes: int, race_on: str, bid="b", cid="c"):
        self.storage.race = lambda: self.create_record(bid, cid, x="concurrent")
        self.storage.race_on = race_on
        self.storage.races = writes

    @pytest.fixture(autouse=True)
    def _stop_races(self):
        yield
        self.storage.races = 0

    def test_collection_read_is_retried(self):
        self.create_collection("b", "c")
        self.create_record("b", "c", x="before")
        self.race(1, "record")
        body = self.changeset("b", "c").json
        assert self.storage.races == 0
        assert [r["x"] for r in body["changes"]] == ["concurrent", "before"]
        assert body["timestamp"] == body["changes"][0]["last_modified"]
        assert body["timestamp"] == self.records_etag("b", "c")

    def test_list_read_is_retried(self):
        self.create_collection("b", "c")
        self.create_collection("b", "d")
        self.race(1, "changes", cid="d")
        body = self.list_changeset().json
        assert self.storage.races == 0
        assert body["timestamp"] == self.list_etag()
        assert body["changes"] == self.get_list().json["data"]
        assert body["changes"][0]["collection"] == "d"

    def test_503_when_it_never_settles(self):
        self.create_collection("b", "c")
        urls = {"record": "/buckets/b/collections/c/changeset", "changes": LIST_CHANGESET}
        for race_on, url in urls.items():
            self.race(100, race_on)
            response = self.app.get(f"{url}?_expected=0", headers=ALICE, status=503)
            assert response.json["errno"] == 201
            assert response.json["message"].startswith("The collection kept changing")
            assert "Retry-After" in response.headers
            assert self.storage.races < 100


class TestReadOnlyNode(ChangesetTest):
    """A ``kinto.readonly`` node sharing the primary's database."""

    @classmethod
    def get_app_settings(cls, backend):
        return {**base_settings(backend), "changes.excluded_collections": "/buckets/quiet"}

    backends = ("postgresql",)  # Two memory apps cannot share their storage.

    @pytest.fixture(autouse=True)
    def _replica(self):
        settings = {**self.get_app_settings(self.backend), "readonly": "true"}
        self.replica = webtest.TestApp(kinto.main({}, **settings))
        self.replica.RequestClass = get_request_class("v1")

    def test_same_answers_as_the_primary(self):
        self.create_collection("b", "c")
        self.create_collection("b", "empty")
        since = self.list_etag()
        self.create_record("b", "c", x=1)
        for url in [
            "/buckets/b/collections/c/changeset?_expected=0",
            "/buckets/b/collections/empty/changeset?_expected=0",
            f"{LIST_CHANGESET}?_expected=0",
            f"{LIST_CHANGESET}?_expected=0&_since={since}",
        ]:
            assert (
                self.replica.get(url, headers=ALICE).json == self.app.get(url, headers=ALICE).json
            )

    def test_503_when_the_records_timestamp_was_never_written(self):
        # Unmonitored, empty and never read on the primary: no records timestamp.
        self.create_collection("quiet", "c")
        url = "/buckets/quiet/collections/c/changeset?_expected=0"
        response = self.replica.get(url, headers=ALICE, status=503)
        assert response.json["errno"] == 201
        assert "writable instance" in response.json["message"]
        assert self.app.get(url, headers=ALICE).json["changes"] == []
        assert self.replica.get(url, headers=ALICE).json["changes"] == []
