"""Querystring schemas: every query value is validated once, here."""

import re

import colander
from kinto.core.resource.schema import PluralGetQuerySchema
from kinto.core.storage import Sort
from kinto.core.utils import decode64, json


# 2100-12-31T23:59:59.999Z: later timestamps are absurd.
MAX_TIMESTAMP = 4_133_980_799_999
# PostgreSQL's BIGINT.
MAX_INTEGER = 2**63 - 1
DIGITS = re.compile(r"[0-9]{1,19}")
# What most servers and CDNs accept in a request line.
MAX_QUERY_STRING_BYTES = 8192


class QueryParameter(colander.SchemaNode):
    """A query string parameter, given at most once."""

    missing = colander.drop

    @staticmethod
    def schema_type() -> colander.String:
        return colander.String(allow_empty=True)

    def deserialize(self, cstruct=colander.null):
        if isinstance(cstruct, list):
            raise colander.Invalid(self, "Must be given only once")
        return super().deserialize(cstruct)


class Timestamp(QueryParameter):
    """Milliseconds since the epoch, digits only, optionally between double quotes
    (as clients send ETags back: ``_since="1700000000123"``)."""

    def deserialize(self, cstruct=colander.null):
        value = super().deserialize(cstruct)
        unquoted = value[1:-1] if re.fullmatch(r'".*"', value) else value
        if not DIGITS.fullmatch(unquoted) or int(unquoted) > MAX_TIMESTAMP:
            raise colander.Invalid(
                self, f'Must be an integer from 0 to {MAX_TIMESTAMP}, optionally in "quotes"'
            )
        return int(unquoted)


class Limit(QueryParameter):
    """An integer from ``minimum`` on, digits only (``1e3``, ``+1``, ``-1`` are refused)."""

    schema_type = colander.Integer

    def __init__(self, minimum: int = 1, **kwargs) -> None:
        super().__init__(validator=colander.Range(min=minimum, max=MAX_INTEGER), **kwargs)

    def deserialize(self, cstruct=colander.null):
        # ``int()`` would also take signs, spaces and non-ASCII digits.
        if isinstance(cstruct, str) and not DIGITS.fullmatch(cstruct):
            raise colander.Invalid(self, f"Must be an integer from {self.validator.min} on")
        return super().deserialize(cstruct)


class ListQuerySchema(PluralGetQuerySchema):
    """Kinto's plural querystring for the list, with strict integers and timestamps."""

    _since = Timestamp()
    _before = Timestamp()
    _to = Timestamp()
    _limit = Limit(minimum=0)
    last_modified = Timestamp()


class ChangesetQuerystring(colander.MappingSchema):
    """Unknown parameters starting with ``_`` are ignored (as Kinto does); others are 400."""

    _expected = QueryParameter(
        missing=colander.required, description="Cache-busting value (any string)."
    )
    _since = Timestamp(description="Only the changes after this timestamp, with tombstones.")
    _limit = Limit(description="At most this number of changes (the newest).")

    @staticmethod
    def schema_type() -> colander.Mapping:
        return colander.Mapping(unknown="preserve")

    def deserialize(self, cstruct=colander.null):
        values = super().deserialize(cstruct)
        known = {child.name for child in self.children}
        unknown = sorted(name for name in values if name not in known and name[:1] != "_")
        if unknown:
            error = colander.Invalid(self)
            node = colander.SchemaNode(colander.String(), name=unknown[0])
            error.add(colander.Invalid(node, f"Unknown filter field '{unknown[0]}'"))
            raise error
        return {name: value for name, value in values.items() if name in known}


class ListChangesetQuerystring(ChangesetQuerystring):
    bucket = QueryParameter(description="Only the entries of this bucket.")
    collection = QueryParameter(description="Only the entries of this collection.")


class ChangesetRequest(colander.MappingSchema):
    querystring = ChangesetQuerystring()


class ListChangesetRequest(colander.MappingSchema):
    querystring = ListChangesetQuerystring()


def query_string_validator(request, **kwargs) -> None:
    """Cornice validator: refuse oversized query strings, and NUL characters
    (PostgreSQL cannot store nor compare them) in any name or value: 400,
    in Kinto's format, as Kinto answers a NUL in the filters of its lists."""
    size = len(request.query_string.encode())
    if size > MAX_QUERY_STRING_BYTES:
        request.errors.add(
            "querystring",
            "length",
            f"The query string is {size} bytes long; at most {MAX_QUERY_STRING_BYTES}.",
        )
        return
    for name, value in request.GET.items():
        if "\x00" in name or "\x00" in value:
            request.errors.add("querystring", name, "Invalid character 0x00")
            return


def valid_value(field: str, value, many: bool = False) -> bool:
    """Whether a filter value (a list with ``many``: ``in_``, ``exclude_``) is
    one the storage can compare: no NUL, integer timestamps, string ids."""
    if field in ("id", "last_modified") and isinstance(value, list) != many:
        return False
    values = value if many else [value]
    if field == "last_modified":
        return all(type(v) is int and 0 <= v <= MAX_TIMESTAMP for v in values)
    if field == "id":
        return all(isinstance(v, str) and "\x00" not in v for v in values)
    return not has_nul(value)


def has_nul(value) -> bool:
    """Whether a JSON value holds a NUL character, which PostgreSQL refuses."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, list):
        return any(map(has_nul, value))
    if isinstance(value, dict):
        return any(has_nul(k) or has_nul(v) for k, v in value.items())
    return False


def valid_token(token: str, sorting: list[Sort]) -> bool:
    """Whether a ``_token`` has the shape Kinto gives its tokens, with values
    the storage can compare."""
    try:
        info = json.loads(decode64(token))
    except (ValueError, TypeError):
        return False
    if not isinstance(info, dict) or not isinstance(info.get("last_object"), dict):
        return False
    offset, nonce = info.get("offset"), info.get("nonce")
    if type(offset) is not int or offset < 0 or not isinstance(nonce, str):
        return False
    last = info["last_object"]
    return all(
        valid_value(sort.field, last[sort.field]) and not isinstance(last[sort.field], dict | list)
        for sort in sorting
        if sort.field in last
    )
