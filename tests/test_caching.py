"""Cache headers (SPEC §3.3): ``max-age`` only on anonymous responses."""

import kinto
import pytest
from pyramid.exceptions import ConfigurationError

from .support import ALICE, LIST_URL, BaseWebTest, base_settings


LIST_CHANGESET = "/buckets/monitor/collections/changes/changeset"


def max_age(response) -> int | None:
    return response.cache_control.max_age


def assert_not_cacheable(response):
    assert max_age(response) is None
    assert response.cache_control.no_cache
    assert response.cache_control.no_store


class CacheTest(BaseWebTest):
    def public_collection(self, bid, cid, **data):
        self.app.put_json(
            f"/buckets/{bid}",
            {"permissions": {"read": ["system.Everyone"]}},
            headers=ALICE,
            status=(200, 201),
        )
        return self.create_collection(bid, cid, **data)

    def changeset(self, bid, cid, headers=None):
        url = f"/buckets/{bid}/collections/{cid}/changeset?_expected=1"
        return self.app.get(url, headers=headers or {})

    def records(self, bid, cid, headers=None):
        return self.app.get(f"/buckets/{bid}/collections/{cid}/records", headers=headers or {})


class TestListWithoutSettings(CacheTest):
    def test_no_max_age(self):
        self.create_collection("b", "c")
        for url in (LIST_URL, f"{LIST_URL}?_expected=1", f"{LIST_CHANGESET}?_expected=1"):
            assert_not_cacheable(self.app.get(url))


class TestListSettings(CacheTest):
    @classmethod
    def get_app_settings(cls, backend):
        return {
            **base_settings(backend),
            "monitor.changes.record_cache_expires_seconds": "60",
            "monitor.changes.record_cache_maximum_expires_seconds": "3600",
        }

    def test_anonymous_list(self):
        assert max_age(self.app.get(LIST_URL)) == 60
        assert max_age(self.app.get(f"{LIST_URL}?_expected=123")) == 3600

    def test_anonymous_changeset_always_carries_expected(self):
        assert max_age(self.app.get(f"{LIST_CHANGESET}?_expected=123")) == 3600

    def test_authenticated_responses_are_never_cacheable(self):
        for url in (LIST_URL, f"{LIST_URL}?_expected=1", f"{LIST_CHANGESET}?_expected=1"):
            assert_not_cacheable(self.app.get(url, headers=ALICE))


class TestListExpiresOnly(CacheTest):
    @classmethod
    def get_app_settings(cls, backend):
        return {**base_settings(backend), "monitor.changes.record_cache_expires_seconds": "60"}

    def test_cache_busting_falls_back_to_expires(self):
        assert max_age(self.app.get(f"{LIST_URL}?_expected=1")) == 60
        assert max_age(self.app.get(f"{LIST_CHANGESET}?_expected=1")) == 60


class TestCollectionsWithoutSettings(CacheTest):
    def test_no_max_age_unless_the_collection_says_so(self):
        self.public_collection("b", "plain")
        self.public_collection("b", "cached", cache_expires=15)
        assert_not_cacheable(self.changeset("b", "plain"))
        assert max_age(self.changeset("b", "cached")) == 15
        assert_not_cacheable(self.changeset("b", "cached", headers=ALICE))


class MirrorKinto(CacheTest):
    """Without ``maximum`` settings, a changeset is cached as Kinto caches the records."""

    EXPECTED: dict

    def test_same_max_age_as_kinto_records(self):
        self.public_collection("b1", "c1")
        self.public_collection("b1", "c2", cache_expires=5)
        self.public_collection("b2", "c1")
        self.public_collection("b2", "c3", cache_expires=50)
        for (bid, cid), seconds in self.EXPECTED.items():
            changeset, records = self.changeset(bid, cid), self.records(bid, cid)
            assert (bid, cid, max_age(changeset)) == (bid, cid, seconds)
            assert changeset.headers["Cache-Control"] == records.headers["Cache-Control"]
            assert_not_cacheable(self.changeset(bid, cid, headers=ALICE))


class TestCollectionBucketGlobalSettings(MirrorKinto):
    EXPECTED = {("b1", "c1"): 30, ("b1", "c2"): 20, ("b2", "c1"): 10, ("b2", "c3"): 50}

    @classmethod
    def get_app_settings(cls, backend):
        return {
            **base_settings(backend),
            "record_cache_expires_seconds": "10",
            "b1.record_cache_expires_seconds": "20",
            "b1.c1.record_cache_expires_seconds": "30",
        }


class TestLegacySettings(MirrorKinto):
    EXPECTED = {("b1", "c1"): 40, ("b1", "c2"): 45, ("b2", "c1"): None, ("b2", "c3"): 50}

    @classmethod
    def get_app_settings(cls, backend):
        return {
            **base_settings(backend),
            "b1_c1_record_cache_expires_seconds": "40",
            "b1_record_cache_expires_seconds": "45",
        }


class TestMaximumSettings(CacheTest):
    """``_expected`` (always sent to changesets) selects the maximum variant of each level."""

    @classmethod
    def get_app_settings(cls, backend):
        return {
            **base_settings(backend),
            "record_cache_expires_seconds": "10",
            "record_cache_maximum_expires_seconds": "100",
            "b1.record_cache_expires_seconds": "20",
            "b1.c1.record_cache_maximum_expires_seconds": "300",
            "b3_record_cache_maximum_expires_seconds": "900",
        }

    def test_most_specific_level_wins(self):
        expected = {
            ("b1", "c1"): 300,  # collection's maximum
            ("b1", "c2"): 20,  # bucket's (no maximum there)
            ("b2", "c1"): 100,  # global maximum
            ("b2", "slow"): 500,  # the collection's cache_expires field is higher
            ("b3", "c1"): 100,  # legacy names come after the global ones, as in Kinto
        }
        for bid, cid in expected:
            self.public_collection(bid, cid, **({"cache_expires": 500} if cid == "slow" else {}))
        for (bid, cid), seconds in expected.items():
            assert (bid, cid, max_age(self.changeset(bid, cid))) == (bid, cid, seconds)
            assert_not_cacheable(self.changeset(bid, cid, headers=ALICE))
        # Kinto's records endpoint knows nothing of the maximum variants.
        assert max_age(self.records("b1", "c1")) == 20


@pytest.mark.parametrize(
    "key, value",
    [
        ("record_cache_expires_seconds", "soon"),
        ("b.c.record_cache_maximum_expires_seconds", "-1"),
        ("b_record_cache_expires_seconds", "1.5"),
    ],
)
def test_bad_cache_settings_stop_the_server(key, value):
    with pytest.raises(ConfigurationError, match=key):
        kinto.main({}, **{**base_settings("memory"), key: value})
