"""Failing requests leave the list as it was (§4).

The entries are written in the request's transaction: on PostgreSQL they
commit or roll back with the records. Kinto's memory backend never rolls
back; there the tests assert what a client actually sees.
"""

import threading

import pytest
import sqlalchemy

from kinto_changes.postgresql import ADVISORY_LOCK_KEY

from .support import ALICE, BaseWebTest, base_settings, postgresql_engine


RECORDS = "/buckets/b/collections/{}/records"


class TestFailingRequests(BaseWebTest):
    @classmethod
    def get_app_settings(cls, backend):
        settings = base_settings(backend)
        settings["includes"] = "kinto_changes tests.failing_plugin"
        return settings

    @pytest.fixture(autouse=True)
    def _collections(self):
        for cid in ("c", "c2", "c3"):
            self.create_collection("b", cid)
            self.create_record("b", cid, name="first")
        self.app.app.registry.commit_probes.clear()
        self.before = self.list_state()

    def list_state(self) -> tuple[int, list]:
        response = self.get_list("gt_last_modified=0")
        return int(response.headers["ETag"].strip('"')), response.json["data"]

    def assert_entry_follows_records(self, cid: str) -> None:
        assert self.entries()[("b", cid)]["last_modified"] == self.records_etag("b", cid)

    def test_failing_subscriber_leaves_the_list_unchanged(self):
        etag = self.records_etag("b", "c")
        self.app.post_json(
            RECORDS.format("c"), {"data": {"fail": True}}, headers=ALICE, status=500
        )
        assert self.list_state() == self.before
        if self.backend == "postgresql":
            assert self.records_etag("b", "c") == etag
        else:
            # Kinto's memory backend keeps the record of the failed request;
            # the entry did not follow it (the commit hook never ran).
            assert self.records_etag("b", "c") > etag
            assert self.entries()[("b", "c")]["last_modified"] == etag

    def test_failure_after_the_entries_were_written_rolls_them_back(self):
        etag = self.records_etag("b", "c")
        body = {"data": {"fail_at_commit": True}}
        self.app.post_json(RECORDS.format("c"), body, headers=ALICE, status=500)
        if self.backend == "postgresql":
            assert self.list_state() == self.before
            assert self.records_etag("b", "c") == etag
        else:
            # Nothing rolls back on memory: record and entry both changed.
            assert self.records_etag("b", "c") > etag
            self.assert_entry_follows_records("c")

    def test_batch_failing_in_a_subrequest_leaves_the_list_unchanged(self):
        etag = self.records_etag("b", "c")
        requests = [
            {"method": "POST", "path": RECORDS.format("c"), "body": {"data": {}}},
            {"method": "POST", "path": RECORDS.format("c2"), "body": {"data": {"fail": True}}},
        ]
        self.app.post_json("/batch", {"requests": requests}, headers=ALICE, status=500)
        assert self.list_state() == self.before
        if self.backend == "postgresql":
            assert self.records_etag("b", "c") == etag

    def test_batch_aborted_by_a_conflict_lists_only_what_committed(self):
        # A record forced onto the timestamp of an older record of the same
        # collection violates PostgreSQL's unique index: Kinto answers 409 and
        # aborts the transaction; the following subrequests commit in a new
        # one. Kinto still notifies the events of the rolled back subrequest.
        older = self.create_record("b", "c")["last_modified"]
        self.create_record("b", "c")
        etag_before = self.list_etag()
        before = {cid: self.records_etag("b", cid) for cid in ("c", "c2", "c3")}
        forced = {"data": {"last_modified": older}}
        requests = [
            {"method": "POST", "path": RECORDS.format("c2"), "body": {"data": {}}},
            {"method": "PUT", "path": f"{RECORDS.format('c')}/forced", "body": forced},
            {"method": "POST", "path": RECORDS.format("c3"), "body": {"data": {}}},
        ]
        response = self.app.post_json("/batch", {"requests": requests}, headers=ALICE)
        statuses = [r["status"] for r in response.json["responses"]]
        after = {cid: self.records_etag("b", cid) for cid in ("c", "c2", "c3")}
        moved = sorted(("b", cid) for cid in after if after[cid] != before[cid])
        if self.backend == "postgresql":
            assert statuses == [201, 409, 201]
            assert moved == [("b", "c3")]
        else:
            # No unique index on memory; a record in the past keeps the
            # collection timestamp.
            assert statuses == [201, 201, 201]
            assert moved == [("b", "c2"), ("b", "c3")]
        for cid in ("c", "c2", "c3"):
            self.assert_entry_follows_records(cid)
        # Pollers are told about exactly the collections that changed.
        assert sorted(self.entries(f"_since={etag_before}")) == moved

    def test_record_committed_after_its_collection_was_deleted(self):
        # Kinto checks that the collection exists when the request starts;
        # another request can delete it before the record commits.
        registry = self.app.app.registry
        registry.holding.clear()
        registry.release.clear()
        responses = []
        writer = threading.Thread(
            target=lambda: responses.append(
                self.app.post_json(RECORDS.format("c"), {"data": {"hold": True}}, headers=ALICE)
            )
        )
        writer.start()
        assert registry.holding.wait(timeout=10)
        self.app.delete("/buckets/b/collections/c", headers=ALICE)
        registry.release.set()
        writer.join(timeout=10)

        assert [r.status_code for r in responses] == [201]
        self.app.get("/buckets/b/collections/c", headers=ALICE, status=404)
        assert ("b", "c") not in self.entries()
        assert self.entries("gt_last_modified=0")[("b", "c")]["deleted"] is True


class TestCursorLockScope(BaseWebTest):
    """The cursor lock is taken in the request's transaction and held until it commits."""

    @classmethod
    def get_app_settings(cls, backend):
        settings = base_settings(backend)
        settings["includes"] = "kinto_changes tests.failing_plugin"
        settings["changes.resources"] = "/buckets/b"
        return settings

    backends = ("postgresql",)  # Transactions and advisory locks.

    @pytest.fixture(autouse=True)
    def _clear_probes(self):
        self.app.app.registry.commit_probes.clear()

    def test_lock_and_entry_belong_to_the_request_transaction(self):
        self.create_collection("b", "c")
        before = self.entries()[("b", "c")]["last_modified"]
        probes = self.app.app.registry.commit_probes
        self.create_record("b", "c", probe=True)

        # While the request committed, after its entries were written, another
        # connection could neither take the lock nor see the new entry.
        [seen] = probes
        assert seen["lock_free"] is False
        assert [e["_timestamp"] for e in seen["entries"].values()] == [before]
        # Once committed, the lock is free and the entry follows the records.
        assert try_cursor_lock() is True
        assert self.entries()[("b", "c")]["last_modified"] == self.records_etag("b", "c")
        assert self.records_etag("b", "c") > before

    def test_writes_outside_the_monitored_collections_do_not_take_the_lock(self):
        self.create_collection("other", "c")
        self.create_record("other", "c", probe=True)
        [seen] = self.app.app.registry.commit_probes
        assert seen["lock_free"] is True


def try_cursor_lock() -> bool:
    engine = postgresql_engine(poolclass=sqlalchemy.pool.NullPool)
    with engine.connect() as conn:
        free = conn.execute(
            sqlalchemy.text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY}
        ).scalar()
        conn.rollback()
    engine.dispose()
    return free
