"""A small load generator: keep-alive ``http.client`` connections, one per thread.

It shares the machine's cores with the server it measures, so it does as
little as it can per request: no JSON parsing, one persistent connection per
client thread, latencies taken with ``time.perf_counter``.
"""

import http.client
import json
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict
    body: bytes | None = None


# Builds the request of one client thread: ``(client index, iteration) -> Request``.
RequestFactory = Callable[[int, int], Request]


@dataclass(frozen=True)
class Sample:
    """One measurement: ``count`` operations by ``clients`` threads in ``elapsed`` seconds."""

    count: int
    elapsed: float
    median_ms: float
    clients: int

    @property
    def rps(self) -> float:
        return self.count / self.elapsed


@dataclass(frozen=True)
class Timing:
    duration: float  # Seconds per measurement.
    min_requests: int = 3  # Per client thread: slow endpoints still give a median.


class UnexpectedStatus(RuntimeError):
    pass


class Client:
    """One keep-alive connection to the server."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname, parts.port
        self.prefix = parts.path.rstrip("/")
        self.connection = http.client.HTTPConnection(self.host, self.port, timeout=120)

    def send(self, request: Request) -> http.client.HTTPResponse:
        path = request.path if request.path.startswith(self.prefix) else self.prefix + request.path
        headers = dict(request.headers)
        if request.body is not None:
            headers["Content-Type"] = "application/json"
        self.connection.request(request.method, path, body=request.body, headers=headers)
        response = self.connection.getresponse()
        response.body = response.read()
        return response

    def call(self, request: Request, expect: int, follow_pages: bool = False) -> bytes:
        """Send a request (and its ``Next-Page`` pages), check the status, return the body."""
        response = self.send(request)
        if response.status != expect:
            raise UnexpectedStatus(
                f"{request.method} {request.path}: {response.status} (expected {expect}) "
                f"{response.body[:300]!r}"
            )
        next_page = response.getheader("Next-Page")
        while follow_pages and next_page:
            parts = urlsplit(next_page)
            page = self.send(Request("GET", f"{parts.path}?{parts.query}", request.headers))
            next_page = page.getheader("Next-Page")
        return response.body

    def json(self, method: str, path: str, headers: dict, data=None, expect: int = 200):
        body = None if data is None else json.dumps(data).encode()
        return json.loads(self.call(Request(method, path, headers, body), expect) or b"null")

    def close(self) -> None:
        self.connection.close()


def measure(
    url: str,
    factory: RequestFactory,
    timing: Timing,
    expect: int = 200,
    clients: int = 1,
    follow_pages: bool = False,
) -> Sample:
    """Run ``clients`` threads sending requests for about ``timing.duration``
    seconds, each at least ``timing.min_requests`` requests."""
    connections = [Client(url) for _ in range(clients)]
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(clients + 1)
    deadline = [0.0]

    def work(index: int) -> None:
        connection, own = connections[index], latencies[index]
        barrier.wait()
        try:
            iteration = 0
            while time.perf_counter() < deadline[0] or iteration < timing.min_requests:
                request = factory(index, iteration)
                start = time.perf_counter()
                connection.call(request, expect, follow_pages)
                own.append(time.perf_counter() - start)
                iteration += 1
        except BaseException as error:  # Reported by the main thread.
            errors.append(error)

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    start = time.perf_counter()
    deadline[0] = start + timing.duration
    barrier.wait()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    for connection in connections:
        connection.close()
    if errors:
        raise errors[0]
    everything = [latency for own in latencies for latency in own]
    return Sample(len(everything), elapsed, statistics.median(everything) * 1000, clients)
