"""A reader's list converges to what they may read now (SPEC §3.1).

With nothing configured, every reader polls the list as a client does: one
full read, then ``_since=<ETag>`` polls applied to its view (a tombstone
removes an entry, an entry sets it, a ``307`` to the full list replaces the
view). After every change, each reader's view must be exactly what Kinto lets
them read now: the collections ``GET /buckets/{bid}/collections`` lists for
them, with the ETag of their records. And no answer, however it is asked for,
may name a collection the reader could never read.

The changes are the three sequences of the issue, then random steps (fixed
seed; ``KINTO_CHANGES_CONVERGENCE_STEPS=3000`` for a longer run): buckets,
collections and groups created, deleted and re-created, permissions granted
and revoked by every route, records written, and ``/batch`` mixes of these.
Steps are chosen from Kinto's state so that most are valid; those Kinto
refuses change nothing and are only logged. A failure prints the steps.
"""

import copy
import json
import os
import random
from dataclasses import dataclass, field

import pytest
from kinto.core.storage import Sort
from kinto.core.testing import get_user_headers

from .support import LIST_URL, BaseWebTest


STEPS = int(os.environ.get("KINTO_CHANGES_CONVERGENCE_STEPS", "300"))
SEED = 20240611
ORIGIN = "http://localhost/v1"
USERS = {name: get_user_headers(name) for name in ("alice", "bob", "carol")}
READERS = {**USERS, "anonymous": {}}
BUCKETS = ("b0", "b1", "b2")
GROUPS = ("g0", "g1")
COLLECTIONS = ("c0", "c1", "c2", "c3")
SYSTEM = ("system.Authenticated", "system.Everyone")

# Kinds of change by what they do to who may read what. A /batch sends its
# narrowing requests first and its widening ones last: then whatever a reader
# could read inside the transaction, they could read before it or after it,
# which is what the checks between steps see. (What a reader may learn of a
# collection readable only inside a transaction is not this test's question.)
NARROWING = ("delete_bucket", "delete_collection", "delete_group", "revoke", "remove_member")
NEUTRAL = ("post_record", "delete_record", "delete_records")
WIDENING = ("create_bucket", "create_collection", "create_group", "grant", "add_member")
WEIGHTS = {
    "grant": 5,
    "revoke": 5,
    "create_collection": 3,
    "delete_collection": 2,
    "create_group": 1,
    "delete_group": 1,
    "add_member": 2,
    "remove_member": 2,
    "create_bucket": 2,
    "delete_bucket": 1,
    "post_record": 3,
    "delete_record": 1,
    "delete_records": 1,
}
METHODS = {
    "create_bucket": "PUT",
    "create_collection": "PUT",
    "create_group": "PUT",
    "grant": "PATCH",
    "revoke": "PATCH",
    "add_member": "PATCH",
    "remove_member": "PATCH",
    "post_record": "POST",
}  # The others are DELETE.
HISTORY_SHOWN = 60


@dataclass(frozen=True)
class Op:
    """One change, in terms of Kinto's objects (:meth:`State.request` makes
    it a request)."""

    kind: str
    bid: str
    cid: str = ""
    gid: str = ""
    perm: str = ""
    principal: str = ""  # Granted or revoked, or the group member added or removed.
    members: tuple = ()  # Of a created group.
    record: str = ""  # Deleted record id.

    @property
    def uri(self) -> str:
        """The object changed (for record changes, their collection)."""
        uri = f"/buckets/{self.bid}"
        if self.cid:
            return f"{uri}/collections/{self.cid}"
        return f"{uri}/groups/{self.gid}" if self.gid else uri

    @property
    def path(self) -> str:
        if self.kind == "delete_record":
            return f"{self.uri}/records/{self.record}"
        return f"{self.uri}/records" if self.kind in NEUTRAL else self.uri


def effect_rank(kind: str) -> int:
    """Narrowing changes first, widening ones last."""
    return 0 if kind in NARROWING else 1 if kind in NEUTRAL else 2


