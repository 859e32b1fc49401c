"""What is measured: one function per metric, run round after round.

Each metric is a group of measurements taken back to back on the same
machine state (e.g. the list and the reference ``/records``); the order
inside a group alternates from one round to the next, so that a slow moment
of the machine does not always hurt the same variant.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass

from bench.loadgen import Request, Sample, measure
from bench.servers import AUTH, BUCKET, LIST_PATH, REF_PATH, Variant, collection_id


@dataclass(frozen=True)
class Timing:
    duration: float  # Seconds per measurement.
    min_requests: int = 3


@dataclass(frozen=True)
class Pair:
    """The plugin's server of a backend, and the same server without the plugin."""

    plugin: Variant
    plain: Variant


# A measurement: ``(pair, timing) -> Sample``.
Measurement = Callable[[Pair, Timing], Sample]


def get(path: str, headers: dict | None = None) -> Callable[[int, int], Request]:
    request = Request("GET", path, headers or {})
    return lambda index, iteration: request


def post_record(cid: str) -> Request:
    body = json.dumps({"data": {"bucket": BUCKET, "collection": cid, "host": ""}}).encode()
    return Request("POST", f"/buckets/{BUCKET}/collections/{cid}/records", AUTH, body)


def write_into(index: int, iteration: int) -> Request:
    """Client ``index`` writes into its own monitored collection (``c00001``...)."""
    return post_record(collection_id(1 + index))


def full_list(pair: Pair, timing: Timing) -> Sample:
    return _get(pair.plugin, f"{LIST_PATH}/records", timing, follow_pages=True)


def full_reference(pair: Pair, timing: Timing) -> Sample:
    return _get(pair.plugin, f"{REF_PATH}/records", timing, follow_pages=True)


def full_reference_without_plugin(pair: Pair, timing: Timing) -> Sample:
    """The same on the server without the plugin (which then serves the same reads)."""
    return _get(pair.plain, f"{REF_PATH}/records", timing, follow_pages=True)


def since(pair: Pair, timing: Timing) -> Sample:
    """``_since=<ETag>`` after one collection changed: one entry in each answer."""
    etag = list_etag(pair.plugin)
    client = pair.plugin.client()
    client.call(post_record(collection_id(0)), expect=201)
    path = f"{LIST_PATH}/records?_since={etag}"
    answer = json.loads(client.call(Request("GET", path, {}), expect=200))
    client.close()
    if len(answer["data"]) != 1:
        raise AssertionError(f"_since={etag} gave {len(answer['data'])} entries, not 1")
    return _get(pair.plugin, path, timing)


def not_modified(pair: Pair, timing: Timing) -> Sample:
    headers = {"If-None-Match": f'"{list_etag(pair.plugin)}"'}
    return _get(pair.plugin, f"{LIST_PATH}/records", timing, headers=headers, expect=304)


def changeset_list(pair: Pair, timing: Timing) -> Sample:
    return _get(pair.plugin, f"{LIST_PATH}/changeset?_expected=0", timing)


def changeset_collection(pair: Pair, timing: Timing) -> Sample:
    return _get(pair.plugin, f"{REF_PATH}/changeset?_expected=0", timing)


def writes(clients: int) -> tuple[Measurement, Measurement]:
    def with_plugin(pair: Pair, timing: Timing) -> Sample:
        return _write(pair.plugin, clients, timing)

    def without_plugin(pair: Pair, timing: Timing) -> Sample:
        return _write(pair.plain, clients, timing)

    return with_plugin, without_plugin


def _write(variant: Variant, clients: int, timing: Timing) -> Sample:
    return measure(
        variant.url,
        write_into,
        expect=201,
        clients=clients,
        duration=timing.duration,
        min_requests=timing.min_requests,
    )


def _get(
    variant: Variant,
    path: str,
    timing: Timing,
    headers: dict | None = None,
    expect: int = 200,
    follow_pages: bool = False,
) -> Sample:
    return measure(
        variant.url,
        get(path, headers),
        expect=expect,
        duration=timing.duration,
        min_requests=timing.min_requests,
        follow_pages=follow_pages,
    )


def list_etag(variant: Variant) -> int:
    client = variant.client()
    response = client.send(Request("GET", f"{LIST_PATH}/records?_limit=1", {}))
    client.close()
    return int(response.getheader("ETag").strip('"'))


def changeset_served(variant: Variant) -> bool:
    """Whether this checkout serves the changeset endpoint (``n/a`` otherwise)."""
    client = variant.client()
    status = client.send(Request("GET", f"{LIST_PATH}/changeset?_expected=0", {})).status
    client.close()
    if status not in (200, 404):
        raise RuntimeError(f"changeset endpoint answered {status}")
    return status == 200


def check_contents(pair: Pair, size: int) -> None:
    """The list has one entry per collection, the reference as many records."""
    client = pair.plugin.client()
    for path in (f"{LIST_PATH}/records", f"{REF_PATH}/records"):
        response = client.send(Request("GET", path, {}))
        count = len(json.loads(response.body)["data"])
        if response.status != 200 or count != size or response.getheader("Next-Page"):
            raise AssertionError(f"{pair.plugin.name} {path}: {count} objects, not {size}")
    client.close()


# Metric key -> the measurements taken together, by variant label.
GROUPS: dict[str, dict[str, Measurement]] = {
    "full": {
        "list": full_list,
        "reference": full_reference,
        "reference, no plugin": full_reference_without_plugin,
    },
    "since": {"list": since},
    "notmod": {"list": not_modified},
    "changeset": {"list": changeset_list, "collection": changeset_collection},
    "write-1": dict(zip(("plugin", "no plugin"), writes(1), strict=True)),
    "write-8": dict(zip(("plugin", "no plugin"), writes(8), strict=True)),
}
