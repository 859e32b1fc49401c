"""What is measured: one function per metric, run round after round.

Each metric is a group of measurements taken back to back on the same
machine state (e.g. the list and the reference ``/records``); the order
inside a group alternates from one round to the next, so that a slow moment
of the machine does not always hurt the same variant.
"""

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass

from bench.loadgen import Request, Sample, Timing, measure
from bench.servers import (
    AUTH,
    BUCKET,
    LIST_PATH,
    READABLE,
    READER_AUTH,
    REF_PATH,
    VICTIM_AUTH,
    VICTIM_PATH,
    Variant,
    collection_id,
)


@dataclass(frozen=True)
class Trio:
    """The servers of a backend: the plugin, the same Kinto without it, the
    plugin with nothing configured (started for the ``private`` metrics only)
    and the plugin holding the smallest N (for ``since`` and ``notmod``).
    """

    plugin: Variant
    plain: Variant
    unconfigured: Variant | None = None
    small: Variant | None = None


# A measurement: ``(trio, timing) -> Sample``.
Measurement = Callable[[Trio, Timing], Sample]


def get(path: str, headers: dict | None = None) -> Callable[[int, int], Request]:
    request = Request("GET", path, headers or {})
    return lambda index, iteration: request


def post_record(cid: str) -> Request:
    body = json.dumps({"data": {"bucket": BUCKET, "collection": cid, "host": ""}}).encode()
    return Request("POST", f"/buckets/{BUCKET}/collections/{cid}/records", AUTH, body)


def write_into(index: int, iteration: int) -> Request:
    """Client ``index`` writes into its own monitored collection (``c00001``...)."""
    return post_record(collection_id(1 + index))


def full_list(trio: Trio, timing: Timing) -> Sample:
    return measure(trio.plugin.url, get(f"{LIST_PATH}/records"), timing, follow_pages=True)


def full_reference(trio: Trio, timing: Timing) -> Sample:
    return measure(trio.plugin.url, get(f"{REF_PATH}/records"), timing, follow_pages=True)


def full_reference_without_plugin(trio: Trio, timing: Timing) -> Sample:
    """The same on the server without the plugin (which then serves the same reads)."""
    return measure(trio.plain.url, get(f"{REF_PATH}/records"), timing, follow_pages=True)


def since(trio: Trio, timing: Timing) -> Sample:
    """``_since=<ETag>`` after one collection changed: one entry in each answer."""
    return _since_one_change(trio.plugin, {}, timing)


def since_smallest(trio: Trio, timing: Timing) -> Sample:
    return _since_one_change(trio.small, {}, timing)


def reader_list(trio: Trio, timing: Timing) -> Sample:
    """The reader's list with nothing configured: ``READABLE`` entries out of N.

    Compared with the whole configured list (``full_list``): what filtering
    by readers costs, or saves, when the reader may read few collections.
    """
    path = f"{LIST_PATH}/records"
    return measure(trio.unconfigured.url, get(path, READER_AUTH), timing, follow_pages=True)


def reader_since(trio: Trio, timing: Timing) -> Sample:
    """The reader's ``_since=<ETag>`` after one collection they may read changed."""
    return _since_one_change(trio.unconfigured, READER_AUTH, timing)


def _since_one_change(variant: Variant, headers: dict, timing: Timing) -> Sample:
    """Change ``c00000`` (readable by the reader), then poll ``_since`` the ETag before."""
    etag = list_etag(variant, headers)
    client = variant.client()
    client.call(post_record(collection_id(0)), expect=201)
    path = f"{LIST_PATH}/records?_since={etag}"
    answer = json.loads(client.call(Request("GET", path, headers), expect=200))
    client.close()
    if len(answer["data"]) != 1:
        raise AssertionError(f"_since={etag} gave {len(answer['data'])} entries, not 1")
    return measure(variant.url, get(path, headers), timing)


def not_modified(trio: Trio, timing: Timing) -> Sample:
    return _not_modified(trio.plugin, timing)


def not_modified_smallest(trio: Trio, timing: Timing) -> Sample:
    return _not_modified(trio.small, timing)


def _not_modified(variant: Variant, timing: Timing) -> Sample:
    headers = {"If-None-Match": f'"{list_etag(variant)}"'}
    return measure(variant.url, get(f"{LIST_PATH}/records", headers), timing, expect=304)


def changeset_list(trio: Trio, timing: Timing) -> Sample:
    return measure(trio.plugin.url, get(f"{LIST_PATH}/changeset?_expected=0"), timing)


