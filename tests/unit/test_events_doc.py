"""docs/events.md shows the event contract as it is: its generated section matches
common/contracts/events.py (rewrite it with `python -m scripts.events_doc`)."""
from common.contracts.events import EVENTS, VARIANTS
from scripts.events_doc import DOC, rewritten, section


def test_the_documented_variants_are_the_contracts_own():
    text = DOC.read_text()
    assert rewritten(text) == text, "docs/events.md is stale: run python -m scripts.events_doc"


def test_every_event_type_and_variant_is_in_the_generated_section():
    generated = section()
    for source, types in EVENTS.items():
        for event_type, schema in types.items():
            assert f"### `{source}.events` / `{event_type}`" in generated
            assert schema.__name__ in generated
    assert all(f"- {variant.name}: " in generated for variant in VARIANTS)
