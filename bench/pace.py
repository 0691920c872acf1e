"""How fast this machine runs Python at the moment, as one number.

The machine the benchmark runs on is shared, and its pace drifts: on 2026-11-30 the same
code took 3.3 ms of CPU per gateway->service request in one run and 7.8 ms in another,
hours apart, while the plain kombu baseline moved far less (its time is mostly the kernel's). A run records
this figure at its start and end, so two runs can be told apart by the machine before
they are compared by the code: a change that makes the services cheaper shows up in their
CPU per request *relative to the pace*.

The workload is what the services spend their Python on: JSON encoding and decoding of a
booking-sized document, attribute access and small allocations. The figure is the best of
several short rounds (the fastest round is the one least disturbed by other work), in
microseconds per round trip of the document; lower is faster.
"""
import json
import time

_DOCUMENT = {
    "id": 123456, "place_id": 42, "customer_id": 7, "status": "confirmed",
    "start": "2026-11-30T10:00:00+00:00", "end": "2026-11-30T11:00:00+00:00",
    "amount": {"value": 4500, "currency": "EUR"}, "payment": {"intent": "pi_" + "x" * 24, "state": "succeeded"},
    "history": [{"at": "2026-11-30T09:00:00+00:00", "event": name} for name in ("held", "charged", "confirmed")],
}


def _round(iterations: int) -> float:
    started = time.perf_counter()
    for number in range(iterations):
        document = dict(_DOCUMENT, id=number)
        decoded = json.loads(json.dumps(document))
        if decoded["id"] != number:  # keeps the work from being optimised away
            raise AssertionError("pace workload broken")
    return time.perf_counter() - started


def python_pace(rounds: int = 7, iterations: int = 2_000) -> float:
    """Microseconds per document round trip: the fastest of `rounds` rounds, after one
    round of warm-up (the first is slower, whatever the machine)."""
    _round(iterations)
    return min(_round(iterations) for _ in range(rounds)) / iterations * 1e6
