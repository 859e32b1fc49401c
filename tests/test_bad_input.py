"""Hostile requests: each gets its documented 4xx in Kinto's error format,
nothing changes in storage, and the server keeps serving."""

import base64
import json
import string
from urllib.parse import quote, unquote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .support import ALICE, BOB, LIST_URL, BaseWebTest, base_settings


def token(info) -> str:
    return quote(base64.b64encode(json.dumps(info).encode()).decode())


# Pagination tokens of the wrong shape, or with values the storage refuses.
BAD_TOKENS = [
    {"last_object": [1], "offset": 0, "nonce": "n"},
    {"last_object": "x", "offset": 0, "nonce": "n"},
    {"last_object": {}, "offset": "x", "nonce": "n"},
    {"last_object": {}, "offset": None, "nonce": "n"},
    {"last_object": {}, "offset": -1, "nonce": "n"},
    {"last_object": {}, "offset": 0},
    {"last_object": {"last_modified": 1.5}, "offset": 0, "nonce": "n"},
    {"last_object": {"last_modified": "\u0000"}, "offset": 0, "nonce": "n"},
]
ENTRY_URL = f"{LIST_URL}/51a9f5b0-a029-3a6d-dc76-c4497fea7d51"
CHANGESET = "/buckets/b/collections/x/changeset"
LIST_CHANGESET = "/buckets/monitor/collections/changes/changeset"
LONG = "x" * 9000

