"""Who sees what (SPEC §3.1): with nothing configured, each reader sees the
entries, and tombstones, of the collections they may read."""

import base64
from urllib.parse import unquote

import pytest
import sqlalchemy
import transaction
from kinto.core.storage import Filter
from kinto.core.testing import get_user_headers
from kinto.core.utils import COMPARISON, msec_time

from kinto_changes.access import log_access_change
from kinto_changes.utils import entry_id
from kinto_changes.writer import EntryWriter, tombstone_of

from .support import ALICE, BOB, LIST_URL, BaseWebTest, base_settings
from .test_settings import make_app_userid


ANONYMOUS: dict = {}
CAROL = get_user_headers("carol")
LIST_CHANGESET = "/buckets/monitor/collections/changes/changeset"
GROUP = "/buckets/shared/groups/readers"

# Seen by Alice only: ids that must never reach Bob or an anonymous reader.
ALICE_ONLY = {("alice-private", "diary"), ("shared", "alice-notes")}
PUBLIC = {("pub", "news")}


class PrivacyTest(BaseWebTest):
    @classmethod
    def get_app_settings(cls, backend):
        settings = base_settings(backend)
        return {**settings, "includes": "kinto_changes kinto.plugins.default_bucket"}

    @pytest.fixture(autouse=True)
    def _tenants(self):
        """Alice's private bucket, a bucket shared between tenants, a public
        collection, a group-granted collection and Bob's default bucket."""
        self.bob_id = self.app.get("/", headers=BOB).json["user"]["id"]
        self.create_collection("alice-private", "diary")
        self.app.put_json(
            "/buckets/shared",
            {"permissions": {"collection:create": ["system.Authenticated"]}},
            headers=ALICE,
        )
        self.create_collection("shared", "alice-notes")
        self.app.put_json("/buckets/shared/collections/bob-notes", {}, headers=BOB)
        self.app.put_json(GROUP, {"data": {"members": [self.bob_id]}}, headers=ALICE)
        self.grant("shared", "grouped", "read", [GROUP], create=True)
        self.create_collection("pub", "news")
        self.grant("pub", "news", "read", ["system.Everyone"])
        self.create_record("default", "tasks", headers=BOB, title="mine")
        self.bob_bucket = self.app.get("/buckets/default", headers=BOB).json["data"]["id"]

    def grant(self, bid, cid, permission, principals, create=False, headers=ALICE):
        url = f"/buckets/{bid}" + (f"/collections/{cid}" if cid else "")
        body = {"permissions": {permission: principals}}
        call = self.app.put_json if create else self.app.patch_json
        call(url, body, headers=headers)

    def seen(self, headers, params="") -> set:
        return set(self.entries(params, headers=headers))

    def poll_replaces(self, headers, etag) -> set:
        """The ``_since`` poll is redirected to the full list: what it holds."""
        response = self.get_list(f"_since={etag}", headers=headers, status=307)
        assert response.cache_control.private
        location = response.headers["Location"].split("/v1", 1)[1]
        full = self.app.get(location, headers=headers).json["data"]
        return {(e["bucket"], e["collection"]) for e in full}

    def total(self, headers, params="") -> int:
        response = self.app.head(f"{LIST_URL}?{params}", headers=headers)
        return int(response.headers["Total-Objects"])

    @property
    def alice_sees(self) -> set:
        every = {("shared", "bob-notes"), ("shared", "grouped")}
        return ALICE_ONLY | PUBLIC | every

    @property
    def bob_sees(self) -> set:
        return PUBLIC | {
            ("shared", "bob-notes"),
            ("shared", "grouped"),
            (self.bob_bucket, "tasks"),
        }


