"""/v1/reservations: book, read, reschedule and cancel."""
from common.contracts.reservations import (
    CancelSchema,
    RescheduleSchema,
    ReservationCreateSchema,
    ReservationQuerySchema,
    ReservationSchema,
    idempotency_key,
)
from common.permissions import requires
from common.runtime.rpc import TimedClient
from common.schemas import page_of
from gateway.routing import route


class ReservationRoutes:
    # What this group uses; the gateway service class provides it (tests/unit/test_gateway_groups.py).
    reservations: TimedClient

    @route("POST", "/v1/reservations", tag="reservations", status=201, body=ReservationCreateSchema,
           response=ReservationSchema, errors=(402, 409))
    @requires("reservations:create")
    def create_reservation(self, call):
        """Book a window and pay for it; 409 slot_unavailable, 402 payment_declined.
        Send an Idempotency-Key header to retry safely."""
        key = idempotency_key(call.request.headers.get("Idempotency-Key"), "Idempotency-Key")
        return self.reservations.create_reservation(call.principal.as_actor(), call.body, key)

    @route("GET", "/v1/reservations", tag="reservations", query=ReservationQuerySchema,
           response=page_of(ReservationSchema))
    def list_reservations(self, call):
        """Your reservations; everyone's with reservations:read_any (filterable)."""
        return self.reservations.list_reservations(call.request.args.to_dict(), call.principal.as_actor())

    @route("GET", "/v1/reservations/{reservation_id}", tag="reservations", response=ReservationSchema)
    def get_reservation(self, call, reservation_id):
        """One reservation: yours, or any with reservations:read_any (else 404)."""
        return self.reservations.get_reservation(reservation_id, call.principal.as_actor())

    @route("PATCH", "/v1/reservations/{reservation_id}", tag="reservations", body=RescheduleSchema,
           response=ReservationSchema, errors=(402, 409))
    def reschedule_reservation(self, call, reservation_id):
        """Move a confirmed reservation; the price difference is charged or refunded."""
        return self.reservations.reschedule_reservation(reservation_id, call.body, call.principal.as_actor())

    @route("POST", "/v1/reservations/{reservation_id}/cancel", tag="reservations", body=CancelSchema,
           response=ReservationSchema, errors=(409,))
    def cancel_reservation(self, call, reservation_id):
        """Cancel, with the refund the policy allows (see refund_amount)."""
        return self.reservations.cancel_reservation(
            reservation_id, call.body.get("reason"), call.principal.as_actor())
