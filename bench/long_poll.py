"""Benchmark the long poll (``Prefer: wait=N``) against real Kinto servers.

    python bench/long_poll.py      # about 6 minutes

Per backend (memory: one process; PostgreSQL: two processes on one
database, waiters on the first, writes through the second):

- wake latency: from a write's response to each waiter's answer, with 1 and
  with 50 waiters (median and p99 over the rounds);
- idle waiters' cost: a writer's throughput while 50 requests of another
  user wait (the writes do not concern them) ÷ with none, in alternating
  rounds (median of the rounds);
- polls saved: requests a client makes per change, and the mean delay until
  it learns of one, polling every 10 s or long polling with ``wait=25``, while
  a change commits every 15 to 45 s (time scaled down 5 times: 60 s).

Prints a markdown table, writes ``bench/long_poll.json`` and draws
``docs/img/long-poll.png`` (``bench/plots.py``).
"""

import json
import random
import statistics
import sys
import threading
import time
from pathlib import Path

import requests


ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import plots, servers  # noqa: E402


ALICE = servers.AUTH
BOB = servers.READER_AUTH
LIST = "/buckets/monitor/collections/changes/records"
RECORDS = "/buckets/main/collections/cfr/records"
WAITERS = 50
SCALE = 5  # Seconds of the polls-saved scenario are divided by this.


def settings(backend: str, database_url: str) -> dict:
    return {
        **servers.settings_for(backend, "unconfigured", database_url),
        "changes.wait_max_seconds": 60,
        "changes.wait_max_requests": WAITERS + 10,
    }


def etag(url: str, headers: dict) -> int:
    return int(requests.get(f"{url}{LIST}", headers=headers).headers["ETag"].strip('"'))


def write(url: str) -> None:
    requests.post(f"{url}{RECORDS}", json={"data": {}}, headers=ALICE).raise_for_status()


def waiting(url: str, headers: dict, count: int, seconds: int = 30) -> list[dict]:
    """``count`` waiters in threads; each dict gets ``answered_at`` and ``response``."""
    since = etag(url, headers)
    waiters = [{} for _ in range(count)]

    def wait(result: dict) -> None:
        prefer = {**headers, "Prefer": f"wait={seconds}"}
        result["response"] = requests.get(f"{url}{LIST}?_since={since}", headers=prefer)
        result["answered_at"] = time.monotonic()

    for result in waiters:
        result["thread"] = threading.Thread(target=wait, args=(result,), daemon=True)
        result["thread"].start()
    time.sleep(0.5 + count / 50)  # All waiting.
    return waiters


def wake_latencies(waiter_url: str, writer_url: str, count: int, rounds: int) -> list[float]:
    latencies = []
    for _ in range(rounds):
        waiters = waiting(waiter_url, ALICE, count)
        write(writer_url)
        written_at = time.monotonic()
        for waiter in waiters:
            waiter["thread"].join(60)
            assert waiter["response"].json()["data"], "woken with nothing new"
            latencies.append(waiter["answered_at"] - written_at)
    return latencies


def writes_per_second(url: str, seconds: float) -> float:
    count, deadline = 0, time.monotonic() + seconds
    with requests.Session() as session:
        while time.monotonic() < deadline:
            session.post(f"{url}{RECORDS}", json={"data": {}}, headers=ALICE).raise_for_status()
            count += 1
    return count / seconds


def idle_cost(waiter_url: str, writer_url: str, rounds: int) -> list[float]:
    """Writes per second with WAITERS waiting (Bob sees nothing written) ÷ without."""
    ratios = []
    for _ in range(rounds):
        alone = writes_per_second(writer_url, 5)
        waiters = waiting(waiter_url, BOB, WAITERS, seconds=8)
        with_waiters = writes_per_second(writer_url, 5)
        for waiter in waiters:
            waiter["thread"].join(60)
            assert waiter["response"].json()["data"] == [], "Bob was told of Alice's writes"
        ratios.append(with_waiters / alone)
    return ratios