class TestWhoSeesWhat(PrivacyTest):
    def test_each_reader_sees_the_collections_they_may_read(self):
        # Alice owns ``shared``: she may read every collection in it (bucket
        # ``write``), Bob only his own and the one granted to his group.
        assert self.seen(ALICE) == self.alice_sees
        assert self.seen(BOB) == self.bob_sees
        assert self.seen(ANONYMOUS) == PUBLIC
        assert self.seen(CAROL) == PUBLIC

    def test_total_objects_counts_what_the_reader_sees(self):
        assert self.total(ALICE) == len(self.alice_sees)
        assert self.total(BOB) == len(self.bob_sees)
        assert self.total(ANONYMOUS) == 1
        assert self.total(BOB, "bucket=alice-private") == 0

    def test_pages_give_each_visible_entry_once(self):
        url, seen = f"{LIST_URL}?_limit=1", []
        while url:
            response = self.app.get(url, headers=BOB)
            seen += [(e["bucket"], e["collection"]) for e in response.json["data"]]
            next_page = response.headers.get("Next-Page")
            url = next_page and next_page.split("/v1", 1)[1]
        assert sorted(seen) == sorted(self.bob_sees)

    def test_since_polls_show_only_what_the_reader_may_read(self):
        etag = self.list_etag(headers=BOB)
        self.create_record("alice-private", "diary", text="secret")
        self.create_record("pub", "news", title="hello")
        # One ETag for every reader: it says that something changed, not what.
        assert self.list_etag(headers=BOB) == self.list_etag(headers=ANONYMOUS)
        assert self.seen(BOB, f"_since={etag}") == PUBLIC
        assert self.seen(ANONYMOUS, f"_since={etag}") == PUBLIC
        assert self.seen(ALICE, f"_since={etag}") == PUBLIC | {("alice-private", "diary")}

    def test_a_change_elsewhere_gives_an_empty_since_poll(self):
        etag = self.list_etag(headers=BOB)
        self.create_record("alice-private", "diary", text="secret")
        response = self.get_list(f"_since={etag}", headers=BOB)
        assert response.json["data"] == []
        self.app.get(
            LIST_URL, headers={**BOB, "If-None-Match": response.headers["ETag"]}, status=304
        )

    def test_changing_permissions_in_batch_is_seen_at_commit(self):
        grant = {"permissions": {"read": [self.bob_id]}}
        requests = [
            {"method": "PATCH", "path": "/buckets/alice-private/collections/diary", "body": grant},
            {
                "method": "POST",
                "path": "/buckets/alice-private/collections/diary/records",
                "body": {"data": {}},
            },
        ]
        self.app.post_json("/batch", {"requests": requests}, headers=ALICE)
        assert ("alice-private", "diary") in self.seen(BOB)


class TestTombstones(PrivacyTest):
    def test_a_deleted_collection_is_told_to_its_readers_only(self):
        etag = self.list_etag(headers=ALICE)
        self.app.delete("/buckets/shared/collections/alice-notes", headers=ALICE)
        self.app.delete("/buckets/pub/collections/news", headers=ALICE)
        since = f"_since={etag}"
        alice = self.entries(since, headers=ALICE)
        assert set(alice) == {("shared", "alice-notes"), ("pub", "news")}
        assert all(e["deleted"] for e in alice.values())
        assert self.seen(BOB, since) == PUBLIC
        assert self.seen(ANONYMOUS, since) == PUBLIC

    def test_a_deleted_bucket_is_told_to_its_readers_only(self):
        etag = self.list_etag(headers=ALICE)
        self.app.delete("/buckets/alice-private", headers=ALICE)
        self.app.delete("/buckets/shared", headers=ALICE)
        since = f"_since={etag}"
        gone = {("alice-private", "diary"), ("shared", "alice-notes")}
        gone |= {("shared", "bob-notes"), ("shared", "grouped")}
        assert self.seen(ALICE, since) == gone
        # Bob could read two of them: he is told they are gone, and no more.
        assert self.seen(BOB, since) == {("shared", "bob-notes"), ("shared", "grouped")}
        assert self.seen(ANONYMOUS, since) == set()
        assert self.total(BOB) == 2  # His default bucket and the public one.

    def test_tombstones_keep_their_readers_after_a_recreation_elsewhere(self):
        etag = self.list_etag(headers=ALICE)
        self.app.delete("/buckets/alice-private/collections/diary", headers=ALICE)
        self.app.put_json("/buckets/pub/collections/diary", {}, headers=ALICE)
        assert self.seen(BOB, f"_since={etag}") == set()


