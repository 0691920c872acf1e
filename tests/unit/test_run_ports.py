"""`make run` knows every port its processes will listen on, and which setting moves each."""
import socket

from scripts import run_local


def test_every_listener_of_a_local_run_is_planned_with_its_setting(monkeypatch):
    for name in ("GATEWAY_ADDRESS", "GRPC_PORT", "GRPC_BIND", "METRICS_ADDRESS", "LOCALSTRIPE_PORT",
                 *run_local.METRICS_PORT_SETTINGS.values()):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PAYMENTS_METRICS_PORT", "0")  # turned off: not listened on
    monkeypatch.setenv("LOCALSTRIPE_PORT", "8499")
    planned = run_local.listeners(run_local.local_binds({}), local_stripe=True)
    assert {(host, port, setting) for host, port, _, setting in planned} == {
        ("127.0.0.1", 8000, "GATEWAY_ADDRESS"), ("127.0.0.1", 50051, "GRPC_PORT"),
        ("127.0.0.1", 9101, "AUTH_METRICS_PORT"), ("127.0.0.1", 9102, "RESERVATIONS_METRICS_PORT"),
        ("127.0.0.1", 9104, "NOTIFICATIONS_METRICS_PORT"), ("127.0.0.1", 9105, "GATEWAY_METRICS_PORT"),
        ("127.0.0.1", 9106, "GRPC_GATEWAY_METRICS_PORT"), ("::" if socket.has_ipv6 else "", 8499, "LOCALSTRIPE_PORT")}
    assert not any(setting == "LOCALSTRIPE_PORT" for *_, setting in run_local.listeners({}, local_stripe=False))


def test_one_port_given_twice_is_named_with_both_settings():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    problem = run_local.port_problem([("127.0.0.1", port, "the HTTP gateway", "GATEWAY_ADDRESS"),
                                      ("127.0.0.1", port, "the gRPC gateway", "GRPC_PORT")])
    assert problem == (f"Port {port} is set for both the HTTP gateway (GATEWAY_ADDRESS) and the gRPC "
                       f"gateway: set GRPC_PORT to another port.")


def test_free_ports_pass_and_a_listened_one_is_named():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert run_local.port_problem([("127.0.0.1", port, "the HTTP gateway", "GATEWAY_ADDRESS")]) == (
            f"Port {port} for the HTTP gateway is already in use on 127.0.0.1: stop what listens there, "
            "or set GATEWAY_ADDRESS to a free port.")
        # On every interface too: the wildcard covers the loopback listener.
        assert run_local.port_problem([("", port, "localstripe", "LOCALSTRIPE_PORT")]).startswith(
            f"Port {port} for localstripe is already in use: ")
    assert run_local.port_problem([("127.0.0.1", port, "the HTTP gateway", "GATEWAY_ADDRESS")]) is None
