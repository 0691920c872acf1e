"""A dead-letter queue keeps whatever it is given, on the real broker: kombu refuses a `str`
body with content_encoding "binary" (LookupError: unknown encoding: binary), which once
turned a failed park into a requeue loop."""
from common.runtime.dead_letters import DeadLetterQueue


def test_str_and_bytes_bodies_are_both_kept_whole_with_the_reason(rabbit_config):
    import nameko
    queue = DeadLetterQueue(nameko.config["AMQP_URI"], "tests.dead_letter")
    queue.put('{"user_id": null, "name": "Zoë"}', "a str body", "reservations.events", "reservation_confirmed",
              "application/json")
    queue.put(b"\xff\x00 raw", "a bytes body", "partners.events", "reservation_requested", None)
    letters = queue.peek()
    assert [(d["reason"], d["routing_key"], d["body"]) for d in letters] == [
        ("a str body", "reservation_confirmed", '{"user_id": null, "name": "Zoë"}'),
        ("a bytes body", "reservation_requested", "\ufffd\x00 raw")]
    assert queue.peek() == letters  # peeking leaves them there
