"""Querystring schemas: every query value is validated once, here."""

import re

import colander
from kinto.core.resource.schema import PluralGetQuerySchema


# 2100-01-01T00:00:00Z: no timestamp of ours is later.
MAX_TIMESTAMP = 4_102_444_800_000
MAX_INTEGER = 2**63 - 1
# What most servers and CDNs accept in a request line.
MAX_QUERY_STRING_BYTES = 8192

DIGITS = re.compile(r'^(?:(\d+)|"(\d+)")$')


class StrictInteger(colander.SchemaNode):
    """A non-negative integer: digits only (``1.5``, ``1e3``, ``-1`` are refused).

    With ``quoted=True``, the digits may be enclosed in double quotes, as
    clients send ETags back (``_since="1700000000123"``).
    """

    schema_type = colander.Integer
    missing = colander.drop
    quoted = False

    def deserialize(self, cstruct=colander.null):
        if isinstance(cstruct, str):
            match = DIGITS.match(cstruct)
            if not match or (match.group(2) and not self.quoted):
                raise colander.Invalid(self, f"{cstruct!r} is not a non-negative integer")
            cstruct = match.group(1) or match.group(2)
        return super().deserialize(cstruct)


def timestamp_node() -> StrictInteger:
    return StrictInteger(
        quoted=True,
        validator=colander.Range(0, MAX_TIMESTAMP, max_err="${val} is after year 2100"),
    )


def limit_node(minimum: int = 0) -> StrictInteger:
    return StrictInteger(validator=colander.Range(minimum, MAX_INTEGER))


class ListQuerySchema(PluralGetQuerySchema):
    """Kinto's plural querystring, with strict integers and timestamps."""

    _since = timestamp_node()
    _before = timestamp_node()
    _to = timestamp_node()
    _limit = limit_node()
    last_modified = timestamp_node()


def query_string_size_validator(request, **kwargs) -> None:
    """Refuse oversized query strings (Kinto's error format, 400)."""
    size = len(request.query_string.encode())
    if size > MAX_QUERY_STRING_BYTES:
        request.errors.add(
            "querystring",
            "length",
            f"The query string is {size} bytes long; at most {MAX_QUERY_STRING_BYTES}.",
        )
