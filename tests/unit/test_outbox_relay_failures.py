"""The relay's warning names what failed: the database (rows could not be read or marked) or
the broker (nothing could be published). Either way the events wait for the next attempt."""
import logging

import kombu.exceptions
import pytest
import sqlalchemy as sa

from common.errors import ServiceUnavailable
from common.runtime.outbox_relay import Outbox


class FailingRelay:
    batch_size = 100

    def __init__(self, error):
        self.error = error

    def relay_pending(self, known_pending=False):
        raise self.error


@pytest.mark.parametrize("error, culprit", [
    (ServiceUnavailable("The database is unavailable; try again shortly"), "database"),
    (sa.exc.OperationalError("SELECT 1", {}, Exception("gone away")), "database"),
    (kombu.exceptions.OperationalError("connection refused"), "broker"),
    (ConnectionRefusedError(111, "refused"), "broker"),
])
def test_the_warning_names_what_is_down(error, culprit, caplog):
    outbox = Outbox(model=None)
    outbox.relay = FailingRelay(error)
    with caplog.at_level(logging.WARNING, logger="common.runtime.outbox_relay"):
        outbox._relay_all()
    assert [record.getMessage().split(" (")[0] for record in caplog.records] == [f"outbox: {culprit} unavailable"]
