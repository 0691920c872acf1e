"""/v1/places: the bookable catalogue and its availability."""
from common.contracts.reservations import (
    AvailabilityQuerySchema,
    AvailabilitySchema,
    PlaceCreateSchema,
    PlaceQuerySchema,
    PlaceSchema,
    PlaceUpdateSchema,
)
from common.permissions import requires
from common.runtime.rpc import TimedClient
from common.schemas import page_of
from gateway.routing import route


class PlaceRoutes:
    # What this group uses; the gateway service class provides it (tests/unit/test_gateway_groups.py).
    reservations: TimedClient

    @route("POST", "/v1/places", tag="places", status=201, body=PlaceCreateSchema, response=PlaceSchema)
    @requires("places:manage")
    def create_place(self, call):
        """Create a bookable place: its unit (hour or day) and unit price, and its rules (time zone,
        capacity, opening hours, slot grid, length limits, buffer)."""
        return self.reservations.create_place(call.body)

    @route("GET", "/v1/places", tag="places", query=PlaceQuerySchema, response=page_of(PlaceSchema))
    def list_places(self, call):
        """Browse places."""
        return self.reservations.list_places(call.query)

    @route("GET", "/v1/places/{place_id}", tag="places", response=PlaceSchema)
    def get_place(self, call, place_id):
        """One place."""
        return self.reservations.get_place(place_id)

    @route("PATCH", "/v1/places/{place_id}", tag="places", body=PlaceUpdateSchema, response=PlaceSchema)
    @requires("places:manage")
    def update_place(self, call, place_id):
        """Change a place; new prices apply to new bookings."""
        return self.reservations.update_place(place_id, call.body)

    @route("DELETE", "/v1/places/{place_id}", tag="places", status=204, errors=(409,))
    @requires("places:manage")
    def delete_place(self, call, place_id):
        """Retire a place; 409 while it has upcoming reservations."""
        self.reservations.delete_place(place_id)
        return 204, ""

    @route("GET", "/v1/places/{place_id}/availability", tag="places", query=AvailabilityQuerySchema,
           response=AvailabilitySchema)
    def availability(self, call, place_id):
        """What is left between `from` and `to`: booked and free intervals, and `remaining` per grid slot
        within opening hours (at most 1000 slots per answer)."""
        # The service validates again; it gets the raw strings, as any RPC caller would send.
        return self.reservations.availability(place_id, call.request.args.to_dict())
