"""gateway/grpc_generated/ is what scripts/generate_protos.py makes of proto/bookify/v1 today:
a .proto edited without regenerating (or a hand-edited module) fails here."""
from pathlib import Path

from scripts.generate_protos import OUT_DIR, generate


def _contents(directory):
    return {path.name: path.read_text() for path in sorted(Path(directory).iterdir()) if path.is_file()}


def test_generated_code_matches_the_protos(tmp_path):
    generate(tmp_path)
    fresh, committed = _contents(tmp_path), _contents(OUT_DIR)
    assert sorted(fresh) == sorted(committed), "run: .venv/bin/python -m scripts.generate_protos"
    stale = [name for name in fresh if fresh[name] != committed[name]]
    assert not stale, f"stale generated code {stale}; run: .venv/bin/python -m scripts.generate_protos"


def test_generated_services_have_the_contracts_methods():
    from gateway.grpc_generated import auth_pb2, reservations_pb2

    reservations = reservations_pb2.DESCRIPTOR.services_by_name["Reservations"]
    assert reservations.full_name == "bookify.v1.Reservations"
    assert sorted(reservations.methods_by_name) == sorted([
        "check_availability", "create_reservation", "get_reservation", "list_reservations",
        "cancel_reservation", "watch_reservations", "get_place", "list_places"])
    assert reservations.methods_by_name["watch_reservations"].server_streaming
    assert list(auth_pb2.DESCRIPTOR.services_by_name["Auth"].methods_by_name) == ["login"]
