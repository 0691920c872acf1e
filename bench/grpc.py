"""gRPC unary latency: sequential `get_reservation` calls (one RPC to reservations behind each)
against the gRPC gateway, started for this section."""
from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass

import grpc

from bench.load import latency_summary
from bench.stack import GRPC_SERVICE, free_port
from gateway.grpc_generated import reservations_pb2, reservations_pb2_grpc


@contextmanager
def grpc_gateway(stack):
    """The gRPC gateway of `stack`, started on a free port; yields the port."""
    port = free_port()
    name = "grpc-gateway"
    stack.start_extra(name, [GRPC_SERVICE], GRPC_PORT=str(port))
    try:
        yield port
    finally:
        stack.stop_extra(name)


def connect(port: int, token: str, reservation_id: int, timeout: float = 60) -> Unary:
    """A client for `get_reservation(reservation_id)`, once the gateway answers it."""
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    unary = Unary(channel, reservations_pb2_grpc.ReservationsStub(channel),
                  reservations_pb2.GetReservationRequest(id=reservation_id),
                  [("authorization", f"Bearer {token}")])
    deadline = time.monotonic() + timeout
    while True:
        try:
            unary.call()
            return unary
        except grpc.RpcError as error:
            if time.monotonic() > deadline:
                channel.close()
                raise TimeoutError(f"gRPC gateway not answering: {error}") from None
            time.sleep(0.3)


@dataclass
class Unary:
    channel: grpc.Channel
    stub: reservations_pb2_grpc.ReservationsStub
    request: reservations_pb2.GetReservationRequest
    metadata: list

    def call(self):
        return self.stub.get_reservation(self.request, metadata=self.metadata, timeout=10)

    def close(self):
        self.channel.close()


def unary_latency(unary: Unary, calls: int) -> dict:
    """`calls` sequential calls: calls/s and latency percentiles."""
    latencies = []
    errors = 0
    started = time.perf_counter()
    for _ in range(calls):
        sent = time.perf_counter()
        try:
            unary.call()
            latencies.append(time.perf_counter() - sent)
        except grpc.RpcError:
            errors += 1
    elapsed = time.perf_counter() - started
    return {"calls": calls, "errors": errors, "elapsed_s": round(elapsed, 3),
            "per_second": round(len(latencies) / elapsed, 1) if elapsed > 0 else 0.0,
            **latency_summary(sorted(latencies))}
