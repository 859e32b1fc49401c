"""The list speaks Kinto's list protocol, as a polling client sees it."""

from urllib.parse import urlsplit

import sqlalchemy
from kinto.core.utils import msec_time

from .support import ALICE, LIST_URL, POSTGRESQL_URL, BaseWebTest, postgresql_engine


class ListTest(BaseWebTest):
    def fill(self, count: int = 5, bucket: str = "b") -> None:
        for i in range(count):
            self.create_collection(bucket, f"c{i}")

    def pages(self, params: str) -> list[dict]:
        """Every entry of the list, following ``Next-Page``."""
        url, entries = f"{LIST_URL}?{params}", []
        while url:
            response = self.app.get(url, headers=ALICE)
            entries += response.json["data"]
            next_page = response.headers.get("Next-Page")
            url = next_page and next_page.split("/v1", 1)[1]
        return entries


class TestProtocol(ListTest):
    def test_entry_shape_and_ids_match_the_original_plugin(self):
        self.create_collection("blocklists", "certificates")
        (entry,) = self.get_list().json["data"]
        assert set(entry) == {"id", "last_modified", "bucket", "collection", "host"}
        # uuid(md5("" + "/buckets/blocklists/collections/certificates")), computed apart.
        assert entry["id"] == "51a9f5b0-a029-3a6d-dc76-c4497fea7d51"

    def test_etag_and_last_modified_headers(self):
        self.fill(2)
        response = self.get_list()
        newest = max(e["last_modified"] for e in response.json["data"])
        assert response.headers["ETag"] == f'"{newest}"'
        assert "Last-Modified" in response.headers

    def test_if_none_match_gives_304(self):
        self.fill(2)
        etag = self.get_list().headers["ETag"]
        response = self.app.get(LIST_URL, headers={"If-None-Match": etag}, status=304)
        assert response.headers["ETag"] == etag

    def test_if_none_match_is_stale_after_a_change(self):
        self.fill(2)
        etag = self.get_list().headers["ETag"]
        self.create_record("b", "c0", x=1)
        self.app.get(LIST_URL, headers={"If-None-Match": etag}, status=200)

    def test_if_none_match_star_gives_412(self):
        self.fill(1)
        response = self.app.get(LIST_URL, headers={"If-None-Match": "*"}, status=412)
        assert response.json["errno"] == 114

    def test_since_and_before(self):
        self.fill(3)
        first, second, third = sorted(e["last_modified"] for e in self.get_list().json["data"])
        assert {e["collection"] for e in self.get_list(f"_since={first}").json["data"]} == {
            "c1",
            "c2",
        }
        assert [e["collection"] for e in self.get_list(f"_before={second}").json["data"]] == ["c0"]
        assert self.get_list(f"_since={third}").json["data"] == []

    def test_default_order_is_newest_first(self):
        self.fill(4)
        collections = [e["collection"] for e in self.get_list().json["data"]]
        assert collections == ["c3", "c2", "c1", "c0"]

    def test_sort_by_field(self):
        self.fill(3)
        collections = [e["collection"] for e in self.get_list("_sort=collection").json["data"]]
        assert collections == ["c0", "c1", "c2"]

    def test_sort_by_several_fields_with_tombstones(self):
        self.fill(3, bucket="a")
        self.fill(2, bucket="b")
        before = self.get_list().headers["ETag"].strip('"')
        self.app.delete("/buckets/a/collections/c1", headers=ALICE)
        self.create_record("b", "c0", x=1)
        entries = self.get_list("_sort=-bucket,collection").json["data"]
        assert [(e["bucket"], e["collection"]) for e in entries] == [
            ("b", "c0"),
            ("b", "c1"),
            ("a", "c0"),
            ("a", "c2"),
        ]
        # With ``_since``, the tombstone takes its place in the same order.
        entries = self.get_list(f"_since={before}&_sort=bucket,-last_modified").json["data"]
        assert [(e["bucket"], e["collection"], e.get("deleted", False)) for e in entries] == [
            ("a", "c1", True),
            ("b", "c0", False),
        ]

    def test_sort_by_deleted_and_nested_fields(self):
        # Accepted by Kinto's rules (``deleted`` is a known field, a dotted
        # field is checked on its first part); live entries have no ``deleted``.
        self.fill(3)
        before = self.get_list().headers["ETag"].strip('"')
        self.app.delete("/buckets/b/collections/c1", headers=ALICE)
        for sort in ("deleted", "-deleted", "deleted,-collection", "bucket.x"):
            entries = self.get_list(f"_sort={sort}").json["data"]
            assert sorted(e["collection"] for e in entries) == ["c0", "c2"]
        self.create_record("b", "c2", x=1)
        # As PostgreSQL orders JSON values, and Kinto's memory backend: absent last.
        for sort, expected in (
            ("deleted", [("c1", True), ("c2", False)]),
            ("-deleted,collection", [("c2", False), ("c1", True)]),
        ):
            entries = self.get_list(f"_since={before}&_sort={sort}").json["data"]
            assert [(e["collection"], e.get("deleted", False)) for e in entries] == expected

    def test_unknown_sort_field_is_400(self):
        response = self.get_list("_sort=nope", status=400)
        assert response.json["errno"] == 107

    def test_partial_fields_keep_the_records_timestamp(self):
        self.fill(1)
        self.create_record("b", "c0", x=1)
        (entry,) = self.get_list("_fields=bucket").json["data"]
        assert set(entry) == {"id", "last_modified", "bucket"}
        assert entry["last_modified"] == self.records_etag("b", "c0")

    def test_field_filters(self):
        self.fill(2, bucket="a")
        self.fill(2, bucket="b")
        assert {e["bucket"] for e in self.get_list("bucket=a").json["data"]} == {"a"}
        assert len(self.get_list("in_bucket=a,b&collection=c1").json["data"]) == 2
        assert len(self.get_list("has_host=true").json["data"]) == 4
        assert self.get_list("has_bucket=false").json["data"] == []

    def test_unknown_filter_field_is_400(self):
        response = self.get_list("_uri=x&owner=me", status=400)
        assert "owner" in response.json["message"]

    def test_head_counts_entries(self):
        self.fill(3)
        response = self.app.head(LIST_URL, headers=ALICE)
        assert response.headers["Total-Objects"] == "3"
        assert response.body == b""

    def test_writes_are_405_in_kinto_format(self):
        for method in ("post_json", "put_json", "patch_json", "delete"):
            call = getattr(self.app, method)
            args = (LIST_URL, {"data": {}}) if method.endswith("json") else (LIST_URL,)
            response = call(*args, headers=ALICE, status=405)
            assert response.json["errno"] == 115

    def test_entry_urls_are_answered_by_the_plugin(self):
        self.fill(1)
        (entry,) = self.get_list().json["data"]
        url = f"{LIST_URL}/{entry['id']}"
        for method in ("get", "put_json", "patch_json", "delete"):
            call = getattr(self.app, method)
            args = (url, {"data": {}}) if method.endswith("json") else (url,)
            assert call(*args, headers=ALICE, status=405).json["errno"] == 115


