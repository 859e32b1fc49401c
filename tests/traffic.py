"""Writers and a cursor-following poller, over HTTP, for tests against real servers.

Writers post records, send ``/batch`` requests (several records into one
collection, then one into another) and delete records. The poller follows the
list the way a client should: ``_since=<ETag of its previous poll>``, every
page through ``Next-Page``, keeping the ETag of the first page. At the end,
:func:`consistency` compares what the poller saw with the records timestamps.
"""

import contextlib
import random
import threading
import time
from collections import Counter
from collections.abc import Callable

import requests

from .support import ALICE, LIST_URL, base_settings, ensure_postgresql, flush, make_app


# Kinto answers 409 when concurrent writes into one collection collide on
# PostgreSQL's unique timestamp index: clients retry.
CONFLICT_RETRIES = 8
PAGE_SIZE = 10


class Tally:
    """Thread-safe counts of what happened during a run."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Counter = Counter()

    def add(self, key: str, count: int = 1) -> None:
        with self._lock:
            self.counts[key] += count

    def status(self, code: int, prefix: str = "") -> None:
        self.add(f"{prefix}{code}")
        if code >= 500:
            self.add("5xx")

    def __getitem__(self, key: str) -> int:
        return self.counts[key]


def collection_names(count: int, buckets: int = 3) -> list[tuple[str, str]]:
    return [(f"b{i % buckets}", f"c{i}") for i in range(count)]


def server_settings(backend: str, collections: list[tuple[str, str]]) -> dict:
    """Kinto settings monitoring the buckets of these collections."""
    settings = base_settings(backend)
    settings["changes.resources"] = " ".join(sorted({f"/buckets/{b}" for b, _ in collections}))
    return settings


@contextlib.contextmanager
def empty_database(settings: dict):
    """The PostgreSQL schema initialised, nothing stored, and nothing left behind."""
    ensure_postgresql()
    app = make_app(settings)
    flush(app)
    try:
        yield
    finally:
        flush(app)


def create_collections(base_url: str, collections: list[tuple[str, str]]) -> None:
    with requests.Session() as session:
        for bid in sorted({bid for bid, _ in collections}):
            session.put(f"{base_url}/buckets/{bid}", json={}, headers=ALICE).raise_for_status()
        puts = [
            {"method": "PUT", "path": f"/buckets/{bid}/collections/{cid}", "body": {"data": {}}}
            for bid, cid in collections
        ]
        for start in range(0, len(puts), 25):
            body = {"requests": puts[start : start + 25]}
            response = session.post(f"{base_url}/batch", json=body, headers=ALICE)
            response.raise_for_status()
            assert {r["status"] for r in response.json()["responses"]} == {201}


class Writer(threading.Thread):
    """A bounded stream of writes into random collections."""

    def __init__(
        self,
        base_url: Callable[[], str],
        collections: list[tuple[str, str]],
        tally: Tally,
        operations: int,
        seed: int,
        stop: threading.Event,
    ) -> None:
        super().__init__(daemon=True)
        self.base_url = base_url
        self.collections = collections
        self.tally = tally
        self.operations = operations
        self.random = random.Random(seed)
        self.stop = stop
        self.session = requests.Session()
        self.session.headers.update(ALICE)
        self.created: list[str] = []

    def run(self) -> None:
        for _ in range(self.operations):
            if self.stop.is_set():
                return
            try:
                self.operate()
            except requests.ConnectionError:
                self.tally.add("connection errors")
                return

    def operate(self) -> None:
        dice = self.random.random()
        if dice < 0.2 and self.created:
            self.tally.add("DELETE")
            self.send("DELETE", self.created.pop(self.random.randrange(len(self.created))))
        elif dice < 0.45:
            self.tally.add("/batch")
            self.batch()
        else:
            self.tally.add("POST")
            self.post(self.random.choice(self.collections))

    def post(self, collection: tuple[str, str]) -> None:
        path = records_path(*collection)
        response = self.send("POST", path, {"data": {"n": self.random.random()}})
        if response.status_code == 201:
            self.created.append(f"{path}/{response.json()['data']['id']}")
            self.tally.add("records written")

    def batch(self) -> None:
        first, second = self.random.sample(self.collections, 2)
        paths = [records_path(*first)] * self.random.randint(3, 6) + [records_path(*second)]
        body = {"requests": [{"method": "POST", "path": p, "body": {"data": {}}} for p in paths]}
        response = self.send("POST", "/batch", body)
        if response.status_code != 200:
            return
        for sub in response.json()["responses"]:
            self.tally.status(sub["status"], prefix="/batch sub-request ")
            if sub["status"] == 201:
                self.tally.add("records written")

    def send(self, method: str, path: str, body: dict | None = None) -> requests.Response:
        for _ in range(CONFLICT_RETRIES):
            response = self.session.request(method, f"{self.base_url()}{path}", json=body)
            self.tally.status(response.status_code)
            if response.status_code != 409:
                break
            time.sleep(self.random.uniform(0.005, 0.05))
        return response


def records_path(bid: str, cid: str) -> str:
    return f"/buckets/{bid}/collections/{cid}/records"


class Poller(threading.Thread):
    """Follow the list's cursor until stopped, like a client should."""

    def __init__(
        self, base_urls: Callable[[], list[str]], tally: Tally, stop: threading.Event
    ) -> None:
        super().__init__(daemon=True)
        self.base_urls = base_urls
        self.tally = tally
        self.stop = stop
        self.session = requests.Session()
        self.since: str | None = None
        # The last entry seen for each (bucket, collection).
        self.seen: dict[tuple[str, str], dict] = {}

    def run(self) -> None:
        while not self.stop.is_set():
            self.poll()
            time.sleep(0.01)

    def poll(self) -> bool:
        """One poll, every page of it, on each server in turn; False if it failed."""
        urls = self.base_urls()
        base = urls[self.tally["polls"] % len(urls)]
        query = f"_limit={PAGE_SIZE}" + (f"&_since={self.since}" if self.since else "")
        try:
            response = self.get(f"{base}{LIST_URL}?{query}")
            etag, entries = response.headers["ETag"].strip('"'), response.json()["data"]
            while "Next-Page" in response.headers:
                response = self.get(response.headers["Next-Page"])
                entries.extend(response.json()["data"])
        except (requests.ConnectionError, requests.HTTPError):
            self.tally.add("failed polls")
            return False
        for entry in entries:
            self.seen[(entry["bucket"], entry["collection"])] = entry
        self.since = etag
        self.tally.add("polls")
        self.tally.add("entries received", len(entries))
        return True

    def get(self, url: str) -> requests.Response:
        response = self.session.get(url)
        self.tally.status(response.status_code, prefix="poll ")
        self.tally.add("pages")
        response.raise_for_status()
        return response


