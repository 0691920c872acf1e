"""The money-and-slots invariants of a Bookify stack, checked from the outside: the
reservations and payments databases as they are, and what Stripe (localstripe) holds.

    1. every booking that got 201 is confirmed, with exactly one succeeded charge, which is
       the one it names (payment_id);
    2. a succeeded charge belongs to a confirmed reservation that names it, or is refunded;
    3. a confirmed reservation (not a partner's, partners collect their own money) names a
       succeeded charge for itself;
    4. no two pending/confirmed reservations of one place overlap;
    5. at Stripe, a reservation has at most one PaymentIntent whose money was kept, and
       money kept at Stripe is a succeeded payment in our database (no double charge,
       no charge we do not know of).

`violations(...)` works on plain dicts, so it can be proven on hand-made rows;
`check_stack(...)` loads those rows from a running stack."""
from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass

import sqlalchemy as sa

KEPT = ("succeeded", "partially_refunded")  # a payment whose money (some of it) was kept
HOLDING = ("pending", "confirmed")          # reservation states that occupy their window
PARTNER = "partner"                          # payment_method of partner bookings


@dataclass(frozen=True)
class Violation:
    rule: str
    subject: str
    detail: str

    def __str__(self):
        return f"[{self.rule}] {self.subject}: {self.detail}"


def violations(reservations, payments, intents=None, created=()):
    """The broken rules, [] when none.

    reservations: [{id, place_id, start, end, status, payment_id, payment_method}]
    payments:     [{id, reservation_id, status, amount, refunded_amount, stripe_intent_id}]
    intents:      Stripe PaymentIntents as dicts ({id, status, amount, metadata, charges}), or
                  None to skip rule 5
    created:      ids of reservations whose booking request was answered 201"""
    found = []
    by_id = {r["id"]: r for r in reservations}
    payments_by_id = {p["id"]: p for p in payments}
    kept_by_reservation = defaultdict(list)
    for payment in payments:
        if payment["status"] in KEPT:
            kept_by_reservation[payment["reservation_id"]].append(payment)

    for reservation_id in sorted(set(created)):
        reservation = by_id.get(reservation_id)
        kept = kept_by_reservation.get(reservation_id, [])
        if reservation is None:
            found.append(Violation("created_confirmed", f"reservation {reservation_id}", "answered 201 but not stored"))
            continue
        if reservation["status"] != "confirmed":
            found.append(Violation("created_confirmed", f"reservation {reservation_id}",
                                   f"answered 201 but {reservation['status']}"))
        if len(kept) != 1:
            found.append(Violation("created_confirmed", f"reservation {reservation_id}",
                                   f"answered 201 with {len(kept)} succeeded charges"))
        elif kept[0]["id"] != reservation["payment_id"]:
            found.append(Violation("created_confirmed", f"reservation {reservation_id}",
                                   f"names payment {reservation['payment_id']}, charged by {kept[0]['id']}"))

    for payment in payments:
        if payment["status"] not in KEPT:
            continue
        reservation = by_id.get(payment["reservation_id"])
        if reservation is None or reservation["status"] != "confirmed" \
                or reservation["payment_id"] != payment["id"]:
            state = "missing" if reservation is None else \
                f"{reservation['status']}, payment {reservation['payment_id']}"
            found.append(Violation("charge_has_booking", f"payment {payment['id']}",
                                   f"{payment['status']} for reservation {payment['reservation_id']} ({state})"))

    for reservation in reservations:
        if reservation["status"] != "confirmed" or reservation.get("payment_method") == PARTNER:
            continue
        payment = payments_by_id.get(reservation["payment_id"])
        if payment is None or payment["status"] not in KEPT or payment["reservation_id"] != reservation["id"]:
            state = "no payment" if payment is None else f"payment {payment['id']} {payment['status']}"
            found.append(Violation("confirmed_has_charge", f"reservation {reservation['id']}", state))

    by_place = defaultdict(list)
    for reservation in reservations:
        if reservation["status"] in HOLDING:
            by_place[reservation["place_id"]].append(reservation)
    for place_id, held in by_place.items():
        held.sort(key=lambda r: r["start"])
        latest = None  # the held reservation reaching furthest so far
        for reservation in held:
            if latest is not None and reservation["start"] < latest["end"]:
                found.append(Violation("no_overlap", f"place {place_id}",
                                       f"reservations {latest['id']} and {reservation['id']} overlap"))
            if latest is None or reservation["end"] > latest["end"]:
                latest = reservation

    if intents is not None:
        found += _stripe_violations(intents, payments, by_id)
    return found


