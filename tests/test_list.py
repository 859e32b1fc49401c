"""The list, as a polling client sees it."""

from .support import ALICE, BaseWebTest


class TestDefaultSettings(BaseWebTest):
    def test_collection_is_listed_with_its_records_timestamp(self):
        self.create_collection("blocklists", "certificates")
        self.create_record("blocklists", "certificates", name="a")
        entry = self.entries()[("blocklists", "certificates")]
        assert entry["last_modified"] == self.records_etag("blocklists", "certificates")
        assert entry["host"] == ""

    def test_cursor_case_batch_then_single_write(self):
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
        etag2 = self.list_etag()
        assert etag2 > etag
