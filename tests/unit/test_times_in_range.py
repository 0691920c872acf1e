"""The shared time field refuses times the stores cannot hold (DESIGN.md §8.1b): never an
OverflowError further on, always the typed ValidationError naming the field."""
from datetime import UTC, datetime

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from common.contracts.reservations import AvailabilityQuerySchema, ReservationCreateSchema
from common.errors import ValidationError
from gateway.grpc_generated import reservations_pb2
from gateway.grpc_server import _present


@pytest.mark.parametrize("moment", [
    "0001-01-01T00:00:00+14:00",  # overflows converting to UTC
    "9999-12-31T20:00:00-12:00",  # likewise, the other way
    "0001-01-01T00:00:00Z",
    "1969-12-31T23:59:59Z",
    "9999-01-01T00:00:00Z",
])
def test_times_outside_what_the_stores_hold_are_refused(moment):
    with pytest.raises(ValidationError) as refused:
        ReservationCreateSchema().load_or_raise({"place_id": 1, "start": moment, "end": "2027-01-01T10:00:00Z"})
    assert refused.value.details == {"start": ["Times from 1970-01-01 to 9998-12-31 (UTC) only."]}
    with pytest.raises(ValidationError):
        AvailabilityQuerySchema().load_or_raise({"from": "2027-01-01T10:00:00Z", "to": moment})


def test_times_at_the_edges_are_kept_in_utc():
    loaded = AvailabilityQuerySchema().load_or_raise({"from": "1970-01-01T01:00:00+01:00",
                                                      "to": "9998-12-31T23:59:59-00:00"})
    assert loaded == {"frm": datetime(1970, 1, 1, tzinfo=UTC), "to": datetime(9998, 12, 31, 23, 59, 59, tzinfo=UTC)}


@pytest.mark.parametrize("timestamp", [Timestamp(seconds=2**62), Timestamp(seconds=-2**40),
                                       Timestamp(seconds=0, nanos=-5), Timestamp(seconds=0, nanos=10**9)])
def test_a_timestamp_protobuf_refuses_is_a_validation_error(timestamp):
    request = reservations_pb2.AvailabilityRequest(place_id=1, to=timestamp)
    with pytest.raises(ValidationError) as refused:
        _present(request, {"from": "from", "to": "to"})
    assert list(refused.value.details) == ["to"]


def test_a_timestamp_in_range_becomes_iso_text_for_the_schema_to_bound():
    request = reservations_pb2.AvailabilityRequest(place_id=1, to=Timestamp(seconds=-1))
    assert _present(request, {"from": "from", "to": "to"}) == {"to": "1969-12-31T23:59:59+00:00"}
