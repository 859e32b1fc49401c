"""Make ``a09cdd0.sql`` and ``a09cdd0.json``: a database filled by the code of commit a09cdd0.

``tests/test_upgrade.py`` loads the dump and upgrades it with the current
code. Run this script with the code of that commit, from a checkout of it
with its own environment (it imports that checkout's ``tests.support``)::

    git worktree add /tmp/old a09cdd0
    cd /tmp/old && python3 -m venv .venv && .venv/bin/pip install -q -e ".[test]"
    .venv/bin/python /path/to/tests/upgrade/make_dump.py [--database-url URL]

It fills a fresh PostgreSQL database through HTTP (several tenants, private,
public and shared buckets, grants through groups, tombstones), records what
every reader gets from the list at one point (``recorded``) and once more
before the dump (``at_dump``), then dumps the whole database with
``pg_dump`` as plain SQL, next to this script. The database (by default
``kinto_changes_upg_dump`` on 127.0.0.1) is created afresh, then dropped.
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import sqlalchemy


sys.path.insert(0, os.getcwd())  # The old checkout's ``tests`` package.

from kinto.core.testing import get_user_headers  # noqa: E402

import kinto_changes  # noqa: E402
from tests.support import LIST_URL, base_settings, make_app  # noqa: E402


COMMIT = "a09cdd0"
HERE = Path(__file__).parent
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/kinto_changes_upg_dump"

USERS = {name: get_user_headers(name) for name in ("alice", "bob", "carol")}
READERS = {**USERS, "anonymous": {}}
EVERYONE, AUTHENTICATED = "system.Everyone", "system.Authenticated"
SECRET = "tests-secret"


class Tenants:
    """The users' requests, as a client would send them."""

    def __init__(self, app) -> None:
        self.app = app
        self.ids = {name: app.get("/", headers=h).json["user"]["id"] for name, h in USERS.items()}

    def bucket(self, user: str, bid: str, **permissions) -> None:
        body = {"permissions": permissions} if permissions else {}
        self.app.put_json(f"/buckets/{bid}", body, headers=USERS[user], status=201)

    def collection(self, user: str, bid: str, cid: str, records: int = 0, **permissions) -> None:
        body = {"permissions": permissions} if permissions else {}
        url = f"/buckets/{bid}/collections/{cid}"
        self.app.put_json(url, body, headers=USERS[user], status=201)
        for n in range(records):
            self.record(user, bid, cid, title=f"{cid} {n}")

    def record(self, user: str, bid: str, cid: str, **data) -> dict:
        url = f"/buckets/{bid}/collections/{cid}/records"
        return self.app.post_json(url, {"data": data}, headers=USERS[user]).json["data"]

    def group(self, user: str, bid: str, gid: str, members: list[str]) -> None:
        body = {"data": {"members": [self.ids[m] for m in members]}}
        self.app.put_json(f"/buckets/{bid}/groups/{gid}", body, headers=USERS[user])

    def patch_permissions(self, user: str, uri: str, **permissions) -> None:
        self.app.patch_json(uri, {"permissions": permissions}, headers=USERS[user])


def fill_before_recording(t: Tenants) -> None:
    ids = t.ids
    # Alice's private bucket: Bob may create collections in it (and writes
    # the one he creates); record:create and a record-level grant let Bob
    # and Carol read none of the others.
    t.bucket("alice", "alice-private", **{"collection:create": [ids["bob"]]})
    t.collection("alice", "alice-private", "notes", records=2)
    t.collection("alice", "alice-private", "drafts", records=1)
    t.collection("alice", "alice-private", "inbox", **{"record:create": [AUTHENTICATED]})
    t.record("bob", "alice-private", "inbox", title="from bob")
    url = "/buckets/alice-private/collections/notes/records/shown-to-carol"
    t.app.put_json(url, {"permissions": {"read": [ids["carol"]]}}, headers=USERS["alice"])
    t.collection("bob", "alice-private", "bob-box", records=1)
    # Public, and readable by every authenticated user.
    t.bucket("alice", "public", read=[EVERYONE])
    t.collection("alice", "public", "news", records=3)
    t.collection("alice", "public", "archive", records=1)
    t.app.delete("/buckets/public/collections/archive", headers=USERS["alice"])
    t.bucket("bob", "members", read=[AUTHENTICATED])
    t.collection("bob", "members", "forum", records=2)
    t.collection("bob", "members", "events")  # No records.
    # Shared with Bob directly, and through a group.
    t.bucket("alice", "team")
    t.collection("alice", "team", "shared", records=1, read=[ids["bob"]])
    t.group("alice", "team", "editors", ["bob"])
    t.collection(
        "alice", "team", "group-shared", records=2, write=["/buckets/team/groups/editors"]
    )
    t.collection("alice", "team", "secret", records=1)
    # Carol's bucket, readable by Bob; one of its collections shared with Alice.
    t.bucket("carol", "lab", read=[ids["bob"]])
    t.collection("carol", "lab", "results", records=2)
    t.collection("carol", "lab", "for-alice", records=1, read=[ids["alice"]])
    # Bob's bucket, deleted later: Carol reads one collection through its group.
    t.bucket("bob", "doomed")
    t.collection("bob", "doomed", "a", records=1)
    t.group("bob", "doomed", "crew", ["carol"])
    t.collection("bob", "doomed", "b", records=1, read=["/buckets/doomed/groups/crew"])