# (method, url, headers, expected status). Anonymous unless headers say otherwise.
HOSTILE = [
    ("GET", f"{LIST_URL}?_since=abc", {}, 400),
    ("GET", f"{LIST_URL}?_since=-1", {}, 400),
    ("GET", f"{LIST_URL}?_since=1.5", {}, 400),
    ("GET", f"{LIST_URL}?_since=1e12", {}, 400),
    ("GET", f"{LIST_URL}?_since=", {}, 400),
    ("GET", f"{LIST_URL}?_since=%221", {}, 400),
    ("GET", f"{LIST_URL}?_since=99999999999999999999999", {}, 400),
    ("GET", f"{LIST_URL}?_since=4102444800001", {}, 400),  # After year 2100.
    ("GET", f"{LIST_URL}?_since=true", {}, 400),
    ("GET", f"{LIST_URL}?_before=abc", {}, 400),
    ("GET", f"{LIST_URL}?_before=-5", {}, 400),
    ("GET", f"{LIST_URL}?_to=1.0", {}, 400),
    ("GET", f"{LIST_URL}?_limit=abc", {}, 400),
    ("GET", f"{LIST_URL}?_limit=-1", {}, 400),
    ("GET", f"{LIST_URL}?_limit=1e3", {}, 400),
    ("GET", f"{LIST_URL}?_limit=9223372036854775808", {}, 400),
    ("GET", f"{LIST_URL}?last_modified=yesterday", {}, 400),
    ("GET", f"{LIST_URL}?gt_last_modified=abc", {}, 400),
    ("GET", f"{LIST_URL}?owner=me", {}, 400),
    ("GET", f"{LIST_URL}?in_owner=a,b", {}, 400),
    ("GET", f"{LIST_URL}?_sort=owner", {}, 400),
    ("GET", f"{LIST_URL}?_sort=-_timestamp", {}, 400),
    ("GET", f"{LIST_URL}?_fields=owner", {}, 400),
    ("GET", f"{LIST_URL}?_token=garbage", {}, 400),
    ("GET", f"{LIST_URL}?_token=WzFd", {}, 400),
    *[("GET", f"{LIST_URL}?_limit=1&_token={token(info)}", {}, 400) for info in BAD_TOKENS],
    ("GET", f"{LIST_URL}?bucket=%00", {}, 400),
    # JSON values holding a NUL, ids and timestamps of the wrong type: Kinto
    # turns filter values into JSON values (not every release checks them).
    ("GET", f"{LIST_URL}?bucket=%5B%22%5Cu0000%22%5D", {}, 400),
    ("GET", f"{LIST_URL}?in_bucket=%22%5Cu0000%22", {}, 400),
    ("GET", f"{LIST_URL}?collection=%7B%22a%22%3A%22%5Cu0000%22%7D", {}, 400),
    ("GET", f"{LIST_URL}?contains_bucket=%22%5Cu0000%22", {}, 400),
    ("GET", f"{LIST_URL}?in_id=%22%5Cu0000%22", {}, 400),
    ("GET", f"{LIST_URL}?gt_last_modified=true", {}, 400),
    ("GET", f"{LIST_URL}?gt_last_modified=1.5", {}, 400),
    ("GET", f"{LIST_URL}?id=%7B%7D", {}, 400),
    ("GET", f"{LIST_URL}?not_id=%7B%7D", {}, 400),
    ("GET", f"{LIST_URL}?lt_id=99999999999999999999999999", {}, 400),
    ("GET", f"{LIST_URL}?gt_id=1.5", {}, 400),
    ("HEAD", f"{LIST_URL}?lt_id=%7B%7D", {}, 400),
    # A list of ids or timestamps, but for ``in_`` and ``exclude_``.
    ("GET", f"{LIST_URL}?lt_id=%5B%22a%22%5D", {}, 400),
    ("GET", f"{LIST_URL}?not_id=%5B%22a%22%5D", {}, 400),
    ("GET", f"{LIST_URL}?gt_last_modified=%5B1%5D", {}, 400),
    ("GET", f"{LIST_URL}?bucket=%ff%fe", {}, 400),
    ("GET", f"{LIST_URL}?%ff=1", {}, 400),
    ("GET", f"{LIST_URL}?bucket={LONG}", {}, 400),
    ("GET", f"{LIST_URL}?in_bucket={','.join(['b'] * 5000)}", {}, 400),
    ("GET", LIST_URL, {"If-None-Match": "garbage"}, 400),
    ("GET", LIST_URL, {"If-None-Match": '"abc"'}, 400),
    ("GET", LIST_URL, {"If-None-Match": '"-1"'}, 400),
    ("GET", LIST_URL, {"If-Match": '"1.5"'}, 400),
    ("GET", LIST_URL, {"If-None-Match": "*"}, 412),
    ("HEAD", f"{LIST_URL}?_since=abc", {}, 400),
    ("POST", LIST_URL, ALICE, 405),
    ("PUT", LIST_URL, ALICE, 405),
    ("PATCH", LIST_URL, ALICE, 405),
    ("DELETE", LIST_URL, ALICE, 405),
    ("DELETE", f"{LIST_URL}?_since=1", {}, 405),
    ("GET", ENTRY_URL, {}, 405),
    ("PUT", ENTRY_URL, ALICE, 405),
    ("DELETE", ENTRY_URL, ALICE, 405),
    ("GET", f"{LIST_URL}/%C3%BC%E2%82%AC", {}, 405),
    ("GET", f"{LIST_URL}/{LONG}", {}, 405),
    ("GET", f"{LIST_URL}/..%2F..%2Fbuckets", {}, 404),
    ("GET", "/buckets/monitor/collections/changes/records%00", {}, 404),
    # Changesets.
    ("GET", CHANGESET, ALICE, 400),  # No _expected.
    ("GET", f"{CHANGESET}?_expected=0&_since=abc", ALICE, 400),
    ("GET", f"{CHANGESET}?_expected=0&_since=-1", ALICE, 400),
    ("GET", f"{CHANGESET}?_expected=0&_since=%221.5%22", ALICE, 400),
    ("GET", f"{CHANGESET}?_expected=0&_since=4133980800000", ALICE, 400),
    ("GET", f"{CHANGESET}?_expected=0&_limit=0", ALICE, 400),
    ("GET", f"{CHANGESET}?_expected=0&_limit=1e3", ALICE, 400),
    ("GET", f"{CHANGESET}?_expected=1&_expected=2", ALICE, 400),
    ("GET", f"{CHANGESET}?_expected=0&owner=me", ALICE, 400),
    ("GET", f"{CHANGESET}?_expected={LONG}", ALICE, 400),
    ("GET", f"{CHANGESET}?_expected=%ff", ALICE, 400),
    ("GET", f"{LIST_CHANGESET}?_since=1", {}, 400),  # No _expected.
    ("GET", f"{LIST_CHANGESET}?_expected=0&_since=abc", {}, 400),
    ("GET", f"{LIST_CHANGESET}?_expected=0&host=x", {}, 400),
    ("POST", f"{CHANGESET}?_expected=0", ALICE, 405),
    ("DELETE", f"{LIST_CHANGESET}?_expected=0", ALICE, 405),
    ("GET", "/buckets/b/collections/nope/changeset?_expected=0", ALICE, 404),
    ("GET", "/buckets/b/collections/%C3%BC/changeset?_expected=0", ALICE, 404),
    ("GET", "/buckets/nope/collections/x/changeset?_expected=0", ALICE, 403),
    ("GET", f"{CHANGESET}?_expected=0", {}, 401),  # A private collection.
    ("GET", f"{CHANGESET}?_expected=0", BOB, 403),
]

