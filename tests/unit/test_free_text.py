"""Every text field a caller can send refuses control characters (NUL, ESC, DEL, C1, and
line breaks where one line is meant), at whichever door the schema guards: generated from
the input schemas of common/contracts, so a new field is checked the day it is declared."""
import importlib
import inspect

import pytest
from marshmallow import fields

from common.errors import ValidationError
from common.runtime import audit
from common.schemas import LenientSchema, MultilineText, PrintableText, Schema

CONTRACTS = ["auth", "notifications", "partners", "payments", "reservations"]
# Inputs that are not text shown to anyone, each for a reason.
NOT_FREE_TEXT = {
    ("LoginSchema", "password"): "a secret, hashed, never shown; any character may be in it",
    ("RegisterSchema", "password"): "the same",
    ("UserCreateSchema", "password"): "the same",
    ("LoginSchema", "email"): "looked up, never stored or shown; a wrong one is 401 like any other",
    ("WebhookSchema", "payload"): "Stripe's raw JSON body, verified by its signature",
    ("WebhookSchema", "signature"): "Stripe's header, verified by HMAC",
}
MULTI_LINE = {("PlaceCreateSchema", "description"), ("PlaceUpdateSchema", "description")}
ALWAYS_REFUSED = ["a\x00b", "a\x1b[31mred", "a\x7f", "a\x85b", "a\x07", "a\rb", "a\x0bb"]
ONE_LINE_ONLY = ["a\nb", "ab\n", "a\tb", "a\u2028b"]


def input_schemas():
    modules = [importlib.import_module(f"common.contracts.{name}") for name in CONTRACTS] + [audit]
    found = {}
    for module in modules:
        for name, schema in inspect.getmembers(module, inspect.isclass):
            if issubclass(schema, Schema) and not issubclass(schema, LenientSchema) and schema is not Schema:
                found[name] = schema
    return found


def text_fields():
    for name, schema in sorted(input_schemas().items()):
        for field_name, field in schema().load_fields.items():
            if type(field) is fields.String and (name, field_name) not in NOT_FREE_TEXT:
                yield pytest.param(schema, field.data_key or field_name, id=f"{name}.{field_name}")


def refused(schema, key, value):
    try:
        schema().load_or_raise({key: value})
    except ValidationError as error:
        return key in error.details
    return False


def test_the_contracts_have_text_fields_to_check():
    assert len(list(text_fields())) >= 25


@pytest.mark.parametrize("schema, key", list(text_fields()))
def test_every_text_field_refuses_control_characters(schema, key):
    multi_line = (schema.__name__, key) in MULTI_LINE
    for value in ALWAYS_REFUSED + ([] if multi_line else ONE_LINE_ONLY):
        assert refused(schema, key, value), f"{schema.__name__}.{key} took {value!r}"


@pytest.mark.parametrize("value", ["Ann", "Zoë Åström", "会議室 A", "O'Brien-Smith", "emoji 🎉"])
def test_text_people_write_is_kept(value):
    PrintableText(value)
    MultilineText(value)


def test_a_description_keeps_its_lines_and_tabs():
    from common.contracts.reservations import PlaceCreateSchema

    text = "Second floor.\n\tProjector and whiteboard.\nAsk at reception."
    place = PlaceCreateSchema().load_or_raise({"name": "Room", "unit": "hour", "unit_price": 1,
                                               "currency": "usd", "description": text})
    assert place["description"] == text


@pytest.mark.parametrize("schema, key, good", [
    ("auth.RegisterSchema", "phone", "+14155550100"),
    ("reservations.PlaceCreateSchema", "currency", "usd"),
    ("reservations.ReservationCreateSchema", "payment_method", "pm_card_visa"),
    ("payments.ChargeSchema", "currency", "usd"),
    ("payments.ChargeSchema", "payment_method", "pm_card_visa"),
    ("auth.RefreshSchema", "refresh_token", "abc_DEF-123"),
    ("partners.GuestSchema", "phone", "+14155550100"),
])
def test_patterns_match_the_whole_text_not_up_to_a_trailing_newline(schema, key, good):
    module, name = schema.split(".")
    schema = getattr(importlib.import_module(f"common.contracts.{module}"), name)
    assert not refused(schema, key, good)
    assert refused(schema, key, good + "\n")  # Python's `$` would have matched before it