@dataclass
class State:
    """Kinto's objects, read from its backends before each step, to choose
    changes Kinto accepts. Never used to decide what a reader should see:
    Kinto's own answers do."""

    collections: dict[str, set] = field(default_factory=dict)  # Bucket id -> ids.
    groups: dict[str, dict[str, set]] = field(default_factory=dict)  # -> id -> members.
    acls: dict[str, dict[str, set]] = field(default_factory=dict)  # URI -> perm -> principals.
    user_groups: dict[str, set] = field(default_factory=dict)  # User id -> group URIs.
    # Deleted in a /batch being planned: Kinto deletes what they contain, their
    # permissions and their group memberships at the end of the request, so
    # an object re-created, or a group granted, in the same batch loses them.
    deleted: set[str] = field(default_factory=set)

    def may(self, uid: str, permissions: tuple, *uris: str) -> bool:
        principals = {uid, *SYSTEM} | self.user_groups.get(uid, set())
        return any(
            self.acls.get(uri, {}).get(perm, set()) & principals
            for uri in uris
            for perm in permissions
        )

    def exists(self, op: Op) -> bool:
        if op.bid not in self.collections:
            return False
        if op.cid:
            return op.cid in self.collections[op.bid]
        return op.gid in self.groups[op.bid] if op.gid else True

    def allows(self, op: Op, uid: str) -> bool:
        """Whether Kinto should accept ``op`` from ``uid`` now, and change something."""
        bucket = f"/buckets/{op.bid}"
        if op.kind.startswith("create_") and (self.exists(op) or op.uri in self.deleted):
            return False
        if op.kind == "create_bucket":
            return True
        if op.kind in ("create_collection", "create_group"):
            creators = ("write", f"{op.kind.split('_')[1]}:create")
            return self.exists(Op("", op.bid)) and self.may(uid, creators, bucket)
        acl = self.acls.get(op.uri, {}).get(op.perm, set())
        members = self.groups.get(op.bid, {}).get(op.gid, set())
        valid = {
            "grant": op.principal not in acl | self.deleted,
            # Kinto keeps the author among the writers.
            "revoke": op.principal in acl and (op.perm, op.principal) != ("write", uid),
            "add_member": op.principal not in members,
            "remove_member": op.principal in members,
            "delete_record": bool(op.record),
        }.get(op.kind, True)
        return valid and self.exists(op) and self.may(uid, ("write",), bucket, op.uri)

    def request(self, op: Op, uid: str) -> dict:
        """The request making ``op``; the state changes as Kinto will change it."""
        body = {}
        if op.kind in ("grant", "revoke"):
            acl = self.acls.setdefault(op.uri, {})
            acl[op.perm] = acl.get(op.perm, set()) ^ {op.principal}
            body = {"permissions": {op.perm: sorted(acl[op.perm])}}
        elif op.kind in ("create_group", "add_member", "remove_member"):
            body = {"data": {"members": sorted(self._set_members(op))}}
        elif op.kind == "post_record":
            body = {"data": {"title": "a record"}}
        self._apply(op)
        method = METHODS.get(op.kind, "DELETE")
        if method in ("PUT", "PATCH"):  # Kinto makes the author a writer.
            self.acls.setdefault(op.uri, {}).setdefault("write", set()).add(uid)
        return {"method": method, "path": op.path, "body": body}

    def _set_members(self, op: Op) -> set:
        """The group's new members; Kinto gives (or takes) its principal to them."""
        old = self.groups.setdefault(op.bid, {}).get(op.gid, set())
        new = set(op.members) if op.kind == "create_group" else old ^ {op.principal}
        for member in new - old:
            self.user_groups.setdefault(member, set()).add(op.uri)
        for member in old - new:
            self.user_groups.get(member, set()).discard(op.uri)
        self.groups[op.bid][op.gid] = new
        return new

    def _apply(self, op: Op) -> None:
        """Objects created or deleted by ``op`` (Kinto may refuse it: then
        nothing changes, as here for missing objects)."""
        collections, groups = self.collections.get(op.bid, set()), self.groups.get(op.bid, {})
        if op.kind in ("delete_bucket", "delete_collection", "delete_group"):
            self.deleted.add(op.uri)
        if op.kind == "create_bucket":
            self.collections[op.bid], self.groups[op.bid] = set(), {}
        elif op.kind == "create_collection":
            collections.add(op.cid)
        elif op.kind == "delete_bucket":
            self.collections.pop(op.bid, None)
            self.groups.pop(op.bid, None)
            for uri in [u for u in self.acls if u == op.uri or u.startswith(f"{op.uri}/")]:
                del self.acls[uri]  # Kinto keeps its groups' memberships, though.
        elif op.kind == "delete_collection":
            collections.discard(op.cid)
            self.acls.pop(op.uri, None)
        elif op.kind == "delete_group":
            groups.pop(op.gid, None)
            everywhere = [*self.user_groups.values()]
            everywhere += [principals for acl in self.acls.values() for principals in acl.values()]
            for principals in everywhere:
                principals.discard(op.uri)