# Against a list restricted to Bob.
UNAUTHORISED = [
    ("GET", LIST_URL, {}, 401),
    ("GET", f"{LIST_URL}?_since=1", {}, 401),
    ("HEAD", LIST_URL, {}, 401),
    ("GET", LIST_URL, ALICE, 403),
    ("GET", f"{LIST_URL}?_since=abc", ALICE, 403),  # Permissions first.
    ("GET", f"{LIST_CHANGESET}?_expected=0", {}, 401),
    ("GET", f"{LIST_CHANGESET}?_expected=0", ALICE, 403),
]


class BadInputTest(BaseWebTest):
    def setup_data(self):
        for cid in ("x", "y"):
            self.create_collection("b", cid)
            self.create_record("b", cid, n=1)

    def snapshot(self, headers=ALICE) -> tuple:
        response = self.get_list("gt_last_modified=0", headers=headers)  # With tombstones.
        return response.headers["ETag"], response.json["data"]

    def send(self, method, url, headers, status):
        response = self.app.request(url, method=method, headers=headers, expect_errors=True)
        assert response.status_int == status, response.body[:300]
        if method != "HEAD" and status >= 400:
            body = response.json
            assert set(body) >= {"code", "errno", "error"}  # Kinto omits "message" on 404.
            assert body["code"] == status
        return response


class TestHostileRequests(BadInputTest):
    @pytest.mark.parametrize("method, url, headers, status", HOSTILE)
    def test_clear_4xx_and_nothing_changes(self, method, url, headers, status):
        self.setup_data()
        before = self.snapshot()
        self.send(method, url, headers, status)
        assert self.snapshot() == before
        self.get_list()  # Still serving.


class TestUnauthorisedReaders(BadInputTest):
    @classmethod
    def get_app_settings(cls, backend):
        return {**base_settings(backend), "changes.principals": bob_userid()}

    @pytest.mark.parametrize("method, url, headers, status", UNAUTHORISED)
    def test_clear_4xx_and_nothing_changes(self, method, url, headers, status):
        self.setup_data()
        before = self.snapshot(headers=BOB)
        self.send(method, url, headers, status)
        assert self.snapshot(headers=BOB) == before


def bob_userid() -> str:
    from .support import make_app

    return make_app(base_settings("memory")).get("/", headers=BOB).json["user"]["id"]


QUERY_KEYS = st.sampled_from(
    [
        "_since",
        "_before",
        "_limit",
        "_sort",
        "_fields",
        "_token",
        "bucket",
        "in_bucket",
        "collection",
        "has_host",
        "gt_last_modified",
        "last_modified",
        "id",
        "unknown",
    ]
)
CHANGESET_KEYS = st.sampled_from(
    ["_expected", "_since", "_limit", "bucket", "collection", "_other", "unknown"]
)
# With NUL and other control characters, which PostgreSQL refuses or escapes.
ODD_TEXT = st.text(alphabet="\x00\x01\x1f\x7fa-_%\\\u2028\ufffd", max_size=6)
QUERY_VALUES = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.text(alphabet=string.printable, max_size=30),
    st.text(max_size=10),
    ODD_TEXT,
)


