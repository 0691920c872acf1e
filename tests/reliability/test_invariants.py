"""The invariant checker catches each broken rule, on hand-made rows, and passes a sound state."""
from datetime import datetime, timedelta, timezone

import pytest

from tests.reliability.invariants import violations

T0 = datetime(2030, 1, 1, 10, tzinfo=timezone.utc)


def reservation(id, status="confirmed", payment_id=None, place_id=1, start=0, hours=1, method="pm_card_visa"):
    return {"id": id, "place_id": place_id, "start": T0 + timedelta(hours=start),
            "end": T0 + timedelta(hours=start + hours), "status": status,
            "payment_id": payment_id, "payment_method": method}


def payment(id, reservation_id, status="succeeded", intent=None, amount=2500, refunded=0):
    return {"id": id, "reservation_id": reservation_id, "status": status, "amount": amount,
            "refunded_amount": refunded, "stripe_intent_id": intent}


def intent(id, reservation_id, payment_id, status="succeeded", amount=2500, refunded=0):
    return {"id": id, "status": status, "amount": amount,
            "metadata": {"reservation_id": str(reservation_id), "payment_id": str(payment_id)},
            "charges": {"data": [{"amount": amount, "amount_refunded": refunded}]}}


def sound():
    """Confirmed and paid, a declined one, an expired hold whose late charge was refunded,
    a partner booking (paid to the partner), back to back windows."""
    reservations = [reservation(1, payment_id=10), reservation(2, "failed", start=1),
                    reservation(3, "expired", start=1), reservation(4, "confirmed", start=1, method="partner"),
                    reservation(5, payment_id=12, start=2)]
    payments = [payment(10, 1, intent="pi_1"), payment(11, 2, "failed"),
                payment(13, 3, "refunded", "pi_3", refunded=2500), payment(12, 5, intent="pi_5")]
    intents = [intent("pi_1", 1, 10), intent("pi_3", 3, 13, refunded=2500), intent("pi_5", 5, 12),
               intent("pi_2", 2, 11, status="requires_payment_method")]
    return reservations, payments, intents


def test_a_sound_state_has_no_violations():
    reservations, payments, intents = sound()
    assert violations(reservations, payments, intents, created=[1, 5]) == []


def rules(found):
    return sorted({v.rule for v in found})


def test_a_201_that_is_not_confirmed():
    reservations, payments, intents = sound()
    assert rules(violations(reservations, payments, intents, created=[1, 3])) == ["created_confirmed"]


def test_a_201_that_was_never_stored():
    reservations, payments, intents = sound()
    assert rules(violations(reservations, payments, intents, created=[99])) == ["created_confirmed"]


def test_a_201_charged_twice():
    reservations, payments, intents = sound()
    payments.append(payment(14, 1, intent="pi_1b"))
    intents.append(intent("pi_1b", 1, 14))
    found = violations(reservations, payments, intents, created=[1])
    assert "created_confirmed" in rules(found) and "stripe_single_charge" in rules(found)


def test_a_charge_without_a_confirmed_reservation():
    reservations, payments, intents = sound()
    payments[2] = payment(13, 3, "succeeded", "pi_3")  # the expired hold's charge, never refunded
    intents[1] = intent("pi_3", 3, 13)
    assert rules(violations(reservations, payments, intents)) == ["charge_has_booking"]


def test_a_charge_for_a_reservation_that_names_another_payment():
    reservations, payments, intents = sound()
    payments.append(payment(15, 5))
    assert "charge_has_booking" in rules(violations(reservations, payments))


def test_a_confirmed_reservation_without_a_charge():
    reservations, payments, _ = sound()
    reservations.append(reservation(6, payment_id=None, start=5))
    assert rules(violations(reservations, payments)) == ["confirmed_has_charge"]


def test_a_confirmed_reservation_whose_charge_failed():
    reservations, payments, _ = sound()
    reservations.append(reservation(6, payment_id=11, start=5))  # payment 11 is failed (and another's)
    assert rules(violations(reservations, payments)) == ["confirmed_has_charge"]


@pytest.mark.parametrize("status", ["pending", "confirmed"])
def test_overlapping_reservations(status):
    reservations, payments, _ = sound()
    reservations.append(reservation(7, status, payment_id=16 if status == "confirmed" else None,
                                    start=2, hours=3))  # 5's window is inside it
    if status == "confirmed":
        payments.append(payment(16, 7))
    assert rules(violations(reservations, payments)) == ["no_overlap"]


def test_an_overlap_hidden_behind_a_long_reservation():
    reservations = [reservation(1, "pending", start=0, hours=10), reservation(2, "pending", start=1),
                    reservation(3, "pending", start=5)]
    found = violations(reservations, [])
    assert [v.detail for v in found] == ["reservations 1 and 2 overlap", "reservations 1 and 3 overlap"]


def test_money_kept_at_stripe_that_payments_does_not_know():
    reservations, payments, intents = sound()
    intents.append(intent("pi_x", 3, 99))
    assert rules(violations(reservations, payments, intents)) == ["stripe_matches"]


def test_money_kept_at_stripe_for_a_payment_still_pending():
    reservations, payments, intents = sound()
    payments.append(payment(17, 3, "pending"))
    intents.append(intent("pi_7", 3, 17))
    assert rules(violations(reservations, payments, intents)) == ["stripe_matches"]


def test_a_partly_refunded_double_charge_still_counts():
    reservations, payments, intents = sound()
    intents.append(intent("pi_1c", 1, 10, refunded=1000))
    assert rules(violations(reservations, payments, intents)) == ["stripe_single_charge"]
