"""Hostile requests: each gets its documented 4xx in Kinto's error format,
nothing changes in storage, and the server keeps serving."""

import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .support import ALICE, BOB, LIST_URL, BaseWebTest, base_settings


ENTRY_URL = f"{LIST_URL}/51a9f5b0-a029-3a6d-dc76-c4497fea7d51"
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
    ("GET", f"{LIST_URL}?bucket=%00", {}, 400),
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
]

# Against a list restricted to Bob.
UNAUTHORISED = [
    ("GET", LIST_URL, {}, 401),
    ("GET", f"{LIST_URL}?_since=1", {}, 401),
    ("HEAD", LIST_URL, {}, 401),
    ("GET", LIST_URL, ALICE, 403),
    ("GET", f"{LIST_URL}?_since=abc", ALICE, 403),  # Permissions first.
]


class BadInputTest(BaseWebTest):
    def setup_data(self):
        for cid in ("x", "y"):
            self.create_collection("b", cid)
            self.create_record("b", cid, n=1)

    def snapshot(self, headers=None) -> tuple:
        response = self.get_list("gt_last_modified=0", headers=headers)  # With tombstones.
        return response.headers["ETag"], response.json["data"]

    def send(self, method, url, headers, status):
        response = self.app.request(url, method=method, headers=headers, expect_errors=True)
        assert response.status_int == status, response.body[:300]
        if method != "HEAD" and status >= 400:
            body = response.json
            assert set(body) >= {"code", "errno", "error", "message"}
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
QUERY_VALUES = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.text(alphabet=string.printable, max_size=30),
    st.text(max_size=10),
)


class TestFuzz(BadInputTest):
    @settings(
        max_examples=150,
        derandomize=True,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(query=st.dictionaries(QUERY_KEYS, QUERY_VALUES, max_size=4))
    def test_list_never_answers_5xx(self, query):
        response = self.app.get(LIST_URL, params=query, expect_errors=True)
        assert response.status_int < 500, (query, response.body[:300])
        if response.status_int >= 400:
            assert response.json["code"] == response.status_int