def read_state(registry, user_ids: list[str]) -> State:
    """Kinto's objects now, through its storage and permission backends."""
    storage, permission = registry.storage, registry.permission

    def objects(resource_name: str, parent_id: str) -> list[dict]:
        return storage.list_all(resource_name=resource_name, parent_id=parent_id)

    state, uris = State(), []
    for bucket in objects("bucket", ""):
        bid, uri = bucket["id"], f"/buckets/{bucket['id']}"
        state.collections[bid] = {c["id"] for c in objects("collection", uri)}
        groups = objects("group", uri)
        state.groups[bid] = {g["id"]: set(g.get("members", ())) for g in groups}
        uris += [uri, *(f"{uri}/groups/{g['id']}" for g in groups)]
        uris += [f"{uri}/collections/{cid}" for cid in state.collections[bid]]
    acls = permission.get_objects_permissions(uris) if uris else []
    for uri, acl in zip(uris, acls, strict=True):
        state.acls[uri] = {perm: set(principals) for perm, principals in acl.items()}
    for uid in user_ids:
        state.user_groups[uid] = set(permission.get_user_principals(uid))
    return state


@dataclass
class Client:
    """A reader polling the list, as Remote Settings clients do."""

    name: str
    headers: dict
    etag: str = ""
    view: dict = field(default_factory=dict)  # (bucket, collection) -> last_modified.
    snapshots: list = field(default_factory=list)  # Every (ETag, view) it held.
    ever: set = field(default_factory=set)  # Collections it was ever expected to see.


def key(entry: dict) -> tuple[str, str]:
    return entry["bucket"], entry["collection"]


def etag_of(response) -> str:
    return response.headers["ETag"].strip('"')


def applied(view: dict, entries: list[dict]) -> dict:
    """A view after a ``_since`` answer: tombstones remove, entries set."""
    view = dict(view)
    for entry in entries:
        if entry.get("deleted"):
            view.pop(key(entry), None)
        else:
            view[key(entry)] = entry["last_modified"]
    return view


def differences(observed: dict, expected: dict) -> str:
    missing = {k: expected[k] for k in sorted(expected.keys() - observed.keys())}
    extra = {k: observed[k] for k in sorted(observed.keys() - expected.keys())}
    stale = {
        k: f"{observed[k]} instead of {expected[k]}"
        for k in sorted(observed.keys() & expected.keys())
        if observed[k] != expected[k]
    }
    return f"missing {missing}, extra {extra}, wrong timestamps {stale}"