class TestPermissionChanges(PrivacyTest):
    def test_grant_then_revoke_on_a_collection(self):
        etag = self.list_etag(headers=BOB)
        self.grant("alice-private", "diary", "read", [self.bob_id])
        assert ("alice-private", "diary") in self.seen(BOB)
        # Pollers see it as a change, with the collection's records timestamp.
        polled = self.entries(f"_since={etag}", headers=BOB)
        assert set(polled) == {("alice-private", "diary")}
        records_etag = self.records_etag("alice-private", "diary")
        assert polled[("alice-private", "diary")]["last_modified"] == records_etag

        self.grant("alice-private", "diary", "read", [])
        assert self.seen(BOB) == self.bob_sees

    def test_grant_then_revoke_on_a_bucket(self):
        self.create_collection("alice-private", "agenda")
        self.grant("alice-private", None, "read", ["system.Authenticated"])
        expected = {("alice-private", "diary"), ("alice-private", "agenda")}
        assert expected <= self.seen(BOB)
        assert expected <= self.seen(CAROL)
        assert self.seen(ANONYMOUS) == PUBLIC

        self.grant("alice-private", None, "read", [])
        assert self.seen(BOB) == self.bob_sees
        assert self.seen(CAROL) == PUBLIC

    def test_write_permission_lets_read(self):
        self.grant("alice-private", "diary", "write", [self.bob_id])
        assert ("alice-private", "diary") in self.seen(BOB)

    def test_group_membership_follows_the_group(self):
        self.app.patch_json(GROUP, {"data": {"members": []}}, headers=ALICE)
        assert ("shared", "grouped") not in self.seen(BOB)
        self.app.patch_json(GROUP, {"data": {"members": [self.bob_id]}}, headers=ALICE)
        assert ("shared", "grouped") in self.seen(BOB)

    def test_new_group_members_get_the_full_list(self):
        # Joining a group is an access change concerning Bob: his next
        # ``_since`` poll is answered as an old one, with the full list.
        self.app.patch_json(GROUP, {"data": {"members": []}}, headers=ALICE)
        etag = self.get_list(headers=BOB).headers["ETag"]
        self.app.patch_json(GROUP, {"data": {"members": [self.bob_id]}}, headers=ALICE)
        self.app.get(LIST_URL, headers={**BOB, "If-None-Match": etag}, status=200)
        full = self.poll_replaces(BOB, etag.strip('"'))
        assert full == self.bob_sees

    def test_a_group_created_after_the_permission_naming_it(self):
        later = "/buckets/shared/groups/later"
        self.grant("alice-private", "diary", "read", [later])
        etag = self.list_etag(headers=BOB)
        self.app.put_json(later, {"data": {"members": [self.bob_id]}}, headers=ALICE)
        assert self.poll_replaces(BOB, etag) == self.bob_sees | {("alice-private", "diary")}

    def test_others_keep_their_since_polls(self):
        # Carol is not concerned by Bob's membership: her poll is a poll.
        etag = self.list_etag(headers=CAROL)
        self.app.patch_json(GROUP, {"data": {"members": []}}, headers=ALICE)
        self.get_list(f"_since={etag}", headers=CAROL, status=200)

    def test_metadata_change_keeps_the_cursor(self):
        etag = self.list_etag(headers=ALICE)
        self.app.patch_json(
            "/buckets/alice-private/collections/diary", {"data": {"x": 1}}, headers=ALICE
        )
        self.app.patch_json("/buckets/alice-private", {"data": {"x": 1}}, headers=ALICE)
        assert self.list_etag(headers=ALICE) == etag


