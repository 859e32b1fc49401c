"""End to end: a real Kinto server process, read with the ``kinto-http`` client.

A client following the protocol (poll the list with ``_since``, fetch the
changesets of the collections that changed, apply them) must end with exactly
the server's data, deletions included.
"""

import kinto_http
import pytest

from .server import KintoServer, run_kinto
from .support import BACKENDS, base_settings, ensure_postgresql, flush, make_app


# Server processes: `make test` runs these with the newest Kinto only.
pytestmark = pytest.mark.processes


LIST = {"bucket": "monitor", "collection": "changes"}


@pytest.fixture(scope="module", params=BACKENDS)
def server(request):
    settings = base_settings(request.param)
    if request.param == "postgresql":
        ensure_postgresql()
        flush(make_app(settings))
    server = KintoServer(settings)
    if request.param == "postgresql":
        migrate = run_kinto("migrate", "--ini", str(server.ini))
        assert migrate.returncode == 0, migrate.stderr
    with server:  # Stopped when the tests end, failed or not.
        yield server
    if request.param == "postgresql":
        flush(make_app(settings))


@pytest.fixture
def client(server):
    return kinto_http.Client(server_url=server.url, auth=("alice", "secret"))


class SyncingClient:
    """The polling protocol, as a client such as Firefox follows it."""

    def __init__(self, client: kinto_http.Client) -> None:
        self.client = client
        self.etag: int | None = None
        self.timestamps: dict[tuple[str, str], int] = {}
        self.records: dict[tuple[str, str], dict[str, dict]] = {}

    def poll(self) -> int:
        """Apply what changed since the last poll; return the changesets fetched."""
        params = {} if self.etag is None else {"_since": self.etag}
        endpoint = self.client.get_endpoint("records", **LIST)
        body, headers = self.client.session.request("get", endpoint, params=params)
        self.etag = int(headers["ETag"].strip('"'))
        fetched = 0
        for entry in body["data"]:
            key = (entry["bucket"], entry["collection"])
            if entry.get("deleted"):
                self.records.pop(key, None)
                self.timestamps.pop(key, None)
            elif self.timestamps.get(key) != entry["last_modified"]:
                self.sync(key, entry["last_modified"])
                fetched += 1
        return fetched

    def sync(self, key: tuple[str, str], expected: int) -> None:
        params = {"_expected": expected}
        if key in self.timestamps:
            params["_since"] = self.timestamps[key]
        bid, cid = key
        changeset = self.client.get_changeset(bucket=bid, collection=cid, **params)
        records = self.records.setdefault(key, {})
        for change in changeset["changes"]:
            if change.get("deleted"):
                records.pop(change["id"], None)
            else:
                records[change["id"]] = change
        self.timestamps[key] = changeset["timestamp"]


def server_data(client: kinto_http.Client) -> dict:
    data = {}
    for bucket in client.get_buckets():
        for collection in client.get_collections(bucket=bucket["id"]):
            key = (bucket["id"], collection["id"])
            records = client.get_records(bucket=key[0], collection=key[1])
            data[key] = {record["id"]: record for record in records}
    return data


def records_etag(client: kinto_http.Client, bid: str, cid: str) -> int:
    endpoint = client.get_endpoint("records", bucket=bid, collection=cid)
    _, headers = client.session.request("head", endpoint)
    return int(headers["ETag"].strip('"'))


def fill(client: kinto_http.Client, bid: str, cids: list[str], records: int) -> None:
    client.create_bucket(id=bid, if_not_exists=True)
    for cid in cids:
        client.create_collection(id=cid, bucket=bid, if_not_exists=True)
        with client.batch(bucket=bid, collection=cid) as batch:
            for i in range(records):
                batch.create_record(data={"i": i, "name": f"{cid}-{i}"})


def test_kinto_http_reads_the_list_and_the_changesets(client):
    fill(client, "reads", ["a", "b"], records=3)

    entries = {(e["bucket"], e["collection"]): e for e in client.get_records(**LIST)}
    for cid in ("a", "b"):
        assert entries[("reads", cid)]["last_modified"] == records_etag(client, "reads", cid)
        for bust_cache in (False, True):
            changeset = client.get_changeset(bucket="reads", collection=cid, bust_cache=bust_cache)
            assert changeset["timestamp"] == records_etag(client, "reads", cid)
            assert changeset["changes"] == client.get_records(bucket="reads", collection=cid)
            assert changeset["metadata"]["id"] == cid

    changeset = client.get_changeset(**LIST)
    list_endpoint = client.get_endpoint("records", **LIST)
    _, headers = client.session.request("head", list_endpoint)
    assert changeset["timestamp"] == int(headers["ETag"].strip('"'))
    assert changeset["changes"] == client.get_records(**LIST)
    assert changeset["metadata"] == {}


def test_a_protocol_client_ends_with_the_server_data(client):
    fill(client, "main", ["cfr", "search", "tips"], records=4)
    fill(client, "security", ["certs"], records=5)
    syncing = SyncingClient(client)
    assert syncing.poll() >= 4
    assert syncing.records == server_data(client)

    # Updates, a single deletion, a plural deletion, a new collection, and a
    # deleted collection.
    cfr = client.get_records(bucket="main", collection="cfr")
    client.patch_record(id=cfr[0]["id"], data={"name": "renamed"}, bucket="main", collection="cfr")
    client.delete_record(id=cfr[1]["id"], bucket="main", collection="cfr")
    client.delete_records(bucket="main", collection="tips")
    client.delete_collection(id="search", bucket="main")
    fill(client, "main", ["new"], records=2)
    fill(client, "security", ["certs"], records=1)
    assert syncing.poll() == 4  # cfr, tips, new, certs
    assert syncing.records == server_data(client)
    assert ("main", "search") not in syncing.records
    assert syncing.records[("main", "tips")] == {}

    etag = syncing.etag
    assert syncing.poll() == 0
    assert syncing.etag == etag

    client.delete_bucket(id="security")
    assert syncing.poll() == 0
    assert ("security", "certs") not in syncing.records
    assert syncing.records == server_data(client)
