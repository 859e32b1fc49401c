"""The read path of the list and the write path of the entries.

The list selects visible entries with storage filters
(``visibility_filters``) and disjoint alternatives (``monitored_rules``),
exactly those ``ChangesSettings.is_monitored`` lists.
The writer reads the newest cursor and the records timestamps in the same
round trip as it takes the lock. Both must give the same answers as before.
"""

import itertools

import pytest
from kinto.core.storage import Filter, Sort
from kinto.core.storage.memory import apply_filters
from kinto.core.utils import COMPARISON

from kinto_changes.access import READERS, Reader
from kinto_changes.listing import monitored_rules, visibility_filters
from kinto_changes.settings import ChangesSettings
from kinto_changes.utils import entry_id
from kinto_changes.writer import PARENT_ID, RESOURCE_NAME

from .storages import instrumented_settings
from .support import ALICE, BOB, LIST_URL, BaseWebTest, base_settings


def an_entry(bucket: str, collection: str, host: str = "", deleted: bool = False) -> dict:
    entry = {
        "id": entry_id(host, bucket, collection),
        "bucket": bucket,
        "collection": collection,
        "host": host,
        "last_modified": 1,
        "_timestamp": 1,
    }
    if deleted:
        entry["deleted"] = True
    return entry


ENTRIES = [
    an_entry(bucket, collection, host, deleted)
    for bucket, collection, host, deleted in itertools.product(
        ("a", "b", "monitor"), ("x", "y", "changes"), ("", "other.host"), (False, True)
    )
]
SETTINGS = [
    ChangesSettings(collections=collections, excluded_collections=excluded, http_host=host)
    for collections, excluded, host in itertools.product(
        [
            (),
            ("/buckets/a",),
            ("/buckets/a", "/buckets/monitor"),
            ("/buckets/b/collections/y",),
            ("/buckets/a", "/buckets/b/collections/y"),
        ],
        [(), ("/buckets/b",), ("/buckets/a/collections/x",)],
        ["", "other.host"],
    )
]


def monitored(settings: ChangesSettings, include_deleted: bool) -> list[dict]:
    """The entries of ``ENTRIES`` a reader sees, by the rule's definition."""
    return [
        e
        for e in ENTRIES
        if e["host"] == settings.http_host
        and (include_deleted or not e.get("deleted"))
        and settings.is_monitored(e["bucket"], e["collection"])
    ]


@pytest.mark.parametrize("settings", SETTINGS)
@pytest.mark.parametrize("include_deleted", [False, True])
def test_storage_filters_select_the_monitored_entries(settings, include_deleted):
    expected = monitored(settings, include_deleted)
    # Kinto's memory backend evaluates the filters as PostgreSQL does.
    selected = list(apply_filters(ENTRIES, visibility_filters(settings, include_deleted)))
    rules = monitored_rules(settings)
    if rules:  # Disjoint: each entry is selected at most once.
        selected = [e for rule in rules for e in apply_filters(selected, rule)]
    assert sorted(selected, key=ENTRIES.index) == expected


class TestListPaths(BaseWebTest):
    def test_pages_skip_tombstones_and_give_every_entry_once(self):
        for cid in ("c1", "c2", "c3", "c4", "c5", "c6"):
            self.create_collection("b", cid)
        for cid in ("c2", "c5"):
            self.app.delete(f"/buckets/b/collections/{cid}", headers=ALICE)
        seen, url = [], "/buckets/monitor/collections/changes/records?_limit=2"
        while url:
            response = self.app.get(url, headers=ALICE)
            assert len(response.json["data"]) <= 2
            seen += [e["collection"] for e in response.json["data"]]
            url = response.headers.get("Next-Page", "").replace("http://localhost/v1", "")
        assert sorted(seen) == ["c1", "c3", "c4", "c6"]

    def test_empty_lists_of_values_count_what_they_list(self):
        for bid, cid in [("a", "x"), ("b", "y")]:
            self.create_collection(bid, cid)
        for query in ("exclude_bucket=", "exclude_id=", "in_bucket=", "exclude_collection=,"):
            listed = self.get_list(query).json["data"]
            head = self.app.head(f"{LIST_URL}?{query}", headers=ALICE)
            assert head.headers["Total-Objects"] == str(len(listed)), query

    def test_head_counts_live_entries_only(self):
        for cid in ("c1", "c2", "c3"):
            self.create_collection("b", cid)
        self.app.delete("/buckets/b/collections/c2", headers=ALICE)
        response = self.app.head("/buckets/monitor/collections/changes/records", headers=ALICE)
        assert response.headers["Total-Objects"] == "2"

    def test_since_returns_tombstones_with_filters(self):
        self.create_collection("b", "c1")
        self.create_collection("b", "c2")
        etag = self.list_etag()
        self.app.delete("/buckets/b/collections/c1", headers=ALICE)
        seen = self.entries(f"_since={etag}&bucket=b")
        assert seen[("b", "c1")]["deleted"] is True
        assert ("b", "c2") not in seen
        assert ("b", "c1") not in self.entries()

    def test_empty_list_etag_is_zero_until_the_first_entry(self):
        assert self.list_etag() == 0
        self.create_collection("b", "c1")
        assert self.list_etag() > 0