def fill_after_recording(t: Tenants) -> None:
    """The last few changes: writes, deletions and new grants (no access is
    lost: the layout of a09cdd0 keeps no trace of who lost it)."""
    alice = USERS["alice"]
    t.record("alice", "alice-private", "notes", title="late note")
    t.record("bob", "alice-private", "bob-box", title="late")
    t.record("bob", "members", "forum", title="late post")
    t.app.delete("/buckets/public/collections/news/records", headers=alice)
    t.app.delete("/buckets/alice-private/collections/drafts", headers=alice)
    t.app.delete("/buckets/doomed", headers=USERS["bob"])
    t.patch_permissions("alice", "/buckets/team/collections/secret", read=[t.ids["carol"]])
    t.group("alice", "team", "editors", ["bob", "carol"])
    batch = {
        "defaults": {"method": "PUT"},
        "requests": [
            {"path": "/buckets/public/collections/calendar"},
            {"path": "/buckets/public/collections/calendar/records/r1", "body": {"data": {}}},
            {"path": "/buckets/public/collections/calendar/records/r2", "body": {"data": {}}},
        ],
    }
    responses = t.app.post_json("/batch", batch, headers=alice).json["responses"]
    assert all(r["status"] == 201 for r in responses), responses


def read_lists(app) -> dict:
    """What each reader gets from the list: its ETag and its entries."""
    lists = {}
    for reader, headers in READERS.items():
        response = app.get(LIST_URL, headers=headers)
        lists[reader] = {"etag": response.headers["ETag"], "entries": response.json["data"]}
    return lists


def admin_engine(url: sqlalchemy.URL) -> sqlalchemy.Engine:
    admin_url = url.set(drivername="postgresql+psycopg2", database="postgres")
    return sqlalchemy.create_engine(admin_url, isolation_level="AUTOCOMMIT")


def fresh_database(url: sqlalchemy.URL) -> None:
    drop_database(url)
    admin = admin_engine(url)
    with admin.connect() as conn:
        conn.execute(sqlalchemy.text(f'CREATE DATABASE "{url.database}"'))
    admin.dispose()


def drop_database(url: sqlalchemy.URL) -> None:
    admin = admin_engine(url)
    with admin.connect() as conn:
        conn.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
    admin.dispose()


def dump(url: sqlalchemy.URL, path: Path) -> None:
    """The whole database as plain SQL, without the psql meta-commands
    (``\\restrict``) of recent pg_dump releases: any client can run it."""
    command = ["pg_dump", "--no-owner", "--no-privileges", "--inserts"]
    command += ["-h", url.host, "-p", str(url.port or 5432), "-U", url.username, url.database]
    sql = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    lines = [line for line in sql.splitlines() if not line.startswith("\\")]
    path.write_text("\n".join(lines) + "\n")


def head_commit() -> str:
    return subprocess.run(
        ["git", "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()


def check_checkout() -> None:
    """Stop unless the code run is that of the commit, from this checkout."""
    from_here = Path(kinto_changes.__file__).resolve().is_relative_to(Path.cwd().resolve())
    if not head_commit().startswith(COMMIT) or not from_here:
        sys.exit(f"Run from a checkout of {COMMIT} with its code installed: see the docstring.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    args = parser.parse_args()
    check_checkout()
    url = sqlalchemy.engine.make_url(args.database_url)
    fresh_database(url)
    database = url.render_as_string(hide_password=False)
    settings = base_settings("postgresql")
    # The user ids depend on the secret: tests/test_upgrade.py uses the same.
    settings.update(storage_url=database, permission_url=database, userid_hmac_secret=SECRET)
    app = make_app(settings)
    tenants = Tenants(app)
    fill_before_recording(tenants)
    recorded = read_lists(app)
    fill_after_recording(tenants)
    state = {
        "commit": head_commit(),
        "kinto": app.get("/").json["project_version"],
        "user_ids": tenants.ids,
        "buckets": ["alice-private", "public", "members", "team", "lab", "doomed"],
        "recorded": recorded,
        "at_dump": read_lists(app),
    }
    dump(url, HERE / f"{COMMIT}.sql")
    (HERE / f"{COMMIT}.json").write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")
    drop_database(url)


if __name__ == "__main__":
    main()