class ConvergenceTest(BaseWebTest):
    """Readers as polling clients; every reader checked after each step."""

    @pytest.fixture(autouse=True)
    def _readers(self):
        # Two generators: the changes do not depend on how readers poll.
        self.rng, self.polling_rng = random.Random(SEED), random.Random(SEED + 1)
        self.user_ids = {name: self.user_id(headers) for name, headers in USERS.items()}
        self.history: list[str] = []
        self.steps = 0
        self.bucket_ids: set[str] = set()
        self.clients = {name: Client(name, headers) for name, headers in READERS.items()}
        for client in self.clients.values():
            response = self.app.get(LIST_URL, headers=client.headers)
            client.etag = etag_of(response)
            client.view = applied({}, self.pages(response, client.headers))
            client.snapshots.append((client.etag, client.view))

    def user_id(self, headers: dict) -> str:
        return self.app.get("/", headers=headers).json["user"]["id"]

    # Changes.

    def state(self) -> State:
        return read_state(self.app.app.registry, sorted(self.user_ids.values()))

    def send(self, actor: str, op: Op, state: State | None = None) -> None:
        """One request making ``op`` as ``actor`` (Kinto may refuse it); ``state``
        is Kinto's now, read again if not given."""
        request = (state or self.state()).request(op, self.user_ids[actor])
        self.bucket_ids.add(op.bid)
        method, path, headers = request["method"], request["path"], USERS[actor]
        if method == "DELETE":
            response = self.app.delete(path, headers=headers, status="*")
        else:
            call = getattr(self.app, f"{method.lower()}_json")
            response = call(path, request["body"], headers=headers, status="*")
        self.log(f"{actor}: {self.describe(request)} -> {response.status_code}")

    def batch(self, actor: str, ops: list[Op], state: State | None = None) -> None:
        """One ``/batch`` (one transaction) making ``ops`` in this order, as ``actor``."""
        state, uid = state or self.state(), self.user_ids[actor]
        requests = [state.request(op, uid) for op in ops]
        self.bucket_ids |= {op.bid for op in ops}
        body = {"requests": requests}
        response = self.app.post_json("/batch", body, headers=USERS[actor], status="*")
        self.log(f"{actor}: POST /batch -> {response.status_code}")
        for request, answer in zip(requests, response.json.get("responses", ()), strict=False):
            self.log(f"    {self.describe(request)} -> {answer['status']}")

    def change(self, actor: str, *ops: Op) -> None:
        """``ops`` as one request or one ``/batch``, then every reader checked."""
        if len(ops) == 1:
            self.send(actor, *ops)
        else:
            self.batch(actor, list(ops))
        self.check()

    def describe(self, request: dict) -> str:
        text = f"{request['method']} {request['path']} {json.dumps(request['body'])}"
        for name, uid in self.user_ids.items():
            text = text.replace(uid, name)
        return text.removesuffix(" {}")

    def log(self, line: str) -> None:
        self.history.append(line if line.startswith(" ") else f"{self.steps + 1}. {line}")

    # The list, as a client reads it.

    def pages(self, response, headers: dict) -> list[dict]:
        """The entries of a list answer and of its next pages."""
        entries = list(response.json["data"])
        while next_page := response.headers.get("Next-Page"):
            response = self.app.get(next_page.removeprefix(ORIGIN), headers=headers)
            entries += response.json["data"]
        return entries

    def poll(self, headers: dict, etag: str, view: dict) -> tuple[str, dict, list]:
        """A ``_since=<etag>`` poll (sometimes in pages) applied to ``view``:
        the new ETag, the new view and the entries received. A ``307`` is
        followed by hand: the full list it leads to replaces the view."""
        limit = self.polling_rng.choice(("", "", "", "&_limit=2"))
        response = self.app.get(f"{LIST_URL}?_since={etag}{limit}", headers=headers, status="*")
        if response.status_code == 307:
            location = response.headers["Location"].removeprefix(ORIGIN)
            response, view = self.app.get(location, headers=headers), {}
        assert response.status_code == 200, response
        entries = self.pages(response, headers)
        return etag_of(response), applied(view, entries), entries

    # What a reader may read now, as Kinto says.

    def readable(self, headers: dict, timestamps: dict) -> dict:
        """``{(bucket, collection): records ETag}`` of the collections Kinto
        lists for this reader, in every bucket the test used."""
        view = {}
        for bid in sorted(self.bucket_ids):
            url = f"/buckets/{bid}/collections"
            response = self.app.get(url, headers=headers, status=(200, 401, 403, 404))
            for collection in response.json["data"] if response.status_code == 200 else ():
                found = (bid, collection["id"])
                if found not in timestamps:
                    timestamps[found] = self.records_timestamp(found, headers)
                view[found] = timestamps[found]
        return view

    def records_timestamp(self, collection: tuple[str, str], headers: dict) -> int:
        """The ETag of the collection's records, read by this reader (or, should
        Kinto list it to them and refuse them its records, by a user it lets)."""
        url = "/buckets/{}/collections/{}/records?_limit=1".format(*collection)
        for reader in (headers, *USERS.values()):
            response = self.app.get(url, headers=reader, status="*")
            if response.status_code == 200:
                return int(etag_of(response))
        raise AssertionError(f"Kinto lists {collection}, but nobody may read its records")

    # Checks.

    def check(self) -> None:
        """After a step: every reader's list is what they may read now, and
        names nothing they could never read. Each step, one reader in turn
        also polls from an earlier ETag and is checked on more queries."""
        self.steps += 1
        timestamps = {}
        for index, client in enumerate(self.clients.values()):
            expected = self.readable(client.headers, timestamps)
            client.ever |= set(expected)
            self.check_poll(client, expected)
            self.check_queries(client, expected)
            if index == self.steps % len(self.clients):
                self.check_since(client, *self.polling_rng.choice(client.snapshots), expected)
                self.check_more_queries(client, expected)

    def check_every_answer(self) -> None:
        """Every reader polls from every ETag they received (applied to the
        view they had then), and is checked on every query."""
        for client in self.clients.values():
            expected = self.readable(client.headers, {})
            for etag, view in client.snapshots:
                self.check_since(client, etag, view, expected)
            self.check_queries(client, expected)
            self.check_more_queries(client, expected)

    def check_poll(self, client: Client, expected: dict) -> None:
        """The client polls from its last ETag and keeps the answer."""
        client.etag, client.view = self.check_since(client, client.etag, client.view, expected)
        client.snapshots.append((client.etag, client.view))

    def check_since(self, client: Client, etag: str, view: dict, expected: dict) -> tuple:
        """A poll from an ETag the client received, applied to the view it had then."""
        new_etag, new_view, entries = self.poll(client.headers, etag, view)
        what = f"_since={etag} poll"
        self.check_private(client, entries, expected, what)
        if new_view != expected:
            self.fail(client, what, differences(new_view, expected))
        return new_etag, new_view

    def check_queries(self, client: Client, expected: dict) -> None:
        """The plain list, and the list with every tombstone."""
        plain = self.pages(self.app.get(LIST_URL, headers=client.headers), client.headers)
        self.check_private(client, plain, expected, "plain list")
        if (view := applied({}, plain)) != expected:
            self.fail(client, "plain list", differences(view, expected))
        query = "gt_last_modified=1"
        response = self.app.get(f"{LIST_URL}?{query}", headers=client.headers)
        self.check_private(client, self.pages(response, client.headers), expected, query)

    def check_more_queries(self, client: Client, expected: dict) -> None:
        """``_before`` (with tombstones) and the count of ``HEAD``."""
        response = self.app.head(LIST_URL, headers=client.headers)
        total = int(response.headers["Total-Objects"])
        if total != len(expected):
            self.fail(client, "HEAD", f"Total-Objects {total} instead of {len(expected)}")
        query = f"_before={int(etag_of(response)) + 1}"  # No cursor is above the ETag.
        response = self.app.get(f"{LIST_URL}?{query}", headers=client.headers)
        self.check_private(client, self.pages(response, client.headers), expected, query)

    def check_private(self, client: Client, entries: list, expected: dict, what: str) -> None:
        """No tombstone or entry of a collection the reader could never read,
        no live entry of one they may not read now."""
        if never := [e for e in entries if key(e) not in client.ever]:
            self.fail(client, what, f"names collections never readable: {never}")
        if stale := [e for e in entries if not e.get("deleted") and key(e) not in expected]:
            self.fail(client, what, f"live entries of collections not readable now: {stale}")

    def fail(self, client: Client, what: str, problem: str) -> None:
        shown = self.history[-HISTORY_SHOWN:]
        lines = [
            f"{client.name}'s {what}, after step {self.steps}: {problem}",
            f"Steps (seed {SEED}; {len(self.history) - len(shown)} earlier lines not shown):",
            *shown,
        ]
        pytest.fail("\n".join(lines), pytrace=False)

    # Random changes.

    def principals(self) -> list[str]:
        groups = [f"/buckets/{bid}/groups/{gid}" for bid in BUCKETS for gid in GROUPS]
        return [*self.user_ids.values(), *groups, *SYSTEM]

    def propose(self, kind: str, state: State) -> Op:
        """A random change of this kind, on objects of ``state`` where it needs some."""
        rng, uids = self.rng, list(self.user_ids.values())
        bid, cid, gid = rng.choice(BUCKETS), rng.choice(COLLECTIONS), rng.choice(GROUPS)
        if kind in ("grant", "revoke"):
            cid = rng.choice((cid, ""))
            perm = rng.choice(("read", "write") if cid else ("read", "write", "collection:create"))
            present = sorted(state.acls.get(Op(kind, bid, cid).uri, {}).get(perm, ()))
            pool = present if kind == "revoke" and present else self.principals()
            return Op(kind, bid, cid, perm=perm, principal=rng.choice(pool))
        if kind in ("add_member", "remove_member"):
            members = sorted(state.groups.get(bid, {}).get(gid, ()))
            pool = members if kind == "remove_member" and members else uids
            return Op(kind, bid, gid=gid, principal=rng.choice(pool))
        if kind == "create_group":
            members = tuple(sorted(rng.sample(uids, rng.randint(0, 2))))
            return Op(kind, bid, gid=gid, members=members)
        if kind == "delete_record":
            return Op(kind, bid, cid, record=self.some_record(bid, cid))
        if kind in ("create_bucket", "delete_bucket"):
            return Op(kind, bid)
        return Op(kind, bid, gid=gid) if kind == "delete_group" else Op(kind, bid, cid)

    def some_record(self, bid: str, cid: str) -> str:
        """The id of a record of this collection, if it has one."""
        parent_id = f"/buckets/{bid}/collections/{cid}"
        storage = self.app.app.registry.storage
        newest = [Sort("last_modified", -1)]
        records = storage.list_all(
            resource_name="record", parent_id=parent_id, sorting=newest, limit=1
        )
        return records[0]["id"] if records else ""

    def valid_op(self, state: State, actor: str, kinds: list | None = None) -> Op | None:
        """A change Kinto should accept from ``actor``, if one is found quickly."""
        for _ in range(30):
            op = self.propose(self.rng.choice(kinds) if kinds else self.random_kind(), state)
            if state.allows(op, self.user_ids[actor]):
                return op
        return None

    def random_kind(self) -> str:
        return self.rng.choices(list(WEIGHTS), weights=list(WEIGHTS.values()))[0]

    def random_step(self) -> None:
        logged, roll = len(self.history), self.rng.random()
        if roll < 0.12:
            self.random_batch()
        elif roll < 0.17:
            self.recreate_bucket()
        else:
            self.random_request()
        if len(self.history) == logged:
            self.log("no change found")
        self.check()

    def random_request(self) -> None:
        """One request; now and then one Kinto may refuse (it then changes nothing)."""
        state, actor = self.state(), self.rng.choice(sorted(USERS))
        if self.rng.random() < 0.05:
            return self.send(actor, self.propose(self.random_kind(), state), state)
        for actor in self.rng.sample(sorted(USERS), len(USERS)):
            if op := self.valid_op(state, actor):
                return self.send(actor, op, state)

    def random_batch(self) -> None:
        """2 to 4 changes in one transaction, narrowing ones first (see ``NARROWING``)."""
        actor, count = self.rng.choice(sorted(USERS)), self.rng.randint(2, 4)
        kinds = sorted((self.random_kind() for _ in range(count)), key=effect_rank)
        state, ops = self.state(), []
        plan = copy.deepcopy(state)
        for kind in kinds:
            if op := self.valid_op(plan, actor, [kind]):
                plan.request(op, self.user_ids[actor])
                ops.append(op)
        if ops:
            self.batch(actor, ops, state)

    def recreate_bucket(self) -> None:
        """A bucket deleted and created again with the same id, maybe with some
        of its collection ids, by the same user or another one. (Not in one
        ``/batch``: Kinto would delete the new bucket's permissions at the end
        of the request, leaving a bucket nobody may write.)"""
        state = self.state()
        deletions = [
            (actor, Op("delete_bucket", bid))
            for actor in sorted(USERS)
            for bid in sorted(state.collections)
            if state.allows(Op("delete_bucket", bid), self.user_ids[actor])
        ]
        if not deletions:
            return self.random_request()
        actor, deletion = self.rng.choice(deletions)
        old = sorted(state.collections[deletion.bid])
        again = [Op("create_bucket", deletion.bid)]
        again += [Op("create_collection", deletion.bid, cid) for cid in old[:2]]
        creator = self.rng.choice(sorted(USERS))
        self.send(actor, deletion, state)
        for op in again:
            self.send(creator, op, state)


