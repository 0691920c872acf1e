"""marshmallow base for every schema at an edge (HTTP, RPC, events, gRPC): unknown fields
refused, times timezone-aware and normalised to UTC, failures raised as our ValidationError."""
from datetime import UTC, datetime

from marshmallow import EXCLUDE, RAISE, fields, validate
from marshmallow import Schema as _Schema
from marshmallow import ValidationError as MarshmallowError

from common.errors import ValidationError


class Schema(_Schema):
    """Refuses unknown fields so a typo is an error, not a silently ignored value."""

    class Meta:
        unknown = RAISE

    def load_or_raise(self, data, **kwargs):
        """Load `data`, raising common.errors.ValidationError with per-field details."""
        if not isinstance(data, dict) and not kwargs.get("many"):
            raise ValidationError("Expected a JSON object", {"_schema": ["Expected a JSON object."]})
        try:
            return self.load(data, **kwargs)
        except MarshmallowError as error:
            raise ValidationError("Invalid input", _as_details(error.messages)) from None


class LenientSchema(Schema):
    """For outputs built from richer objects: extra attributes are ignored."""

    class Meta:
        unknown = EXCLUDE


# The times every store holds (MariaDB DATETIME, SQLite text, a gRPC Timestamp, Python's own
# arithmetic a day or a year either side): from 1970 through 9998, in UTC.
EARLIEST_TIME = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_TIME = datetime(9999, 1, 1, tzinfo=UTC)  # excluded


class UtcDateTime(fields.AwareDateTime):
    """ISO-8601 with an offset in, UTC out; a naive time is refused, never guessed, and a time
    outside [EARLIEST_TIME, LATEST_TIME) is refused, never left to overflow further on."""

    default_error_messages = {"out_of_range": "Times from 1970-01-01 to 9998-12-31 (UTC) only."}

    def __init__(self, **kwargs):
        super().__init__(format="iso", **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        try:
            moment = super()._deserialize(value, attr, data, **kwargs).astimezone(UTC)
        except OverflowError:  # year 1 with a positive offset, year 9999 with a negative one
            raise self.make_error("out_of_range") from None
        if not EARLIEST_TIME <= moment < LATEST_TIME:
            raise self.make_error("out_of_range")
        return moment

    def _serialize(self, value, attr, obj, **kwargs):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)  # stored UTC without tzinfo in some stores
        return super()._serialize(value, attr, obj, **kwargs)


class WholeNumber(fields.Integer):
    """An integer, or its decimal text as query strings carry it; 1.5 is refused, never
    truncated to 1 (fields.Integer's lenient mode would)."""

    def _validated(self, value):
        if isinstance(value, float):
            raise self.make_error("invalid")
        return super()._validated(value)


# Database keys are signed 64-bit at most; larger ids cannot exist, so they are refused early.
MAX_ID = 2**63 - 1
Id = validate.Range(min=1, max=MAX_ID)
Offset = validate.Range(min=0, max=MAX_ID)


class Pattern(validate.Regexp):
    """validate.Regexp that wants the whole text to match: Python's `$` also matches before a
    trailing newline, so "usd\n" passed `^[a-z]{3}$`. The pattern stays the one the OpenAPI
    document shows (`^…$`, as JSON Schema reads it)."""

    def __call__(self, value):
        if self.regex.fullmatch(value) is None:
            raise MarshmallowError(self._format_error(value))
        return value


# Text shown to people on one line (names, reasons, keys): no control character (C0 and C1:
# NUL, tab, newlines, ESC…, DEL) and no Unicode line or paragraph separator.
PrintableText = Pattern(r"^[^\x00-\x1f\x7f-\x9f\u2028\u2029]*$", error="Control characters are not allowed.")
# Text that may run over several lines (a description): newline and tab kept; every other
# control character (NUL, CR, ESC, DEL, C1…) refused.
MultilineText = Pattern(r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*$",
                        error="Control characters other than newline and tab are not allowed.")


class PageQuery(Schema):
    """`?limit=&offset=` of every list endpoint."""

    limit = WholeNumber(load_default=20, validate=validate.Range(min=1, max=100))
    offset = WholeNumber(load_default=0, validate=Offset)


class PingSchema(Schema):
    """`ping(deep=False)` of every service."""

    deep = fields.Boolean(load_default=False)


def argument(schema, **given):
    """One RPC argument loaded through `schema`: `argument(PlaceRefSchema, place_id=place_id)`
    is the id, or common.errors.ValidationError naming the argument."""
    [name] = given
    return schema().load_or_raise(given)[name]


def query_or_empty(query):
    """An optional query/payload argument: None means no filters; anything else must be an object."""
    return {} if query is None else query


class LimitSchema(Schema):
    """How many of something an operator call returns at most."""

    limit = WholeNumber(load_default=50, validate=validate.Range(min=1, max=1000))


def page_of(item_schema):
    """The `{"items": [...], "total": n}` shape of a list response."""
    return Schema.from_dict(
        {"items": fields.List(fields.Nested(item_schema)), "total": fields.Integer()},
        name=f"{item_schema.__name__.removesuffix('Schema')}PageSchema",
    )


def _as_details(messages):
    if isinstance(messages, dict):
        return messages
    return {"_schema": messages}