class TestWriterReadsUnderTheLock(BaseWebTest):
    def test_batch_over_several_collections(self):
        for cid in ("c1", "c2", "c3"):
            self.create_collection("b", cid)
        requests = [
            {"method": "POST", "path": f"/buckets/b/collections/{cid}/records", "body": {}}
            for cid in ("c1", "c2", "c3", "c1")
        ]
        self.app.post_json("/batch", {"requests": requests}, headers=ALICE)
        entries = self.entries()
        for cid in ("c1", "c2", "c3"):
            assert entries[("b", cid)]["last_modified"] == self.records_etag("b", cid)

    def test_collection_created_empty_gets_its_records_timestamp(self):
        # Its records timestamp is not stored yet: the writer stores it.
        self.create_collection("b", "empty")
        entry = self.entries()[("b", "empty")]
        assert entry["last_modified"] == self.records_etag("b", "empty")

    def test_records_deleted_then_collection_recreated(self):
        self.create_collection("b", "c")
        self.create_record("b", "c", x=1)
        self.app.delete("/buckets/b/collections/c/records", headers=ALICE)
        assert self.entries()[("b", "c")]["last_modified"] == self.records_etag("b", "c")
        self.app.delete("/buckets/b", headers=ALICE)
        self.create_collection("b", "c")
        assert self.entries()[("b", "c")]["last_modified"] == self.records_etag("b", "c")


class TestConfiguredCollections(BaseWebTest):
    @classmethod
    def get_app_settings(cls, backend):
        settings = base_settings(backend)
        settings["changes.resources"] = "/buckets/a /buckets/b/collections/y"
        settings["changes.excluded_collections"] = "/buckets/a/collections/x"
        return settings

    def test_only_the_monitored_collections_are_listed(self):
        for bid, cid in [("a", "x"), ("a", "z"), ("b", "y"), ("b", "w"), ("c", "y")]:
            self.create_collection(bid, cid)
        assert sorted(self.entries()) == [("a", "z"), ("b", "y")]


class TestRecordWriteOnPostgreSQL(BaseWebTest):
    """A record write updates its entry in the statement that takes the lock."""

    backends = ("postgresql",)

    @classmethod
    def get_app_settings(cls, backend):
        return instrumented_settings(base_settings(backend))

    def test_no_separate_entry_update(self):
        self.create_collection("b", "c")
        bob = self.app.get("/", headers=BOB).json["user"]["id"]
        grant = {"permissions": {"read": [bob]}}
        self.app.patch_json("/buckets/b/collections/c", grant, headers=ALICE)
        storage = self.app.app.registry.storage
        storage.calls.clear()
        self.create_record("b", "c")
        assert "update" not in storage.calls
        entry = self.entries(headers=BOB)[("b", "c")]  # Its readers were kept.
        assert entry["last_modified"] == self.records_etag("b", "c")


class TestConfiguredListStoresNoReaders(BaseWebTest):
    """Every reader sees every configured entry: no readers are resolved or stored."""

    @classmethod
    def get_app_settings(cls, backend):
        return instrumented_settings({**base_settings(backend), "changes.resources": "/buckets/b"})

    def test_entries_without_readers_and_record_writes_in_one_statement(self):
        self.create_collection("b", "c")
        self.app.patch_json("/buckets/b", {"data": {"x": 1}}, headers=ALICE)
        storage = self.app.app.registry.storage
        assert [sorted(e) for e in self.stored_entries()] == [
            ["_timestamp", "bucket", "collection", "host", "id", "last_modified"]
        ]
        storage.calls.clear()
        self.create_record("b", "c")
        if self.backend == "postgresql":  # The lock's statement wrote the entry.
            assert "update" not in storage.calls
        entry = self.entries(headers=BOB)[("b", "c")]
        assert entry["last_modified"] == self.records_etag("b", "c")