class TestPagination(ListTest):
    @classmethod
    def get_app_settings(cls, backend):
        return {**super().get_app_settings(backend), "paginate_by": 3}

    def test_every_entry_exactly_once_by_default(self):
        self.fill(8)
        entries = self.pages("_limit=3")
        assert sorted(e["collection"] for e in entries) == [f"c{i}" for i in range(8)]

    def test_ties_are_paginated_exactly_once(self):
        self.fill(4, bucket="a")
        self.fill(4, bucket="b")
        entries = self.pages("_sort=bucket&_limit=3")
        keys = [(e["bucket"], e["collection"]) for e in entries]
        assert len(keys) == len(set(keys)) == 8
        assert [b for b, _ in keys] == ["a"] * 4 + ["b"] * 4

    def test_next_page_keeps_the_filters(self):
        self.fill(5, bucket="a")
        self.fill(2, bucket="b")
        next_page = self.get_list("bucket=a&_limit=2").headers["Next-Page"]
        assert "bucket=a" in urlsplit(next_page).query
        assert {e["bucket"] for e in self.pages("bucket=a&_limit=2")} == {"a"}


class TestTimestampsAndCursor(ListTest):
    def test_entry_follows_every_kind_of_write(self):
        self.create_collection("b", "c")
        entry = lambda: self.entries()[("b", "c")]["last_modified"]  # noqa: E731
        assert entry() == self.records_etag("b", "c")
        record = self.create_record("b", "c", x=1)
        assert entry() == self.records_etag("b", "c")
        url = f"/buckets/b/collections/c/records/{record['id']}"
        self.app.put_json(url, {"data": {"x": 2}}, headers=ALICE)
        assert entry() == self.records_etag("b", "c")
        self.app.patch_json(url, {"data": {"x": 3}}, headers=ALICE)
        assert entry() == self.records_etag("b", "c")
        self.app.delete(url, headers=ALICE)
        assert entry() == self.records_etag("b", "c")
        self.create_record("b", "c", x=4)
        self.app.delete("/buckets/b/collections/c/records", headers=ALICE)
        assert entry() == self.records_etag("b", "c")

    def test_metadata_changes_do_not_move_the_entry(self):
        self.create_collection("b", "c")
        before = self.entries()[("b", "c")]
        etag = self.list_etag()
        self.app.patch_json("/buckets/b/collections/c", {"data": {"title": "x"}}, headers=ALICE)
        self.app.patch_json("/buckets/b", {"data": {"title": "y"}}, headers=ALICE)
        assert self.entries()[("b", "c")] == before
        assert self.list_etag() == etag

    def test_two_collections_with_the_same_timestamp(self):
        self.create_collection("b", "one")
        self.create_collection("b", "two")
        forced = msec_time() + 5000
        self.create_record("b", "one", last_modified=forced)
        self.create_record("b", "two", last_modified=forced)
        entries = self.entries()
        assert self.records_etag("b", "one") == self.records_etag("b", "two") == forced
        assert entries[("b", "one")]["last_modified"] == forced
        assert entries[("b", "two")]["last_modified"] == forced

    def test_forged_future_timestamp_does_not_hide_later_changes(self):
        self.create_collection("b", "forged")
        self.create_collection("b", "later")
        self.create_record("b", "forged", last_modified=msec_time() + 3600 * 1000)
        etag = self.list_etag()
        assert etag < msec_time() + 1000  # The cursor is never far in the future.
        self.create_record("b", "later", x=1)
        seen = self.entries(f"_since={etag}")
        assert seen[("b", "later")]["last_modified"] == self.records_etag("b", "later")

    def test_batch_into_one_collection_then_a_write_into_another(self):
        self.create_collection("b", "a")
        self.create_collection("b", "bee")
        etag = self.list_etag()
        requests = [
            {"method": "POST", "path": "/buckets/b/collections/a/records", "body": {"data": {}}}
            for _ in range(25)
        ]
        self.app.post_json("/batch", {"requests": requests}, headers=ALICE)
        self.create_record("b", "bee", x=1)
        seen = self.entries(f"_since={etag}")
        assert seen[("b", "a")]["last_modified"] == self.records_etag("b", "a")
        assert seen[("b", "bee")]["last_modified"] == self.records_etag("b", "bee")
        # The poller's next cursor is past both.
        assert self.entries(f"_since={self.list_etag()}") == {}

    def test_batch_into_several_collections(self):
        for cid in ("x", "y", "z"):
            self.create_collection("b", cid)
        requests = [
            {"method": "POST", "path": f"/buckets/b/collections/{cid}/records", "body": {}}
            for cid in ("x", "y", "z", "x")
        ]
        self.app.post_json("/batch", {"requests": requests}, headers=ALICE)
        entries = self.entries()
        for cid in ("x", "y", "z"):
            assert entries[("b", cid)]["last_modified"] == self.records_etag("b", cid)


