"""common.storage.outbox.ProcessedEvents.claim on both databases: the first claim of an event wins,
a repeat is refused without spoiling the transaction it runs in, and on MariaDB and SQLite
it is one INSERT (no savepoint)."""
import sqlalchemy as sa

from common.clock import utcnow
from reservations_service.models import ProcessedEvent
from reservations_service.repository import ProcessedEvents
from tests.conftest import first_words


def test_the_first_claim_wins_and_a_repeat_leaves_the_transaction_usable(reservations_db):
    with reservations_db.transaction() as session:
        assert ProcessedEvents(session).claim("event-1", utcnow()) is True
    with reservations_db.transaction() as session:
        assert ProcessedEvents(session).claim("event-1", utcnow()) is False
        assert ProcessedEvents(session).claim("event-2", utcnow()) is True  # same transaction
    with reservations_db.transaction() as session:
        assert sorted(session.scalars(sa.select(ProcessedEvent.event_id))) == ["event-1", "event-2"]


def test_a_claim_is_one_statement(reservations_db, sent_statements):
    sent = sent_statements(reservations_db)
    with reservations_db.transaction() as session:
        ProcessedEvents(session).claim("event-1", utcnow())
        ProcessedEvents(session).claim("event-1", utcnow())
    seen = first_words(sent)
    assert seen.count("INSERT") == 2
    assert "SAVEPOINT" not in seen
