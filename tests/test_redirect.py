"""Old ``_since`` values are redirected (SPEC §3.4)."""

import time

import pytest

from .storages import instrumented_settings
from .support import ALICE, LIST_URL, BaseWebTest, base_settings


LIST_CHANGESET = "/buckets/monitor/collections/changes/changeset"
DAY_MSEC = 24 * 3600 * 1000
ORIGIN = "http://localhost/v1"


def days_ago(days: float) -> int:
    return int(time.time() * 1000 - days * DAY_MSEC)


class TestRedirect(BaseWebTest):
    def test_list_without_since_other_parameters_kept(self):
        self.create_collection("b", "c")
        query = "_limit=2&_since=1&bucket=b&_expected=x&_sort=-last_modified"
        response = self.app.get(f"{LIST_URL}?{query}", status=307)
        assert response.headers["Location"] == (
            f"{ORIGIN}{LIST_URL}?_limit=2&bucket=b&_expected=x&_sort=-last_modified"
        )
        assert response.cache_control.max_age == 86400
        assert "Expires" in response.headers
        followed = self.app.get(response.headers["Location"].removeprefix(ORIGIN), headers=ALICE)
        assert [e["collection"] for e in followed.json["data"]] == ["c"]

    def test_list_changeset(self):
        response = self.app.get(f'{LIST_CHANGESET}?_expected=1&_since="1"&bucket=b', status=307)
        assert response.headers["Location"] == f"{ORIGIN}{LIST_CHANGESET}?_expected=1&bucket=b"
        assert response.cache_control.max_age == 86400

    def test_head(self):
        response = self.app.head(f"{LIST_URL}?_since=1", status=307)
        assert response.headers["Location"] == f"{ORIGIN}{LIST_URL}"

    @pytest.mark.parametrize("url", [f"{LIST_URL}?", f"{LIST_CHANGESET}?_expected=1&"])
    def test_location_from_the_host_header_stays_out_of_shared_caches(self, url):
        # Without Kinto's ``http_host``, WebOb builds ``Location`` from ``Host``:
        # a shared cache keyed on the path would serve it to everyone.
        headers = {"Host": "evil.example"}
        response = self.app.get(f"{url}_since=1", headers=headers, status=307)
        assert response.headers["Location"].startswith("http://evil.example/v1/")
        assert response.cache_control.private
        assert response.cache_control.max_age == 86400

    def test_authenticated_redirect_stays_out_of_shared_caches(self):
        response = self.app.get(f"{LIST_URL}?_since=1", headers=ALICE, status=307)
        assert response.cache_control.private
        assert response.cache_control.max_age == 86400

    def test_only_since_older_than_since_max_age_days(self):
        self.create_collection("b", "c")
        recent, old = days_ago(21 - 1 / 24), days_ago(21 + 1 / 24)
        self.app.get(f"{LIST_URL}?_since={recent}", status=200)
        self.app.get(f"{LIST_CHANGESET}?_expected=1&_since={recent}", status=200)
        self.app.get(f"{LIST_URL}?_since={old}", status=307)
        self.app.get(f"{LIST_CHANGESET}?_expected=1&_since={old}", status=307)

    def test_not_on_ordinary_changesets(self):
        self.create_collection("b", "c")
        self.create_record("b", "c", x=1)
        url = "/buckets/b/collections/c/changeset?_expected=1&_since=1"
        assert len(self.app.get(url, headers=ALICE).json["changes"]) == 1

    @pytest.mark.parametrize(
        "url",
        [
            f"{LIST_URL}?_since=1&_limit=abc",
            f"{LIST_URL}?_since=-1",
            f"{LIST_CHANGESET}?_since=1",
            f"{LIST_CHANGESET}?_expected=1&_since=1&_limit=0",
            # Checked by Kinto's resource, after the query schema.
            f"{LIST_URL}?_since=1&foo=bar",
            f"{LIST_URL}?_since=1&_sort=foo",
            f"{LIST_URL}?_since=1&_fields=nope",
            f"{LIST_URL}?_since=1&_token=garbage",
            f"{LIST_URL}?_since=1&has_nope=true",
            f"{LIST_URL}?_since=1&gt_last_modified=abc",
            f"{LIST_URL}?_since=1&gt_last_modified=1.5",
            f"{LIST_URL}?_since=1&lt_id=%7B%7D",
            f"{LIST_CHANGESET}?_expected=1&_since=1&foo=bar",
            f"{LIST_CHANGESET}?_expected=1&_since=1&bucket=%00",
        ],
    )
    def test_invalid_queries_are_not_redirected(self, url):
        # The same 400 as without ``_since``: no cacheable redirect for junk.
        response = self.app.get(url, status=400)
        assert response.json["errno"] == 107
        without_since = url.replace("_since=1&", "").replace("&_since=1", "")
        if without_since != url:
            expected = self.app.get(without_since, status=400).json
            assert response.json["message"] == expected["message"]
        if url.startswith(LIST_URL):
            self.app.head(url, status=400)


