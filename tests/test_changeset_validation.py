"""Bad query strings on the changesets: 400 in Kinto's error format, never 500."""

import pytest

from .support import ALICE, BaseWebTest


COLLECTION = "/buckets/b/collections/c/changeset"
LIST = "/buckets/monitor/collections/changes/changeset"

# (query string, the parameter named in the error)
BAD_QUERIES = [
    ("", "_expected"),
    ("_since=1", "_expected"),
    ("_expected=0&_expected=1", "_expected"),
    ("_expected=0&_since=abc", "_since"),
    ("_expected=0&_since=-1", "_since"),
    ("_expected=0&_since=1.5", "_since"),
    ("_expected=0&_since=1e3", "_since"),
    ("_expected=0&_since=%2B5", "_since"),
    ("_expected=0&_since=%205", "_since"),
    ('_expected=0&_since="12', "_since"),
    ('_expected=0&_since=12"', "_since"),
    ('_expected=0&_since=""', "_since"),
    ("_expected=0&_since=", "_since"),
    ("_expected=0&_since=true", "_since"),
    ("_expected=0&_since=%00", "_since"),
    ("_expected=0&_since=%D9%A3", "_since"),
    ("_expected=0&_since=4133980800000", "_since"),
    ("_expected=0&_since=99999999999999999999999999", "_since"),
    ("_expected=0&_since=1&_since=2", "_since"),
    ("_expected=0&_limit=0", "_limit"),
    ("_expected=0&_limit=-1", "_limit"),
    ("_expected=0&_limit=abc", "_limit"),
    ("_expected=0&_limit=1.0", "_limit"),
    ("_expected=0&_limit=", "_limit"),
    ('_expected=0&_limit="5"', "_limit"),
    ("_expected=0&_limit=%D9%A3", "_limit"),
    ("_expected=0&_limit=9223372036854775808", "_limit"),
    ("_expected=0&_limit=1&_limit=2", "_limit"),
    ("_expected=0&foo=1", "foo"),
    ("_expected=0&last_modified=1", "last_modified"),
    ("_expected=0&in_bucket=a,b", "in_bucket"),
    ("_expected=0&%E2%98%83=1", "\N{SNOWMAN}"),
    ("_expected=" + "x" * 9000, "length"),
    ("_expected=0&" + "&".join(f"_p{i}=1" for i in range(2000)), "length"),
]

GOOD_QUERIES = [
    "_expected=",
    "_expected=%E2%98%83",
    "_expected=0&_since=0",
    '_expected=0&_since="0"',
    "_expected=0&_since=4133980799999",
    "_expected=0&_limit=1",
    "_expected=0&_limit=9223372036854775807",
    "_expected=0&_unknown=ignored&_sort=x",
]


class TestBadQueries(BaseWebTest):
    @pytest.fixture(autouse=True)
    def _collection(self):
        self.create_collection("b", "c")
        self.create_record("b", "c", x=1)

    def assert_invalid(self, url, name):
        response = self.app.get(url, headers=ALICE, status=400)
        body = response.json
        assert body["code"] == 400
        assert body["errno"] == 107
        assert body["error"] == "Invalid parameters"
        assert body["details"][0]["location"] == "querystring"
        assert body["details"][0]["name"] == name
        assert body["message"]

    @pytest.mark.parametrize("query, name", BAD_QUERIES)
    def test_collection_changeset(self, query, name):
        self.assert_invalid(f"{COLLECTION}?{query}", name)

    @pytest.mark.parametrize("query, name", BAD_QUERIES)
    def test_list_changeset(self, query, name):
        # (_since=1 would be redirected, were it valid.)
        self.assert_invalid(f"{LIST}?{query}", name)

    @pytest.mark.parametrize("query", ["bucket=b", "collection=c"])
    def test_list_filters_are_unknown_to_other_collections(self, query):
        self.assert_invalid(f"{COLLECTION}?_expected=0&{query}", query.split("=")[0])

    def test_list_filters_given_twice(self):
        self.assert_invalid(f"{LIST}?_expected=0&bucket=a&bucket=b", "bucket")

    @pytest.mark.parametrize("query", GOOD_QUERIES)
    def test_good_values(self, query):
        body = self.app.get(f"{COLLECTION}?{query}", headers=ALICE).json
        assert body["timestamp"] == self.records_etag("b", "c")

    @pytest.mark.parametrize("url", [COLLECTION, LIST])
    def test_non_utf8_query_string(self, url):
        body = self.app.get(f"{url}?_expected=%FF", headers=ALICE, status=400).json
        assert (body["code"], body["errno"]) == (400, 107)
        assert "UTF-8" in body["message"]

    def test_bad_queries_change_nothing(self):
        etag, records = self.list_etag(), self.records_etag("b", "c")
        for query, _ in BAD_QUERIES:
            self.app.get(f"{COLLECTION}?{query}", headers=ALICE, status=400)
        assert (self.list_etag(), self.records_etag("b", "c")) == (etag, records)