def _stripe_violations(intents, payments, reservations):
    found = []
    ours = {p["stripe_intent_id"]: p for p in payments if p.get("stripe_intent_id")}
    by_payment_id = {str(p["id"]): p for p in payments}
    kept_per_reservation = defaultdict(list)
    for intent in intents:
        if intent.get("status") != "succeeded":
            continue
        refunded = sum(charge.get("amount_refunded", 0) for charge in (intent.get("charges") or {}).get("data", []))
        if refunded >= intent["amount"]:
            continue  # all of it went back
        metadata = intent.get("metadata") or {}
        kept_per_reservation[metadata.get("reservation_id")].append(intent["id"])
        payment = ours.get(intent["id"]) or by_payment_id.get(str(metadata.get("payment_id")))
        if payment is None or payment["status"] not in KEPT:
            state = "unknown to payments" if payment is None else f"payment {payment['id']} {payment['status']}"
            found.append(Violation("stripe_matches", f"intent {intent['id']}",
                                   f"{intent['amount'] - refunded} kept at Stripe, {state}"))
    for reservation_id, kept in kept_per_reservation.items():
        if len(kept) > 1:
            found.append(Violation("stripe_single_charge", f"reservation {reservation_id}",
                                   f"{len(kept)} PaymentIntents kept money: {', '.join(sorted(kept))}"))
    return found


# ----------------------------------------------------------------------------- loading

def load_reservations(url):
    with _connect(url) as connection:
        rows = connection.execute(sa.text(
            "SELECT id, place_id, start_at AS start, end_at AS end, status, payment_id, payment_method "
            "FROM reservations")).mappings().all()
    return [dict(row) for row in rows]


def load_payments(url):
    with _connect(url) as connection:
        rows = connection.execute(sa.text(
            "SELECT id, reservation_id, status, amount, refunded_amount, stripe_intent_id FROM payments"
        )).mappings().all()
    return [dict(row) for row in rows]


def load_intents(stripe_api_base, api_key="sk_test_local_bookify"):
    """Every PaymentIntent Stripe (localstripe) holds, as dicts, through the official SDK."""
    import stripe

    client = stripe.StripeClient(api_key, base_addresses={"api": stripe_api_base}, max_network_retries=2)
    listing = client.v1.payment_intents.list(params={"limit": 100})
    return [intent.to_dict() for intent in listing.auto_paging_iter()]


def counts(url, table, column="status"):
    """{value: rows} of one column, for the figures."""
    with _connect(url) as connection:
        rows = connection.execute(sa.text(f"SELECT {column}, COUNT(*) FROM {table} GROUP BY {column}")).all()
    return {value: count for value, count in rows}


def check_stack(reservations_url, payments_url, stripe_api_base=None, created=()):
    """Load a stack's rows and return its violations."""
    intents = load_intents(stripe_api_base) if stripe_api_base else None
    return violations(load_reservations(reservations_url), load_payments(payments_url), intents, created)


class _connect:
    """One connection, no pool. A server refusing connections for a moment (1040 too many
    connections: it is shared) is waited for, up to a minute."""

    def __init__(self, url):
        self.engine = sa.create_engine(url, poolclass=sa.pool.NullPool)

    def __enter__(self):
        for attempt in range(60):
            try:
                self.connection = self.engine.connect()
                return self.connection
            except sa.exc.OperationalError as error:
                if attempt == 59 or getattr(error.orig, "args", (None,))[0] != 1040:
                    raise
                time.sleep(1)

    def __exit__(self, *exc_info):
        self.connection.close()
        self.engine.dispose()