class TestRedirectHost(BaseWebTest):
    @classmethod
    def get_app_settings(cls, backend):
        return {**base_settings(backend), "http_scheme": "https", "http_host": "cdn.example.com"}

    @pytest.mark.parametrize("url", [f"{LIST_URL}?", f"{LIST_CHANGESET}?_expected=1&"])
    def test_absolute_url_from_kinto_settings_publicly_cached(self, url):
        headers = {"Host": "evil.example"}
        response = self.app.get(f"{url}_since=1&_limit=2", headers=headers, status=307)
        path = url.replace("_since=1&", "")
        assert response.headers["Location"] == f"https://cdn.example.com/v1{path}_limit=2"
        assert response.headers["Cache-Control"] == "max-age=86400"

    def test_authenticated_redirect_stays_private(self):
        response = self.app.get(f"{LIST_URL}?_since=1", headers=ALICE, status=307)
        assert response.cache_control.private


class TestRedirectSettings(BaseWebTest):
    @classmethod
    def get_app_settings(cls, backend):
        return {
            **base_settings(backend),
            "changes.since_max_age_days": "1",
            "changes.since_max_age_redirect_ttl_seconds": "60",
        }

    def test_age_and_ttl(self):
        response = self.app.get(f"{LIST_URL}?_since={days_ago(1.1)}", status=307)
        assert response.cache_control.max_age == 60
        self.app.get(f"{LIST_URL}?_since={days_ago(0.9)}", status=200)


class TestRedirectDisabled(BaseWebTest):
    @classmethod
    def get_app_settings(cls, backend):
        return {**base_settings(backend), "changes.since_max_age_days": "-1"}

    def test_old_since_is_served(self):
        self.create_collection("b", "c")
        assert self.app.get(f"{LIST_URL}?_since=1", headers=ALICE).json["data"]
        url = f"{LIST_CHANGESET}?_expected=1&_since=1"
        assert self.app.get(url, headers=ALICE).json["changes"]


class TestRedirectAfterPermissions(BaseWebTest):
    @classmethod
    def get_app_settings(cls, backend):
        return {**base_settings(backend), "changes.principals": "system.Authenticated"}

    @pytest.mark.parametrize("url", [f"{LIST_URL}?", f"{LIST_CHANGESET}?_expected=1&"])
    def test_unauthorized_readers_are_not_redirected(self, url):
        assert self.app.get(f"{url}_since=1", status=401).json["errno"] == 104
        self.app.get(f"{url}_since=1", headers=ALICE, status=307)


class TestRedirectBeforeStorage(BaseWebTest):
    """Decided before any storage access, although ``Changes`` reads its
    timestamp when it is built."""

    @classmethod
    def get_app_settings(cls, backend):
        return instrumented_settings(base_settings(backend))

    @pytest.mark.parametrize(
        "url",
        [
            f"{LIST_URL}?",
            f"{LIST_URL}?bucket=b&_sort=collection,-last_modified&_fields=bucket&_limit=1&",
            f"{LIST_CHANGESET}?_expected=1&",
            f"{LIST_CHANGESET}?_expected=1&bucket=b&_limit=1&",
        ],
    )
    def test_no_storage_call(self, url):
        self.create_collection("b", "c")
        self.create_collection("b", "d")
        etag = self.list_etag()
        calls = self.app.app.registry.storage.calls
        calls.clear()
        self.app.get(f"{url}_since=1", headers=ALICE, status=307)
        if url.startswith(LIST_URL):
            self.app.head(f"{url}_since=1", headers=ALICE, status=307)
        assert calls == []
        self.app.get(f"{url}_since={etag}", headers=ALICE, status=200)
        assert calls

    def test_no_storage_call_with_a_page_token(self):
        self.create_collection("b", "c")
        self.create_collection("b", "d")
        next_page = self.get_list("_limit=1").headers["Next-Page"]
        calls = self.app.app.registry.storage.calls
        calls.clear()
        self.app.get(f"{next_page.split('/v1', 1)[1]}&_since=1", headers=ALICE, status=307)
        assert calls == []
