"""What the operator audit keeps of a call: a usable name and arguments without secrets."""
import json

from common.runtime.audit import UNNAMED, operator_name
from common.storage.audit import MAX_ARGUMENTS_CHARS, REDACTED, describe_arguments, redact


def test_secret_fields_are_redacted_at_any_depth():
    value = {"email": "a@example.com", "password": "p", "nested": [{"api_key": "k", "name": "x"}],
             "Refresh_Token": "t", "payment_method": "pm_card_visa"}
    assert redact(value) == {"email": "a@example.com", "password": REDACTED,
                             "nested": [{"api_key": REDACTED, "name": "x"}],
                             "Refresh_Token": REDACTED, "payment_method": REDACTED}


def test_arguments_are_json_and_bounded():
    text = describe_arguments((12, "guest called"), {"reason": "x" * 10_000})
    assert len(text) == MAX_ARGUMENTS_CHARS and text.endswith("…")
    assert json.loads(describe_arguments((12,), {}))["args"] == [12]


def test_operator_name_is_declared_printable_text_or_unnamed():
    assert operator_name({"operator": "  alice "}) == "alice"
    for bad in ({}, {"operator": ""}, {"operator": 7}, {"operator": "eve\nroot"}, {"operator": "x" * 121}):
        assert operator_name(bad) == UNNAMED
