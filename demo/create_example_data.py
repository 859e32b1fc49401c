"""Create the example data that README.rst and docs/ use, on a running ``make serve``.

    python demo/create_example_data.py [--port 8888]    # what `make demo` runs

Idempotent: objects already there are left as they are, so a second run
changes nothing. Users are plain Basic Auth pairs (``config/kinto.ini``): any
``user:password`` is a user, and a different password is a different user.
"""

import argparse

import kinto_http
from kinto_http.exceptions import KintoException


ALICE = ("alice", "alice-password")
BOB = ("bob", "bob-password")

# (bucket, permissions, {collection: {record id: record data}}), all created by Alice.
EXAMPLE_DATA = [
    (
        "main",
        {"read": ["system.Everyone"]},
        {
            "cfr": {"welcome": {"title": "Welcome"}, "tips": {"title": "Tips"}},
            "search": {"engine": {"title": "Engine"}},
        },
    ),
    # No permissions given: only its creator, Alice, may read or write it.
    ("private", {}, {"secrets": {"diary": {"title": "Dear diary"}}}),
]


def created(create, **kwargs) -> bool:
    """Create an object unless it exists (``If-None-Match: *``); say whether it was created."""
    try:
        create(safe=True, **kwargs)
    except KintoException as error:
        if error.response is None or error.response.status_code != 412:
            raise
        return False
    return True


def status(was_created: bool) -> str:
    return "created" if was_created else "already there"


def create_example_data(client: kinto_http.Client) -> list[str]:
    """Create the buckets, collections and records of EXAMPLE_DATA; one line per object."""
    lines = []
    for bid, permissions, collections in EXAMPLE_DATA:
        new = created(client.create_bucket, id=bid, permissions=permissions)
        lines.append(f"bucket {bid}: {status(new)}")
        for cid, records in collections.items():
            new = created(client.create_collection, id=cid, bucket=bid)
            lines.append(f"  collection {bid}/{cid}: {status(new)}")
            for rid, data in records.items():
                new = created(client.create_record, id=rid, bucket=bid, collection=cid, data=data)
                lines.append(f"    record {rid}: {status(new)}")
    return lines


def principal(server_url: str, auth: tuple[str, str]) -> str:
    """The user id Kinto gives these credentials (``GET /v1/`` → ``user.id``)."""
    return kinto_http.Client(server_url=server_url, auth=auth).server_info()["user"]["id"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8888)
    port = parser.parse_args().port
    server_url = f"http://127.0.0.1:{port}/v1"
    client = kinto_http.Client(server_url=server_url, auth=ALICE)
    print(f"Example data on {server_url}/, written by alice:")
    for line in create_example_data(client):
        print(f"  {line}")
    print("Users (Basic Auth) and their principals:")
    for user, password in (ALICE, BOB):
        print(f"  {user}:{password}  {principal(server_url, (user, password))}")


if __name__ == "__main__":
    main()