def polls_per_change(url: str, long_poll: bool) -> tuple[float, float]:
    """Requests per change, and the mean delay (s) until the client learns of one:
    a change every 15 to 45 s, polling every 10 s or waiting 25 s (time scaled)."""
    written_at, seen_at, requests_made = {}, {}, 0
    stop = time.monotonic() + 300 / SCALE
    since = etag(url, ALICE)

    def changer() -> None:
        while time.monotonic() + 45 / SCALE < stop:
            time.sleep(random.uniform(15, 45) / SCALE)  # 30 s on average.
            sent = time.monotonic()
            response = requests.post(f"{url}{RECORDS}", json={"data": {}}, headers=ALICE)
            written_at[response.json()["data"]["last_modified"]] = sent

    thread = threading.Thread(target=changer, daemon=True)
    thread.start()
    while time.monotonic() < stop:
        headers = {**ALICE, "Prefer": f"wait={25 // SCALE}"} if long_poll else ALICE
        response = requests.get(f"{url}{LIST}?_since={since}", headers=headers)
        requests_made += 1
        since = int(response.headers["ETag"].strip('"'))
        for entry in response.json()["data"]:
            seen_at.setdefault(entry["last_modified"], time.monotonic())
        if not long_poll:
            time.sleep(10 / SCALE)
    thread.join()
    # From the write's request (its response may come after the poll's answer).
    delays = [(seen_at[ts] - at) * SCALE for ts, at in written_at.items()]
    return requests_made / len(written_at), statistics.mean(delays)


def measure(backend: str, waiter_url: str, writer_url: str) -> dict:
    requests.put(f"{writer_url}/buckets/main", json={}, headers=ALICE)
    requests.put(f"{writer_url}/buckets/main/collections/cfr", json={}, headers=ALICE)
    one = wake_latencies(waiter_url, writer_url, 1, rounds=30)
    many = wake_latencies(waiter_url, writer_url, WAITERS, rounds=6)
    return {
        "backend": backend,
        "wake_ms_1": percentiles(one),
        f"wake_ms_{WAITERS}": percentiles(many),
        "idle_waiters_write_ratio": statistics.median(idle_cost(waiter_url, writer_url, 3)),
        "polling_10s": polls_per_change(waiter_url, long_poll=False),
        "long_poll_25s": polls_per_change(waiter_url, long_poll=True),
    }


def percentiles(seconds: list[float]) -> dict:
    ordered = sorted(seconds)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {"median": round(statistics.median(ordered) * 1000, 1), "p99": round(p99 * 1000, 1)}


def main() -> int:
    random.seed(16)
    results = []
    with servers.KintoServer(settings("memory", None), threads=WAITERS + 12) as server:
        results.append(measure("memory", server.url, server.url))
    database_url = servers.DEFAULT_DATABASE_URL
    servers.recreate_database(database_url)
    options = settings("postgresql", database_url)
    first, second = (
        servers.KintoServer(options, threads=WAITERS + 12),
        servers.KintoServer(options),
    )
    first.migrate()
    with first, second:
        results.append(measure("postgresql (2 processes)", first.url, second.url))
    print(
        "| Backend | wake, 1 waiter (median / p99) | wake, 50 waiters | writes with 50 idle "
        "waiters ÷ none | per change: requests, mean delay (polling 10 s / long poll) |"
    )
    print("|---|---|---|---|---|")
    for r in results:
        one, many = r["wake_ms_1"], r[f"wake_ms_{WAITERS}"]
        (polls, poll_delay), (waits, wait_delay) = r["polling_10s"], r["long_poll_25s"]
        print(
            f"| {r['backend']} | {one['median']} / {one['p99']} ms | {many['median']} / "
            f"{many['p99']} ms | {r['idle_waiters_write_ratio']:.2f} | {polls:.1f}, "
            f"{poll_delay:.1f} s / {waits:.1f}, {wait_delay:.2f} s |"
        )
    (ROOT / "bench" / "long_poll.json").write_text(json.dumps(results, indent=2) + "\n")
    drawn = plots.draw_long_poll(results)
    print(f"Picture: {drawn.relative_to(ROOT)}" if drawn else "Picture: matplotlib not installed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