class TestListChangeset(PrivacyTest):
    def changes(self, headers, params="") -> set:
        url = f"{LIST_CHANGESET}?_expected=0{params}"
        body = self.app.get(url, headers=headers).json
        return {(e["bucket"], e["collection"]) for e in body["changes"]}

    def test_changeset_shows_what_the_reader_may_read(self):
        assert self.changes(ALICE) == self.alice_sees
        assert self.changes(BOB) == self.bob_sees
        assert self.changes(ANONYMOUS) == PUBLIC

    def test_bucket_and_collection_filters(self):
        assert self.changes(ALICE, "&bucket=alice-private") == {("alice-private", "diary")}
        assert self.changes(BOB, "&bucket=alice-private") == set()
        assert self.changes(BOB, "&collection=diary") == set()
        assert self.changes(BOB, "&bucket=shared") == {
            ("shared", "bob-notes"),
            ("shared", "grouped"),
        }

    def test_since_includes_the_readers_tombstones_only(self):
        etag = self.list_etag(headers=ALICE)
        self.app.delete("/buckets/shared", headers=ALICE)
        since = f"&_since={etag}"
        assert self.changes(BOB, since) == {("shared", "bob-notes"), ("shared", "grouped")}
        assert self.changes(ANONYMOUS, since) == set()


class TestNothingLeaks(PrivacyTest):
    """Every response an outsider gets, scanned for Alice's private ids."""

    def secrets(self) -> set[str]:
        ids = {part for key in ALICE_ONLY for part in key if part != "shared"}
        entry_ids = {
            e["id"] for key, e in self.entries(headers=ALICE).items() if key in ALICE_ONLY
        }
        return ids | entry_ids

    def outsider_responses(self, headers) -> list:
        entries = self.entries(headers=ALICE)
        self.private_entry_id = entries[("alice-private", "diary")]["id"]
        etag = self.list_etag(headers=ALICE)
        self.create_record("alice-private", "diary", text="secret")
        self.app.delete("/buckets/shared/collections/alice-notes", headers=ALICE)
        newest = self.list_etag(headers=ALICE)
        get = self.app.get
        responses = [
            get(LIST_URL, headers=headers),
            get(f"{LIST_URL}?_since={etag}", headers=headers),
            get(f"{LIST_URL}?_since={etag}&_limit=1", headers=headers),
            get(f"{LIST_URL}?_limit=1&_sort=bucket", headers=headers),
            get(f"{LIST_URL}?_before={newest}", headers=headers),
            get(f"{LIST_URL}?has_deleted=true&_since={etag}", headers=headers),
            get(LIST_URL, headers={**headers, "If-None-Match": f'"{newest}"'}, status=304),
            get(LIST_URL, headers={**headers, "If-None-Match": f'"{etag}"'}),
            self.app.head(f"{LIST_URL}?_since={etag}", headers=headers),
            get(f"{LIST_CHANGESET}?_expected=0", headers=headers),
            get(f"{LIST_CHANGESET}?_expected=0&_since={etag}", headers=headers),
            get(f"{LIST_CHANGESET}?_expected=0&_since={etag}&_limit=1", headers=headers),
            get(f"{LIST_URL}?_sort=nope", headers=headers, status=400),
            self.app.head(LIST_URL, headers=headers),
            get("/", headers=headers),
            get("/__api__", headers=headers),
            get(f"{LIST_URL}/{self.private_entry_id}", headers=headers, status=405),
        ]
        for bid, cid in ALICE_ONLY:
            url = f"/buckets/{bid}/collections/{cid}/changeset?_expected=0"
            responses.append(get(url, headers=headers, status=(401, 403)))
        for response in list(responses):
            next_page = response.headers.get("Next-Page")
            while next_page:
                response = get(next_page.split("/v1", 1)[1], headers=headers)
                responses.append(response)
                next_page = response.headers.get("Next-Page")
        return responses

    @pytest.mark.parametrize("who", ["anonymous", "bob"])
    def test_no_private_id_in_any_body_or_header(self, who):
        headers = {"anonymous": ANONYMOUS, "bob": BOB}[who]
        secrets = self.secrets()
        for response in self.outsider_responses(headers):
            texts = [response.text, *(f"{k}: {v}" for k, v in response.headers.items())]
            texts += decoded_tokens(response)
            for text in texts:
                leaked = [s for s in secrets if s in text]
                assert not leaked, f"{response.request.url} -> {text[:300]}"

    @pytest.mark.parametrize("who", ["anonymous", "bob"])
    def test_private_and_missing_collections_answer_alike(self, who):
        headers = {"anonymous": ANONYMOUS, "bob": BOB}[who]

        def answer(bid, cid):
            url = f"/buckets/{bid}/collections/{cid}/changeset?_expected=0"
            response = self.app.get(url, headers=headers, expect_errors=True)
            body = response.text.replace(bid, "B").replace(cid, "C")
            return response.status_code, body

        private = answer("alice-private", "diary")
        assert private[0] in (401, 403)
        assert private == answer("nobody-bucket", "nothing")
        assert answer("shared", "alice-notes") == answer("shared", "nothing")

    @pytest.mark.parametrize("who", ["anonymous", "bob"])
    def test_filters_naming_private_ids_answer_as_for_missing_ones(self, who):
        headers = {"anonymous": ANONYMOUS, "bob": BOB}[who]
        for template in ("bucket={}", "collection={}", "in_bucket={},x", "_limit=1&bucket={}"):
            private = self.get_list(template.format("alice-private"), headers=headers)
            missing = self.get_list(template.format("nobody-bucket"), headers=headers)
            assert private.json == missing.json
            assert private.headers.get("Total-Objects") == missing.headers.get("Total-Objects")