def consistency(base_url: str, poller: Poller, collections: list[tuple[str, str]]) -> dict:
    """What the poller missed, and which entries differ from their records timestamp."""
    with requests.Session() as session:
        etags = {}
        for bid, cid in collections:
            response = session.get(f"{base_url}{records_path(bid, cid)}?_limit=1", headers=ALICE)
            response.raise_for_status()
            etags[(bid, cid)] = int(response.headers["ETag"].strip('"'))
        listed, url = {}, f"{base_url}{LIST_URL}?_limit={PAGE_SIZE}"
        while url:
            response = session.get(url)
            response.raise_for_status()
            listed.update({(e["bucket"], e["collection"]): e for e in response.json()["data"]})
            url = response.headers.get("Next-Page")
    missed = [c for c in collections if poller.seen.get(c, {}).get("last_modified") != etags[c]]
    differing = [c for c in collections if listed.get(c, {}).get("last_modified") != etags[c]]
    return {"missed changes": len(missed), "entries differing": len(differing)}


def summary(label: str, tally: Tally, result: dict, seconds: float) -> str:
    """One line of counts, for the README."""
    codes = Counter()
    for key, count in tally.counts.items():
        if key.split()[-1].isdigit():
            codes[int(key.split()[-1])] += count
    other_4xx = sum(n for code, n in codes.items() if 400 <= code < 500 and code != 409)
    server_errors = sum(n for code, n in codes.items() if code >= 500)
    extra = "".join(
        f", {key}: {tally[key]}"
        for key in ("connection errors", "failed polls", "transactions in flight at the kill")
        if key in tally.counts
    )
    return (
        f"{label} ({seconds:.1f} s): {tally['POST'] + tally['/batch'] + tally['DELETE']} "
        f"write requests ({tally['POST']} POST, {tally['/batch']} /batch, "
        f"{tally['DELETE']} DELETE), {tally['records written']} records written, "
        f"Kinto 409 conflicts: {codes[409]}, other 4xx: {other_4xx}, 5xx: {server_errors}{extra}; "
        f"poller: {tally['polls']} polls, {tally['pages']} pages, "
        f"{tally['entries received']} entries; missed changes: {result['missed changes']}, "
        f"entries differing: {result['entries differing']}"
    )