class TestFuzz(BadInputTest):
    @pytest.fixture(autouse=True)
    def _data(self):
        self.setup_data()

    @settings(
        max_examples=150,
        derandomize=True,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(query=st.dictionaries(QUERY_KEYS, QUERY_VALUES, max_size=4))
    def test_list_never_answers_5xx(self, query):
        self.assert_no_5xx(LIST_URL, query)

    @settings(
        max_examples=100,
        derandomize=True,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(query=st.dictionaries(CHANGESET_KEYS, QUERY_VALUES, max_size=4))
    def test_changesets_never_answer_5xx(self, query):
        self.assert_no_5xx(LIST_CHANGESET, query)
        self.assert_no_5xx("/buckets/b/collections/x/changeset", query, headers=ALICE)

    @settings(
        max_examples=60,
        derandomize=True,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(bucket=st.one_of(ODD_TEXT, st.text(max_size=8)), collection=ODD_TEXT)
    def test_changeset_paths_never_answer_5xx(self, bucket, collection):
        for bid, cid in ((bucket, "x"), ("b", collection), (bucket, collection)):
            bid, cid = bid or "b", cid or "x"
            path = f"/buckets/{quote(bid, safe='')}/collections/{quote(cid, safe='')}"
            for headers in ({}, ALICE):
                status = expected_changeset_status(bid, cid, headers)
                self.send("GET", f"{path}/changeset?_expected=0", headers, status)

    def assert_no_5xx(self, url, query, headers=None):
        response = self.app.get(url, params=query, headers=headers or {}, expect_errors=True)
        assert response.status_int < 500, (url, query, response.body[:300])
        if response.status_int >= 400:
            assert response.json["code"] == response.status_int


# Bytes in a path segment: NUL and other characters PostgreSQL refuses, an
# id too long, URL escapes (still UTF-8), and bytes that are not UTF-8.
ODD_SEGMENTS = ["%00", "%01", "%0A", "%7F", "%25", "%5C", "%E2%80%8B", "%F0%9F%98%80", "x" * 300]
NOT_UTF8 = ["%C0%80", "%ED%A0%80", "%FF"]


def expected_changeset_status(bid: str, cid: str, headers: dict) -> int:
    """What Kinto answers on ``GET .../records`` for Alice's private bucket ``b``
    (collection ``x``) and ids that cannot exist: 401/403 where the bucket
    cannot be read, 404 for a collection missing from a readable bucket."""
    if bid != "b" or not headers:
        return 403 if headers else 401
    return 200 if cid == "x" else 404


class TestOddPathSegments(BadInputTest):
    """Odd bucket or collection ids get the answer of a missing object, never
    a 5xx (on PostgreSQL, a NUL in a permission query was a 500)."""

    @pytest.mark.parametrize("segment", ODD_SEGMENTS)
    @pytest.mark.parametrize("headers", [{}, ALICE], ids=["anonymous", "alice"])
    def test_as_a_missing_object(self, segment, headers):
        self.setup_data()
        for bid, cid in ((f"b{segment}", "x"), ("b", f"x{segment}")):
            status = expected_changeset_status(unquote(bid), unquote(cid), headers)
            self.send(
                "GET", f"/buckets/{bid}/collections/{cid}/changeset?_expected=0", headers, status
            )

    @pytest.mark.parametrize("segment", NOT_UTF8)
    def test_not_utf8_is_400(self, segment):
        self.setup_data()
        for path in (f"/buckets/b{segment}/collections/x", f"/buckets/b/collections/x{segment}"):
            self.send("GET", f"{path}/changeset?_expected=0", ALICE, 400)

    @pytest.mark.parametrize(
        "query",
        [
            "_expected=%00",
            "_expected=0&_since=%00",
            "_expected=0&_limit=1%00",
            "_expected=0&_other=%00",
            "_expected=0&%00=1",
        ],
    )
    def test_nul_in_a_changeset_query_is_400(self, query):
        self.setup_data()
        before = self.snapshot()
        for url in (CHANGESET, LIST_CHANGESET):
            self.send("GET", f"{url}?{query}", ALICE, 400)
        assert self.snapshot() == before

    @pytest.mark.parametrize("name", ["bucket", "collection"])
    def test_nul_in_a_list_changeset_filter_is_400(self, name):
        self.setup_data()
        response = self.send("GET", f"{LIST_CHANGESET}?_expected=0&{name}=b%00", {}, 400)
        assert response.json["details"][0]["name"] == name