def decoded_tokens(response) -> list[str]:
    """The ``_token`` of a ``Next-Page`` header, decoded (it is base64 JSON)."""
    next_page = response.headers.get("Next-Page")
    if not next_page or "_token=" not in next_page:
        return []
    token = next_page.split("_token=", 1)[1].split("&", 1)[0]
    return [base64.urlsafe_b64decode(unquote(token) + "==").decode()]


class TestConfiguredListIsPublished(PrivacyTest):
    """With ``collections`` configured, the operator publishes those entries."""

    @classmethod
    def get_app_settings(cls, backend):
        return {
            **super().get_app_settings(backend),
            "changes.collections": "/buckets/alice-private",
        }

    def test_every_reader_sees_every_configured_entry(self):
        for headers in (ALICE, BOB, ANONYMOUS):
            assert self.seen(headers) == {("alice-private", "diary")}


class TestGlobalRecordReaders(PrivacyTest):
    """Kinto's ``record_read_principals`` lets its principals read every collection."""

    @classmethod
    def get_app_settings(cls, backend):
        return {
            **super().get_app_settings(backend),
            "record_read_principals": make_app_userid(backend),
        }

    def test_they_see_every_entry(self):
        # make_app_userid gives Alice's id; Bob is still filtered.
        assert self.seen(ALICE) == self.alice_sees | {(self.bob_bucket, "tasks")}
        assert self.seen(BOB) == self.bob_sees