def changeset_collection(trio: Trio, timing: Timing) -> Sample:
    return measure(trio.plugin.url, get(f"{REF_PATH}/changeset?_expected=0"), timing)


def writes(clients: int) -> dict[str, Measurement]:
    """Record writes on the configured plugin, on the plugin with nothing
    configured (its default: readers tracked) and without the plugin."""

    def on(kind: str) -> Measurement:
        def write(trio: Trio, timing: Timing) -> Sample:
            variant = {"plugin": trio.plugin, "default": trio.unconfigured}.get(kind, trio.plain)
            return measure(variant.url, write_into, timing, expect=201, clients=clients)

        return write

    return {kind: on(kind) for kind in ("plugin", "default", "no plugin")}


def noisy_with_plugin(trio: Trio, timing: Timing) -> Sample:
    """On the plugin with nothing configured: access changes are tracked."""
    return _noisy_neighbour(trio.unconfigured, timing)


def noisy_without_plugin(trio: Trio, timing: Timing) -> Sample:
    return _noisy_neighbour(trio.plain, timing)


def _noisy_neighbour(variant: Variant, timing: Timing) -> Sample:
    """The victim's record writes into their own bucket while ``bench`` toggles,
    as fast as it can, the read permission of the bucket of its N collections
    (SPEC §4: the toggles must not stall the victim, whatever N)."""
    stop = threading.Event()
    toggles = []

    def toggle() -> None:
        client = variant.client()
        # Ends as it began, not readable: ``private`` counts what readers see.
        while not stop.is_set() or len(toggles) % 2:
            read = [] if len(toggles) % 2 else ["system.Everyone"]
            client.json("PATCH", f"/buckets/{BUCKET}", AUTH, {"permissions": {"read": read}})
            toggles.append(read)
        client.close()

    thread = threading.Thread(target=toggle, daemon=True)
    thread.start()
    try:
        request = Request("POST", VICTIM_PATH, VICTIM_AUTH, b"{}")
        return measure(variant.url, lambda index, iteration: request, timing, expect=201)
    finally:
        stop.set()
        thread.join()
        if len(toggles) < 2:
            raise RuntimeError(f"{variant.name}: the neighbour did not toggle")


def list_etag(variant: Variant, headers: dict | None = None) -> int:
    client = variant.client()
    response = client.send(Request("GET", f"{LIST_PATH}/records?_limit=1", headers or {}))
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


def check_contents(trio: Trio, size: int) -> None:
    """The list has one entry per collection, the reference as many records."""
    for path in (f"{LIST_PATH}/records", f"{REF_PATH}/records"):
        _check_count(trio.plugin, path, "anonymous", size)


def check_private(trio: Trio, size: int) -> None:
    """With nothing configured, each sees what they may read: the reader
    ``READABLE`` collections, anonymous none, their owner all of them.
    """
    path = f"{LIST_PATH}/records"
    expected = {"reader": min(size, READABLE), "anonymous": 0, "bench": size}
    for who, count in expected.items():
        _check_count(trio.unconfigured, path, who, count)


def _check_count(variant: Variant, path: str, who: str, expected: int) -> None:
    headers = {"reader": READER_AUTH, "anonymous": {}, "bench": AUTH}[who]
    client = variant.client()
    response = client.send(Request("GET", path, headers))
    client.close()
    count = len(json.loads(response.body)["data"])
    if response.status != 200 or count != expected or response.getheader("Next-Page"):
        raise AssertionError(f"{variant.name} {path} ({who}): {count} objects, not {expected}")


# Metric key -> the measurements taken together, by variant label.
GROUPS: dict[str, dict[str, Measurement]] = {
    "full": {
        "list": full_list,
        "reference": full_reference,
        "reference, no plugin": full_reference_without_plugin,
    },
    "since": {"list": since, "list, smallest N": since_smallest},
    "notmod": {"list": not_modified, "list, smallest N": not_modified_smallest},
    "changeset": {"list": changeset_list, "collection": changeset_collection},
    "write-1": writes(1),
    "write-8": writes(8),
    # One tenant's writes while another toggles access: latency, plugin ÷ no plugin.
    "noisy": {"plugin": noisy_with_plugin, "no plugin": noisy_without_plugin},
    # Reader on ``unconfigured`` against anonymous on the configured list.
    "private": {
        "full, reader": reader_list,
        "full, configured": full_list,
        "since, reader": reader_since,
        "since, configured": since,
    },
}
