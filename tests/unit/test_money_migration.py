"""The money migration fills the new columns of reservations made before it, on SQLite and
MariaDB: card bookings were paid their amount with their one payment, a cancelled one was
refunded what its cancellation sent, partner bookings owe nothing, and every reservation
keeps the terms of its place."""
import json

import sqlalchemy as sa

from common.storage.migrations import upgrade
from tests.conftest import drop_databases

NOW = "2027-01-01 10:00:00.000000"


def test_existing_reservations_are_backfilled(db_template):
    url = db_template.replace("<service>", "reservations")
    try:
        upgrade("reservations_service", url, "0004")
        engine = sa.create_engine(url)
        with engine.begin() as connection:
            connection.execute(sa.text(
                "INSERT INTO places (id, name, unit, unit_price, currency, timezone, created_at, updated_at) "
                "VALUES (1, 'Room', 'hour', 2500, 'usd', 'UTC', :now, :now)"), {"now": NOW})
            rows = [  # id, status, amount, payment_id, partner, refund_amount, refund_due
                (1, "confirmed", 5000, 41, None, 0, 0),
                (2, "cancelled", 5000, 42, None, 2500, 0),  # a late cancellation, refund sent
                (3, "cancelled", 5000, 43, None, 5000, 5000),  # refund still owed
                (4, "cancelled", 5000, None, "acme", 5000, 5000),  # the operator-cancel bug
                (5, "failed", 5000, None, None, 0, 0),
            ]
            for rid, status, amount, payment_id, partner, refund_amount, refund_due in rows:
                connection.execute(sa.text(
                    "INSERT INTO reservations (id, place_id, user_id, start_at, end_at, status, amount, "
                    "currency, payment_method, payment_id, version, refund_amount, refund_due, partner, "
                    "partner_ref, created_at, updated_at) VALUES (:id, 1, 7, :now, :now, :status, :amount, "
                    "'usd', 'pm_card_visa', :payment_id, 0, :refund_amount, :refund_due, :partner, "
                    ":ref, :now, :now)"), {
                        "id": rid, "now": NOW, "status": status, "amount": amount, "payment_id": payment_id,
                        "refund_amount": refund_amount, "refund_due": refund_due, "partner": partner,
                        "ref": f"ref-{rid}" if partner else None})
        upgrade("reservations_service", url)
        with engine.connect() as connection:
            found = {row.id: row for row in connection.execute(sa.text(
                "SELECT id, unit, unit_price, quantity, paid, refunded, payment_ids, refund_amount, refund_due "
                "FROM reservations"))}
        engine.dispose()
        ids = {rid: json.loads(row.payment_ids) if isinstance(row.payment_ids, str) else row.payment_ids
               for rid, row in found.items()}
        assert all((row.unit, row.unit_price, row.quantity) == ("hour", 2500, 1) for row in found.values())
        assert (found[1].paid, found[1].refunded, ids[1]) == (5000, 0, [41])
        assert (found[2].paid, found[2].refunded, ids[2]) == (5000, 2500, [42])
        assert (found[3].paid, found[3].refunded, found[3].refund_due) == (5000, 0, 5000)
        assert (found[4].paid, found[4].refunded, ids[4], found[4].refund_amount, found[4].refund_due) == (
            0, 0, [], 0, 0)
        assert (found[5].paid, ids[5]) == (0, [])
    finally:
        drop_databases(db_template, ["reservations"])
