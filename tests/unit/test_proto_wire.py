"""The gRPC wire stays backward compatible: every message field, enum value and method a
released client knows (tests/unit/proto_wire_released.json, read from the protos as they were
before places gained their rules) keeps its number, type and shape. New ones only add."""
import json
from pathlib import Path

from google.protobuf import descriptor_pb2

from gateway.grpc_generated import auth_pb2, reservations_pb2

RELEASED = json.loads((Path(__file__).with_name("proto_wire_released.json")).read_text())


def _current():
    found = {}
    for module in (auth_pb2, reservations_pb2):
        proto = descriptor_pb2.FileDescriptorProto()
        module.DESCRIPTOR.CopyToProto(proto)
        found[proto.name] = {
            "messages": {m.name: {f.name: [f.number, f.type, f.label, f.type_name] for f in m.field}
                         for m in proto.message_type},
            "enums": {e.name: {v.name: v.number for v in e.value} for e in proto.enum_type},
            "services": {s.name: {x.name: [x.input_type, x.output_type, x.server_streaming] for x in s.method}
                         for s in proto.service},
        }
    return found


def test_everything_a_released_client_knows_is_on_the_wire_unchanged():
    current = _current()
    changed = [
        (file, kind, name, member, shape, current.get(file, {}).get(kind, {}).get(name, {}).get(member))
        for file, kinds in RELEASED.items()
        for kind, names in kinds.items()
        for name, members in names.items()
        for member, shape in members.items()
        if current.get(file, {}).get(kind, {}).get(name, {}).get(member) != shape
    ]
    assert changed == []


def test_the_released_snapshot_is_the_wire_before_places_gained_their_rules():
    # A guard on the snapshot itself: it must not be regenerated from today's protos.
    reservation = RELEASED["bookify/v1/reservations.proto"]["messages"]["Reservation"]
    assert "quantity" not in reservation and reservation["updated_at"][0] == 14
    assert "get_place" not in RELEASED["bookify/v1/reservations.proto"]["services"]["Reservations"]