class TestTombstones(ListTest):
    def test_collection_deletion(self):
        self.fill(2)
        (entry,) = [e for e in self.get_list().json["data"] if e["collection"] == "c0"]
        etag = self.list_etag()
        self.app.delete("/buckets/b/collections/c0", headers=ALICE)
        assert set(self.entries()) == {("b", "c1")}
        (tombstone,) = self.get_list(f"_since={etag}").json["data"]
        assert tombstone["deleted"] is True
        assert tombstone["id"] == entry["id"]
        assert (tombstone["bucket"], tombstone["collection"], tombstone["host"]) == ("b", "c0", "")
        assert tombstone["last_modified"] == self.list_etag() > etag

    def test_bucket_deletion_with_bucket_filter(self):
        self.fill(2, bucket="a")
        self.fill(1, bucket="b")
        etag = self.list_etag()
        self.app.delete("/buckets/a", headers=ALICE)
        assert set(self.entries()) == {("b", "c0")}
        tombstones = self.get_list(f"_since={etag}&bucket=a").json["data"]
        assert {(t["collection"], t["deleted"]) for t in tombstones} == {
            ("c0", True),
            ("c1", True),
        }
        assert self.get_list(f"_since={etag}&bucket=b").json["data"] == []

    def test_etag_never_goes_backwards(self):
        self.fill(2)
        self.create_record("b", "c1", x=1)
        etag = self.list_etag()
        self.app.delete("/buckets/b/collections/c1", headers=ALICE)
        assert self.list_etag() > etag

    def test_recreated_collection_comes_back_with_the_same_id(self):
        self.fill(1)
        (entry,) = self.get_list().json["data"]
        self.app.delete("/buckets/b", headers=ALICE)
        assert self.get_list().json["data"] == []
        self.create_collection("b", "c0")
        (again,) = self.get_list().json["data"]
        assert again["id"] == entry["id"]
        assert "deleted" not in again
        assert again["last_modified"] == self.records_etag("b", "c0")

    def test_delete_and_recreate_in_one_batch(self):
        self.fill(1)
        requests = [
            {"method": "DELETE", "path": "/buckets/b/collections/c0"},
            {"method": "PUT", "path": "/buckets/b/collections/c0"},
            {"method": "POST", "path": "/buckets/b/collections/c0/records", "body": {}},
        ]
        self.app.post_json("/batch", {"requests": requests}, headers=ALICE)
        entry = self.entries()[("b", "c0")]
        assert entry["last_modified"] == self.records_etag("b", "c0")

    def test_plural_delete_of_collections(self):
        self.fill(3)
        etag = self.list_etag()
        self.app.delete("/buckets/b/collections", headers=ALICE)
        assert self.get_list().json["data"] == []
        assert len(self.get_list(f"_since={etag}").json["data"]) == 3