class TestAccessChanges(PrivacyTest):
    """Access moves: a reader's ``_since`` polls converge to what they may read
    now, and nobody learns about collections they could not read."""

    def test_joining_a_group_reveals_no_deleted_collection(self):
        team = "/buckets/alice-private/groups/team"
        self.app.put_json(team, {"data": {"members": []}}, headers=ALICE)
        self.grant("alice-private", "layoffs", "read", [team], create=True)
        old = self.list_etag(headers=BOB)
        self.app.delete("/buckets/alice-private/collections/layoffs", headers=ALICE)
        self.app.patch_json(team, {"data": {"members": [self.bob_id]}}, headers=ALICE)
        for params in ("gt_last_modified=1", f"_before={msec_time()}", "min_last_modified=1"):
            assert ("alice-private", "layoffs") not in self.seen(BOB, params), params
        assert self.poll_replaces(BOB, old) == self.bob_sees
        changeset = self.app.get(f"{LIST_CHANGESET}?_expected=0&_since=1", headers=BOB)
        assert "layoffs" not in changeset.text

    @pytest.mark.parametrize("leave", ["members", "group"])
    def test_leaving_a_group_with_the_deletion_in_one_batch(self, leave):
        etag = self.list_etag(headers=BOB)
        first = (
            {"method": "PATCH", "path": GROUP, "body": {"data": {"members": []}}}
            if leave == "members"
            else {"method": "DELETE", "path": GROUP}
        )
        second = {"method": "DELETE", "path": "/buckets/shared/collections/grouped"}
        self.app.post_json("/batch", {"requests": [first, second]}, headers=ALICE)
        # Bob's client replaces its view: the collection is gone from it.
        assert self.poll_replaces(BOB, etag) == self.bob_sees - {("shared", "grouped")}

    @pytest.mark.parametrize("route", ["collection", "bucket", "group"])
    def test_losing_access_replaces_the_view(self, route):
        grants = {
            "collection": ("alice-private", "diary"),
            "bucket": ("alice-private", None),
            "group": ("alice-private", "diary"),
        }
        bid, cid = grants[route]
        principal = GROUP if route == "group" else self.bob_id
        self.grant(bid, cid, "read", [principal])
        assert ("alice-private", "diary") in self.seen(BOB)
        etag = self.list_etag(headers=BOB)
        if route == "group":
            self.app.patch_json(GROUP, {"data": {"members": []}}, headers=ALICE)
            expected = self.bob_sees - {("shared", "grouped")}
        else:
            self.grant(bid, cid, "read", [])
            expected = self.bob_sees
        assert self.poll_replaces(BOB, etag) == expected
        # Readers the change did not concern keep plain polls.
        self.get_list(f"_since={etag}", headers=CAROL, status=200)

    def test_a_bucket_grant_rewrites_no_entry(self):
        for i in range(20):
            self.create_collection("alice-private", f"c{i}")
        before = {e["id"]: e["last_modified"] for e in self.stored_entries()}
        etag = self.list_etag(headers=ALICE)
        for principals in (["system.Everyone"], [], ["system.Everyone"], []):
            self.grant("alice-private", None, "read", principals)
        assert {e["id"]: e["last_modified"] for e in self.stored_entries()} == before
        # One cursor per access change, dated like any write.
        assert etag < self.list_etag(headers=ALICE) <= msec_time() + 4
        assert self.poll_replaces(ANONYMOUS, etag) == PUBLIC