class TestEntriesReaders(BaseWebTest):
    """Each entry stores its own collection's readers."""

    def stored(self) -> dict:
        return {e["collection"]: e for e in self.stored_entries()}

    def test_a_change_of_readers_changes_one_entry(self):
        for cid in ("c1", "c2"):
            self.create_collection("b", cid)
        bob = self.grant_read("b", ["c1", "c2"])
        self.create_record("b", "c1")  # Its new entry takes the stored readers.
        revoke = {"data": {}, "permissions": {"read": []}}
        self.app.put_json("/buckets/b/collections/c1", revoke, headers=ALICE)
        assert sorted(self.entries(headers=BOB)) == [("b", "c2")]
        assert bob not in self.stored()["c1"].get("_readers", [])
        assert bob in self.stored()["c2"]["_readers"]
        self.create_record("b", "c2")
        entry = self.entries(headers=BOB)[("b", "c2")]
        assert entry["last_modified"] == self.records_etag("b", "c2")


class TestPostgreSQLListReadsAsKinto(BaseWebTest):
    """On PostgreSQL the list reads its entries with its own SQL
    (``PostgreSQLBackend.list_entries``): the same objects as ``storage.list_all``."""

    backends = ("postgresql",)

    def test_same_entries_as_list_all_whatever_the_query(self):
        for bid, cid in [("a", "x"), ("b", "c1"), ("b", "c2"), ("b", "c3"), ("b", "c4")]:
            self.create_collection(bid, cid)
        bob = self.grant_read("b", ["c3"])
        self.create_record("b", "c1")
        self.app.delete("/buckets/b/collections/c2", headers=ALICE)  # A tombstone.
        storage = self.app.app.registry.storage
        stored = self.stored_entries()
        cursors = sorted(e["last_modified"] for e in stored)
        ids = sorted(e["id"] for e in stored)
        newest_first = [Sort("last_modified", -1)]
        reader = Reader(frozenset({bob, "system.Everyone"}), frozenset({"a"}))
        queries = [
            {},
            {"filters": [Filter("bucket", "b", COMPARISON.EQ)], "sorting": newest_first},
            {"filters": [Filter("deleted", True, COMPARISON.NOT)]},
            {"filters": [Filter("deleted", True, COMPARISON.EQ)], "include_deleted": True},
            {"filters": [Filter(READERS, [bob], COMPARISON.CONTAINS_ANY)]},
            {"filters": [Filter(READERS, True, COMPARISON.HAS)]},
            {"filters": [Filter("bucket", ["a", "z"], COMPARISON.IN)]},
            {"filters": [Filter("bucket", ["a"], COMPARISON.EXCLUDE)]},
            {"filters": [Filter("id", ids[:2], COMPARISON.IN), Filter("host", "", COMPARISON.EQ)]},
            {"filters": [Filter("id", ids[:2], COMPARISON.EXCLUDE)]},
            {"filters": [Filter("id", ids[2], COMPARISON.LT)], "sorting": [Sort("id", 1)]},
            {"filters": [Filter("collection", "c3", COMPARISON.MIN)]},
            {"filters": [Filter("collection", "c3", COMPARISON.MAX)]},
            {"filters": [Filter("last_modified", cursors[1], COMPARISON.GT)]},
            {"filters": [Filter("last_modified", cursors[1], COMPARISON.EQ)]},
            # A reader's alternatives: through a bucket they may read, through
            # their principals, and tombstones after some cursor.
            {"pagination_rules": reader.rules(True, 0), "include_deleted": True},
            {"pagination_rules": reader.rules(True, cursors[3]), "include_deleted": True},
            {"filters": [Filter("bucket", "none", COMPARISON.EQ)]},
            {"sorting": [Sort("collection", 1), *newest_first], "limit": 3},
            {"sorting": [Sort("bucket", -1), Sort("id", 1)]},
            {
                "sorting": newest_first,
                "pagination_rules": [[Filter("last_modified", cursors[2], COMPARISON.LT)]],
                "limit": 2,
            },
        ]
        backend = self.app.app.registry.changes_backend
        for query in queries:
            expected = storage.list_all(resource_name=RESOURCE_NAME, parent_id=PARENT_ID, **query)
            assert backend.list_entries(storage, **query) == expected, query
        # Kinto's own ``list_all`` reads what this does not translate.
        for untranslated in (
            Filter("collection", "c*", COMPARISON.LIKE),
            Filter("id", [], COMPARISON.EXCLUDE),  # Kinto's ``NOT IN (NULL)``.
            Filter("bucket", [], COMPARISON.IN),
        ):
            assert backend.list_entries(storage, filters=[untranslated]) is None