class TestIssueScenarios(ConvergenceTest):
    """The three sequences of the issue."""

    def test_a_group_joined_after_a_deletion_reveals_nothing(self):
        # Alice's B/layoffs is readable by her group ``team``, empty then.
        team, bob = "/buckets/B/groups/team", self.user_ids["bob"]
        self.change("alice", Op("create_bucket", "B"))
        self.change("alice", Op("create_group", "B", gid="team"))
        self.change("alice", Op("create_collection", "B", "layoffs"))
        self.change("alice", Op("grant", "B", "layoffs", perm="read", principal=team))
        self.change("alice", Op("post_record", "B", "layoffs"))
        self.change("alice", Op("delete_collection", "B", "layoffs"))
        # Bob joins afterwards: no answer of his may name it, tombstones included.
        self.change("alice", Op("add_member", "B", gid="team", principal=bob))
        self.check_every_answer()
        assert ("B", "layoffs") not in self.clients["bob"].ever

    def test_leaving_a_group_and_a_deletion_in_one_batch(self):
        group, bob = "/buckets/B/groups/G", self.user_ids["bob"]
        self.change("alice", Op("create_bucket", "B"))
        self.change("alice", Op("create_group", "B", gid="G", members=(bob,)))
        self.change("alice", Op("create_collection", "B", "C"))
        self.change("alice", Op("grant", "B", "C", perm="read", principal=group))
        self.change("alice", Op("post_record", "B", "C"))
        assert ("B", "C") in self.clients["bob"].view
        # Bob leaves G and C is deleted, in one transaction: C leaves his view.
        leave = Op("remove_member", "B", gid="G", principal=bob)
        self.change("alice", leave, Op("delete_collection", "B", "C"))
        self.check_every_answer()

    def test_losing_access_by_every_route(self):
        bob, group = self.user_ids["bob"], "/buckets/B/groups/G"
        for bid in ("B", "P"):
            self.change("alice", Op("create_bucket", bid))
            self.change("alice", Op("create_collection", bid, "C"))
        self.change("alice", Op("create_group", "B", gid="G", members=(bob,)))
        routes = [
            ("B", "C", "read", bob),
            ("B", "C", "write", bob),
            ("P", "", "read", bob),
            ("P", "", "write", bob),
            ("B", "C", "read", group),
            ("P", "", "write", group),
            ("B", "C", "read", "system.Authenticated"),
            ("P", "", "read", "system.Everyone"),
        ]
        for bid, cid, perm, principal in routes:
            self.change("alice", Op("grant", bid, cid, perm=perm, principal=principal))
            assert (bid, "C") in self.clients["bob"].view
            self.change("alice", Op("revoke", bid, cid, perm=perm, principal=principal))
        # A group: Bob removed from it; the group deleted.
        self.change("alice", Op("grant", "B", "C", perm="read", principal=group))
        self.change("alice", Op("remove_member", "B", gid="G", principal=bob))
        self.change("alice", Op("add_member", "B", gid="G", principal=bob))
        self.change("alice", Op("delete_group", "B", gid="G"))
        # A bucket deleted, then re-created by Bob with another collection.
        self.change("alice", Op("grant", "P", perm="read", principal=bob))
        self.change("alice", Op("delete_bucket", "P"))
        self.change("bob", Op("create_bucket", "P"))
        self.change("bob", Op("create_collection", "P", "D"))
        # Bob's bucket deleted and re-created by Alice with the same collection
        # id, before Bob polls again: he has lost P/D all the same.
        self.send("bob", Op("delete_bucket", "P"))
        self.send("alice", Op("create_bucket", "P"))
        self.change("alice", Op("create_collection", "P", "D"))
        self.check_every_answer()


class TestRandomChanges(ConvergenceTest):
    """``STEPS`` random changes (see the module's docstring)."""

    def test_every_reader_converges(self):
        self.bucket_ids = set(BUCKETS)
        for _ in range(STEPS):
            self.random_step()