class TestAccessChangesCost(PrivacyTest):
    """A change of access, or a deletion of many collections, costs the plugin
    the same whatever the number of collections it affects (SPEC §3.2, §4):
    counted in SQL statements sent while it writes, under the cursor lock."""

    backends = ("postgresql",)

    @pytest.fixture(autouse=True)
    def _count_statements(self, monkeypatch):
        self.statements, sent = [], []

        def count(*args):
            sent.append(1)

        sqlalchemy.event.listen(sqlalchemy.engine.Engine, "before_cursor_execute", count)
        write = EntryWriter.write

        def counted(writer, pending):
            before = len(sent)
            write(writer, pending)
            self.statements.append(len(sent) - before)

        monkeypatch.setattr(EntryWriter, "write", counted)
        yield
        sqlalchemy.event.remove(sqlalchemy.engine.Engine, "before_cursor_execute", count)

    def costs(self, count: int) -> list[int]:
        bid = f"b{count}"
        group = f"/buckets/{bid}/groups/g"
        self.app.put_json(f"/buckets/{bid}", {}, headers=ALICE)
        self.app.put_json(group, {"data": {"members": []}}, headers=ALICE)
        for first in range(0, count, 25):  # Kinto's limit per batch.
            requests = [
                {"method": "PUT", "path": f"/buckets/{bid}/collections/c{i}", "body": {}}
                for i in range(first, min(first + 25, count))
            ]
            self.app.post_json("/batch", {"requests": requests}, headers=ALICE)
        self.statements.clear()
        public = {"permissions": {"read": ["system.Everyone", group]}}
        self.app.patch_json(f"/buckets/{bid}", public, headers=ALICE)
        self.app.patch_json(f"/buckets/{bid}", {"permissions": {"read": []}}, headers=ALICE)
        self.app.patch_json(group, {"data": {"members": [self.bob_id]}}, headers=ALICE)
        self.app.delete(f"/buckets/{bid}/collections", headers=ALICE)
        self.app.put_json(f"/buckets/{bid}/collections/again", {}, headers=ALICE)
        self.app.delete(f"/buckets/{bid}", headers=ALICE)
        return list(self.statements)

    def test_the_same_for_5_and_40_collections(self):
        assert self.costs(5) == self.costs(40)
        gone = [e for e in self.stored_entries() if e["bucket"] in ("b5", "b40")]
        assert len(gone) == 5 + 40 + 2
        assert all(entry["deleted"] for entry in gone)


class TestForgottenAccessChanges(PrivacyTest):
    @classmethod
    def get_app_settings(cls, backend):
        return {**super().get_app_settings(backend), "changes.since_max_age_days": "1"}

    def test_older_than_since_max_age_days(self):
        storage = self.app.app.registry.storage
        two_days_ago = msec_time() - 2 * 24 * 3600 * 1000
        with transaction.manager:
            log_access_change(storage, "kinto_changes", two_days_ago, [self.bob_id])
            old = tombstone_of(
                {"bucket": "alice-private", "collection": "old", "_readers": [self.bob_id]},
                "",
                None,
                two_days_ago + 1,
            )
            storage.update(
                resource_name="changes",
                parent_id="kinto_changes",
                object_id=entry_id("", "alice-private", "old"),
                obj=old,
            )
        # Nobody is told of a tombstone older than the access changes kept.
        assert ("alice-private", "old") not in self.seen(BOB, "gt_last_modified=0")
        # Forgetting is due (at most once a minute per process): a minute later.
        self.app.app.registry.changes_forgetting.due = 0
        self.grant("alice-private", None, "read", ["system.Everyone"])
        cursors = [
            change["last_modified"]
            for change in storage.list_all(
                resource_name="changes-access", parent_id="kinto_changes"
            )
        ]
        assert cursors and min(cursors) > two_days_ago

    def test_forgotten_at_most_once_a_minute(self):
        storage = self.app.app.registry.storage
        forgetting = self.app.app.registry.changes_forgetting

        def old_changes_kept(ago_ms: int) -> bool:
            with transaction.manager:
                log_access_change(storage, "kinto_changes", msec_time() - ago_ms, [self.bob_id])
            self.grant("alice-private", None, "read", [f"account:{ago_ms}"])
            kept = storage.list_all(
                resource_name="changes-access",
                parent_id="kinto_changes",
                filters=[Filter("last_modified", msec_time() - 24 * 3600 * 1000, COMPARISON.LT)],
            )
            return bool(kept)

        forgetting.due = 0
        assert not old_changes_kept(2 * 24 * 3600 * 1000)  # Forgotten: due.
        assert old_changes_kept(3 * 24 * 3600 * 1000)  # Not again within the minute.
        forgetting.due = 0
        assert not old_changes_kept(4 * 24 * 3600 * 1000)