class TestRealMonitorBucket(ListTest):
    def test_a_real_monitor_changes_collection_changes_nothing(self):
        self.fill(1)
        self.create_collection("monitor", "changes")
        self.create_collection("monitor", "other")
        self.create_record("monitor", "other", x=1)
        assert set(self.entries()) == {("b", "c0"), ("monitor", "other")}
        # The list's URL stays the plugin's: no record can be written there.
        self.app.post_json(LIST_URL, {"data": {"x": 1}}, headers=ALICE, status=405)


class TestMixedSelectionCounts(ListTest):
    """Bucket URIs with collection URIs of other buckets (two disjoint
    alternatives): counts and pages stay exact, whatever ``storage_max_fetch_size``."""

    @classmethod
    def get_app_settings(cls, backend):
        return {
            **super().get_app_settings(backend),
            "changes.resources": "/buckets/blocklists /buckets/main/collections/cfr",
            "changes.excluded_collections": "/buckets/blocklists/collections/hidden",
            "storage_max_fetch_size": 3,
        }

    def fill_mix(self) -> set:
        self.fill(5, bucket="blocklists")
        for bid, cid in (("blocklists", "hidden"), ("main", "cfr"), ("main", "other")):
            self.create_collection(bid, cid)
        return {("blocklists", f"c{i}") for i in range(5)} | {("main", "cfr")}

    def test_total_objects_is_what_paging_returns(self):
        monitored = self.fill_mix()
        head = self.app.head(LIST_URL, headers=ALICE)
        assert head.headers["Total-Objects"] == "6"
        for params in ("", "_limit=2", "_sort=collection&_limit=4", "_sort=-bucket,id"):
            entries = self.pages(params)
            assert len(entries) == 6, params
            assert {(e["bucket"], e["collection"]) for e in entries} == monitored

    def test_filters_and_tombstones(self):
        self.fill_mix()
        etag = self.list_etag()
        self.app.delete("/buckets/blocklists/collections/c0", headers=ALICE)
        self.app.delete("/buckets/main/collections/other", headers=ALICE)
        head = self.app.head(f"{LIST_URL}?bucket=blocklists", headers=ALICE)
        assert head.headers["Total-Objects"] == "4"
        changes = self.pages(f"_since={etag}&_limit=1")
        assert [(e["collection"], e.get("deleted")) for e in changes] == [("c0", True)]
        changeset = self.app.get(
            "/buckets/monitor/collections/changes/changeset?_expected=0", headers=ALICE
        ).json["changes"]
        assert len(changeset) == 5


def icu_database_url() -> str:
    """A test database whose strings sort as people read them (``en-US``), not
    by code point: ``a`` < ``B`` there, ``B`` < ``a`` in Python."""
    url = sqlalchemy.engine.make_url(POSTGRESQL_URL)
    name = f"{url.database}_icu"
    admin = postgresql_engine("postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        found = conn.execute(
            sqlalchemy.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
        ).scalar()
        if not found:
            conn.execute(
                sqlalchemy.text(
                    f'CREATE DATABASE "{name}" TEMPLATE template0 ENCODING "UTF8" '
                    "LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'"
                )
            )
    admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


class TestMixedSelectionCollation(ListTest):
    """The mixed selection gives every entry once, whatever the database's collation."""

    backends = ("postgresql",)

    @classmethod
    def get_app_settings(cls, backend):
        url = icu_database_url()
        return {
            **super().get_app_settings(backend),
            "storage_url": url,
            "permission_url": url,
            "changes.resources": "/buckets/a /buckets/B /buckets/x/collections/c",
        }

    def test_every_entry_exactly_once(self):
        for bid, cid in [("a", "c1"), ("a", "c2"), ("B", "c1"), ("B", "c2"), ("x", "c")]:
            self.create_collection(bid, cid)
        for params in ("_sort=bucket&_limit=1", "_sort=bucket,collection&_limit=2", "_limit=2"):
            keys = [(e["bucket"], e["collection"]) for e in self.pages(params)]
            assert len(keys) == len(set(keys)) == 5, params
