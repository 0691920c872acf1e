"""The notifications service in a real nameko container on the real broker, sending through
the real SendGrid and Twilio SDKs to local fakes that check every request's shape: one
message per channel, opt-outs, retries through an outage, dead letters and their replay,
refusals that are never retried, duplicate events, events held while the service is down, and
the guests of partner bookings, found again in the delivery log by reservation."""
import re
import time

import eventlet
import pytest
from nameko.testing.services import entrypoint_waiter

from common.errors import ValidationError
from common.runtime.inbox import event_dead_letters
from notifications_service.service import NotificationsService
from tests.service.notifications_fixtures import (  # noqa: F401  (fixtures)
    MAX_ATTEMPTS,
    dispatch,
    notifications,
    notifications_config,
    notifications_db,
    payment_event,
    probe,
    reservation_event,
    rpc,
    sendgrid,
    settled,
    start_notifications,
    stored,
    twilio,
    user_registered,
    wait_until,
)


def _register(dispatch, notifications_db, user_id, **contact):  # noqa: F811
    """Publish user_registered and wait until its welcome messages are settled."""
    event = user_registered(user_id, **contact)
    channels = (bool(event["email"] and event["notify_email"]) + bool(event["phone"] and event["notify_sms"]))
    dispatch("auth", "user_registered", event)
    if channels:
        settled(notifications_db, channels, user_id=user_id, template="welcome")
    return event


def _of(fake_messages, needle):
    return [m for m in fake_messages if needle in (m.get("subject") or m.get("body") or "")]


def test_a_confirmed_reservation_is_emailed_and_texted_once(
        notifications, dispatch, notifications_db, sendgrid, twilio, probe):  # noqa: F811
    _register(dispatch, notifications_db, 7, email="ann@example.com", phone="+14155550100", name="Ann <b>")
    dispatch("reservations", "reservation_confirmed", reservation_event(7, reservation_id=12, amount=7500))

    email, sms = settled(notifications_db, 2, template="reservation_confirmed")
    assert (email.channel, email.recipient, email.status, email.attempts) == ("email", "ann@example.com", "sent", 1)
    assert (sms.channel, sms.recipient, sms.status, sms.attempts) == ("sms", "+14155550100", "sent", 1)

    [mail] = _of(sendgrid.messages, "Reservation #12")
    assert (mail["to"], mail["from"], mail["subject"]) == (
        "ann@example.com", "no-reply@bookify.test", "Reservation #12 is confirmed")
    assert "75.00 USD" in mail["text"] and "Fri 01 Jan 2027 10:00 UTC" in mail["text"]
    assert "Ann &lt;b&gt;" in mail["html"] and "<b>" not in mail["html"]  # names are escaped in HTML
    assert email.provider_message_id == mail["message_id"]
    [text] = _of(twilio.messages, "reservation #12")
    assert (text["to"], text["from"]) == ("+14155550100", "+15005550006")
    assert "75.00 USD" in text["body"]
    assert sms.provider_message_id == text["sid"]
    assert sendgrid.errors == [] and twilio.errors == []  # every request had the real shape

    announced = probe.drain(want=4, timeout=5)
    assert sorted((kind, body["channel"], body["template"]) for kind, body in announced) == [
        ("notification_sent", "email", "reservation_confirmed"), ("notification_sent", "email", "welcome"),
        ("notification_sent", "sms", "reservation_confirmed"), ("notification_sent", "sms", "welcome")]
    [(_, body)] = [(k, b) for k, b in announced if b["notification_id"] == email.id]
    assert {k: body[k] for k in ("notification_id", "user_id", "attempts")} == {
        "notification_id": email.id, "user_id": 7, "attempts": 1}


def test_users_who_opted_out_of_a_channel_get_nothing_on_it(
        notifications, dispatch, notifications_db, sendgrid, twilio):  # noqa: F811
    _register(dispatch, notifications_db, 1, email="no-mail@example.com", phone="+14155550101", notify_email=False)
    _register(dispatch, notifications_db, 2, email="no-sms@example.com", phone="+14155550102", notify_sms=False)
    _register(dispatch, notifications_db, 3, email="no-phone@example.com", phone=None)
    for user_id in (1, 2, 3):
        dispatch("reservations", "reservation_cancelled",
                 reservation_event(user_id, reservation_id=20 + user_id, refund_amount=3750))

    rows = settled(notifications_db, 3, template="reservation_cancelled")
    assert sorted((r.user_id, r.channel, r.recipient, r.status) for r in rows) == [
        (1, "sms", "+14155550101", "sent"),
        (2, "email", "no-sms@example.com", "sent"),
        (3, "email", "no-phone@example.com", "sent")]
    eventlet.sleep(0.5)
    assert sorted(m["to"] for m in _of(sendgrid.messages, "is cancelled")) == [
        "no-phone@example.com", "no-sms@example.com"]
    [text] = _of(twilio.messages, "is cancelled")
    assert text["to"] == "+14155550101" and "Refund: 37.50 USD" in text["body"]


def test_an_email_is_retried_through_a_sendgrid_outage_and_delivered_once(
        notifications, dispatch, notifications_db, sendgrid):  # noqa: F811
    _register(dispatch, notifications_db, 7, phone=None)
    sendgrid.fail_next(3, 503)
    started = time.monotonic()
    dispatch("payments", "payment_refunded", payment_event(7, amount=3000, reason="cancelled"))

    [email] = settled(notifications_db, 1, template="payment_refunded")
    assert (email.status, email.attempts, email.last_error) == ("sent", 4, None)
    assert time.monotonic() - started >= 0.2 + 0.4 + 0.8  # waited base * 2**(attempt-1) between tries
    assert sendgrid.failures == [503, 503, 503]
    [mail] = _of(sendgrid.messages, "Refund of 30.00 USD")
    assert email.provider_message_id == mail["message_id"]
    eventlet.sleep(0.5)
    assert len(_of(sendgrid.messages, "Refund of")) == 1


def test_an_email_failing_every_attempt_is_a_dead_letter_until_replayed(
        notifications, dispatch, notifications_db, sendgrid, rpc, probe):  # noqa: F811
    _register(dispatch, notifications_db, 7, phone=None)
    probe.drain(want=1, timeout=2)  # the welcome email's notification_sent
    sendgrid.fail_next(MAX_ATTEMPTS, 503)
    dispatch("reservations", "reservation_expired", reservation_event(7, reservation_id=30))

    [email] = settled(notifications_db, 1, template="reservation_expired")
    assert (email.status, email.attempts) == ("failed", MAX_ATTEMPTS)
    assert "503" in email.last_error and f"after {MAX_ATTEMPTS} attempts" in email.last_error
    [(kind, body)] = probe.drain(want=1, timeout=5)
    assert (kind, body["notification_id"], body["attempts"]) == ("notification_failed", email.id, MAX_ATTEMPTS)
    assert [n["id"] for n in rpc.list_failed()] == [email.id]

    dead = wait_until(rpc.list_dead_letters, what="the dead letter")
    assert [d["notification_id"] for d in dead] == [email.id]
    assert "503" in dead[0]["reason"] and dead[0]["dead_lettered_at"]
    assert rpc.list_dead_letters() == dead  # peeking takes nothing out
    assert _of(sendgrid.messages, "expired") == []

    assert rpc.replay_dead_letters() == 1  # SendGrid is back
    [email] = settled(notifications_db, 1, template="reservation_expired")
    assert (email.status, email.attempts) == ("sent", MAX_ATTEMPTS + 1)
    assert len(sendgrid.wait_for(2)) == 2 and len(_of(sendgrid.messages, "expired")) == 1
    assert rpc.list_dead_letters() == [] and rpc.list_failed() == []
    assert rpc.replay_dead_letters() == 0


def test_a_number_twilio_refuses_fails_at_once_is_not_retried_and_is_parked_with_the_reason(
        notifications, dispatch, notifications_db, twilio, rpc):  # noqa: F811
    _register(dispatch, notifications_db, 7, phone="+15005550001")  # Twilio: "not a valid phone number"
    dispatch("payments", "payment_failed", payment_event(7, reason="card_declined"))

    rows = settled(notifications_db, 2, template="payment_failed")
    sms = next(r for r in rows if r.channel == "sms")
    assert (sms.status, sms.attempts) == ("failed", 1)
    assert "21211" in sms.last_error and "refused" in sms.last_error
    assert next(r for r in rows if r.channel == "email").status == "sent"
    eventlet.sleep(1.0)  # longer than every retry delay: nothing is tried again
    assert twilio.refused == ["+15005550001", "+15005550001"]  # the welcome SMS and this one, once each
    assert twilio.messages == [] and twilio.errors == []

    dead = wait_until(lambda: len(rpc.list_dead_letters()) == 2 and rpc.list_dead_letters(), what="2 dead letters")
    welcome_sms = stored(notifications_db, template="welcome", channel="sms")[0]
    assert {d["notification_id"] for d in dead} == {welcome_sms.id, sms.id}
    assert all("21211" in d["reason"] for d in dead)

    # Replaying only one leaves the other parked; refused again, it is parked again.
    assert rpc.replay_dead_letters([sms.id]) == 1
    wait_until(lambda: len(twilio.refused) == 3, what="the replayed SMS to be refused")
    wait_until(lambda: len(rpc.list_dead_letters()) == 2, what="the SMS parked again")
    [sms] = settled(notifications_db, 1, template="payment_failed", channel="sms")
    assert (sms.status, sms.attempts) == ("failed", 2)


def test_the_same_event_published_twice_is_sent_once(
        notifications, dispatch, notifications_db, sendgrid, twilio):  # noqa: F811
    _register(dispatch, notifications_db, 7)
    event = reservation_event(7, reservation_id=40)
    with entrypoint_waiter(notifications, "on_reservation_rescheduled"):
        dispatch("reservations", "reservation_rescheduled", event)
    with entrypoint_waiter(notifications, "on_reservation_rescheduled"):
        dispatch("reservations", "reservation_rescheduled", event)

    rows = settled(notifications_db, 2, template="reservation_rescheduled")
    eventlet.sleep(0.5)
    assert len(stored(notifications_db, template="reservation_rescheduled")) == 2 == len(rows)
    assert len(_of(sendgrid.messages, "has moved")) == 1
    assert len(_of(twilio.messages, "moved to")) == 1


def test_events_published_while_the_service_is_stopped_are_all_notified_when_it_is_back(
        start_notifications, dispatch, notifications_db, sendgrid, twilio):  # noqa: F811
    container = start_notifications()  # declares its durable queues, then goes away
    _register(dispatch, notifications_db, 7)
    container.stop()

    for reservation_id in (51, 52, 53):
        dispatch("reservations", "reservation_confirmed", reservation_event(7, reservation_id=reservation_id))
    dispatch("payments", "payment_refunded", payment_event(7))
    eventlet.sleep(0.5)
    assert stored(notifications_db, template="reservation_confirmed") == []

    start_notifications()
    rows = settled(notifications_db, 6, template="reservation_confirmed")
    assert {r.status for r in rows} == {"sent"}
    settled(notifications_db, 2, template="payment_refunded")
    assert sorted(m["subject"] for m in _of(sendgrid.messages, "is confirmed")) == [
        "Reservation #51 is confirmed", "Reservation #52 is confirmed", "Reservation #53 is confirmed"]
    assert len(_of(twilio.messages, "confirmed")) == 3


def test_an_event_about_an_unknown_user_records_nothing_and_the_service_carries_on(
        notifications, dispatch, notifications_db, sendgrid):  # noqa: F811
    with entrypoint_waiter(notifications, "on_reservation_confirmed"):
        dispatch("reservations", "reservation_confirmed", reservation_event(999))
    dispatch("reservations", "reservation_confirmed", {"event_id": "not-a-reservation"})  # malformed
    parked = event_dead_letters("notifications")
    deadline = time.monotonic() + 10
    while not (letters := parked.peek()) and time.monotonic() < deadline:
        time.sleep(0.1)  # parked before any worker runs: nothing to wait for but the queue
    assert letters[0]["reason"].startswith("reservations.reservation_confirmed fails its schema")
    assert stored(notifications_db) == []

    _register(dispatch, notifications_db, 999, phone=None)
    dispatch("reservations", "reservation_confirmed", reservation_event(999, reservation_id=60))
    [email] = settled(notifications_db, 1, template="reservation_confirmed")
    assert email.status == "sent"


def test_a_profile_change_redirects_later_messages(notifications, dispatch, notifications_db, twilio):  # noqa: F811
    registered = _register(dispatch, notifications_db, 7, phone="+14155550100")
    changed = dict(user_registered(7, phone="+14155550199", notify_email=False))
    with entrypoint_waiter(notifications, "on_user_profile_changed"):
        dispatch("auth", "user_profile_changed", changed)
    with entrypoint_waiter(notifications, "on_user_profile_changed"):  # an older event arriving late
        dispatch("auth", "user_profile_changed", dict(registered, event_id="late-" + registered["event_id"]))
    dispatch("reservations", "reservation_confirmed", reservation_event(7, reservation_id=70))

    [sms] = settled(notifications_db, 1, template="reservation_confirmed")
    assert (sms.channel, sms.recipient) == ("sms", "+14155550199")
    assert [m["to"] for m in _of(twilio.messages, "reservation #70")] == ["+14155550199"]


def test_the_delivery_log_shows_customers_their_own_and_operators_everything(
        notifications, dispatch, notifications_db, rpc):  # noqa: F811
    _register(dispatch, notifications_db, 7, email="ann@example.com", phone="+14155550100")
    _register(dispatch, notifications_db, 8, email="bob@example.com", phone=None)
    ann = {"user_id": 7, "permissions": ["reservations:create"]}
    auditor = {"user_id": 9, "permissions": ["notifications:read_any"]}

    everything = rpc.list_notifications()
    assert everything["total"] == 3
    assert set(everything["items"][0]) == {
        "id", "user_id", "reservation_id", "channel", "template", "recipient", "status", "attempts",
        "provider_message_id", "last_error", "event_id", "created_at", "updated_at"}
    own = rpc.list_notifications({"user_id": 8}, ann)  # asks for someone else's: gets their own
    assert (own["total"], {n["user_id"] for n in own["items"]}) == (2, {7})
    assert rpc.list_notifications({"user_id": 8}, auditor)["total"] == 1
    assert rpc.list_notifications({"channel": "sms", "status": "sent"}, auditor)["total"] == 1
    page = rpc.list_notifications({"limit": 2, "offset": 0})
    assert (len(page["items"]), page["total"]) == (2, 3)
    assert rpc.list_notifications({"status": "failed"}) == {"items": [], "total": 0}
    for bad in ({"status": "lost"}, {"channel": "fax"}, {"limit": 0}, {"surprise": 1}, {"reservation_id": 0},
                {"reservation_id": "twelve"}):
        with pytest.raises(ValidationError):
            rpc.list_notifications(bad)
    with pytest.raises(ValidationError):
        rpc.replay_dead_letters(["x"])
    assert rpc.ping() == "pong"


def test_the_delivery_topology_is_durable_and_retries_dead_letter_back_to_work(
        notifications, notifications_config, rabbit_manager, rpc):  # noqa: F811
    vhost = notifications_config["AMQP_URI"].rsplit("/", 1)[1]
    queues = {queue["name"]: queue for queue in rabbit_manager.get_queues(vhost)}
    retry_queues = sorted(name for name in queues if name.startswith("notifications.retry."))
    # per channel: base 0.2 s doubling for attempts 1-3, and the 7 s lease wait (2 s timeout + 5 s margin)
    assert retry_queues == sorted(f"notifications.retry.{channel}.{millis}ms" for channel in ("email", "sms")
                                  for millis in (200, 400, 800, 7000))
    work_queues = ["notifications.deliveries.email", "notifications.deliveries.sms"]
    for name in ("notifications.deliveries", *work_queues, "notifications.dead_letter", *retry_queues):
        assert queues[name]["durable"] and not queues[name]["auto_delete"], name
    for name in retry_queues:
        channel = name.split(".")[2]
        assert queues[name]["arguments"] == {"x-dead-letter-exchange": "notifications.delivery",
                                             "x-dead-letter-routing-key": f"deliver.{channel}"}
        assert queues[name].get("consumers", 0) == 0  # nobody consumes them: messages only expire
    # Each channel's work queue has its own consumer, holding at most its concurrency in flight.
    for name in ("notifications.deliveries", *work_queues):
        assert wait_until(lambda name=name: _queue(rabbit_manager, vhost, name).get("consumers"),
                          what=f"a consumer on {name}") == 1

    # A delivery message that names no notification is parked with the malformed events, not
    # retried forever, and not among the notifications that failed to go out.
    rabbit_manager.publish(vhost, "notifications.delivery", "deliver", '{"nope": 1}',
                           properties={"content_type": "application/json"})
    [dead] = wait_until(rpc.list_event_dead_letters, what="the malformed message parked")
    assert dead["reason"].startswith("deliver fails its schema") and dead["routing_key"] == "deliver"
    rabbit_manager.publish(vhost, "notifications.delivery", "deliver.sms", '{"notification_id": "x"}',
                           properties={"content_type": "application/json"})
    wait_until(lambda: len(rpc.list_event_dead_letters()) == 2, what="the malformed SMS delivery parked")
    assert rpc.list_dead_letters() == []


def _queue(rabbit_manager, vhost, name):
    return next((q for q in rabbit_manager.get_queues(vhost) if q["name"] == name), {})


def test_deliveries_left_in_the_single_queue_and_retry_queues_of_the_earlier_release_are_sent(
        notifications, notifications_config, dispatch, notifications_db, sendgrid, twilio):  # noqa: F811
    """An upgrade loses nothing: a message on `notifications.deliveries`, or expiring from an
    old `notifications.retry.<N>ms` queue (which dead-letters to "deliver"), reaches its channel."""
    import kombu

    from notifications_service.queues import EXCHANGE
    _register(dispatch, notifications_db, 7)
    dispatch("reservations", "reservation_confirmed", reservation_event(7, reservation_id=91))
    email, sms = settled(notifications_db, 2, template="reservation_confirmed")
    with notifications_db.transaction() as session:  # as if they had been queued before the upgrade
        for row in (email, sms):
            session.merge(row).status = "queued"
    old_retry = kombu.Queue("notifications.retry.300ms", exchange=EXCHANGE, routing_key="retry.300ms", durable=True,
                            queue_arguments={"x-dead-letter-exchange": EXCHANGE.name,
                                             "x-dead-letter-routing-key": "deliver"})
    with kombu.Connection(notifications_config["AMQP_URI"]) as connection:
        producer = kombu.Producer(connection)
        producer.publish({"notification_id": email.id}, exchange=EXCHANGE, routing_key="deliver",
                         delivery_mode=2, serializer="json")
        producer.publish({"notification_id": sms.id}, exchange=EXCHANGE, routing_key=old_retry.routing_key,
                         declare=[old_retry], expiration=0.3, delivery_mode=2, serializer="json")
        sendgrid.wait_for(2 + 1)  # welcome, the first confirmation, and this one again
        twilio.wait_for(2 + 1)
    rows = settled(notifications_db, 2, template="reservation_confirmed")
    assert [(r.channel, r.status, r.attempts) for r in rows] == [("email", "sent", 2), ("sms", "sent", 2)]
    old_retry.bind(kombu.Connection(notifications_config["AMQP_URI"]).channel()).delete()


# -- a slow or rate-limiting provider --------------------------------------------------


def test_an_sms_goes_out_at_once_while_a_slow_sendgrid_holds_every_email_worker(
        start_notifications, notifications_config, dispatch, notifications_db, sendgrid, twilio):  # noqa: F811
    notifications_config["NOTIFICATIONS"].update(email_concurrency=2, sms_concurrency=2)
    start_notifications()
    _register(dispatch, notifications_db, 7, phone=None)
    _register(dispatch, notifications_db, 8, email="bob@example.com", phone="+14155550188", notify_email=False)
    sendgrid.answer_after(1.5)  # slow, but inside the 2 s timeout: every email is sent, slowly
    for reservation_id in range(100, 112):  # 12 emails: 9 s of SendGrid at two at a time
        dispatch("reservations", "reservation_confirmed", reservation_event(7, reservation_id=reservation_id))
    wait_until(lambda: len(sendgrid.attempts) >= 1 + 2, what="SendGrid busy with the confirmations")

    started = time.monotonic()
    dispatch("payments", "payment_refunded", payment_event(8, amount=3000))
    [text] = wait_until(lambda: _of(twilio.messages, "30.00 USD"), what="the SMS")
    waited = time.monotonic() - started
    assert waited < 1.0, f"the SMS waited {waited:.1f} s behind the emails"
    emails = stored(notifications_db, template="reservation_confirmed")
    assert sum(e.status == "sent" for e in emails) <= 4  # the emails were still going out, two at a time
    assert text["to"] == "+14155550188"

    rows = wait_until(lambda: (rows := stored(notifications_db, template="reservation_confirmed", status="sent"))
                      and len(rows) == 12 and rows, timeout=20, what="every email sent")
    assert {r.attempts for r in rows} == {1} and len(_of(sendgrid.messages, "is confirmed")) == 12


@pytest.mark.parametrize("concurrency, message", [
    ({"email_concurrency": 6, "sms_concurrency": 4}, "email_concurrency + sms_concurrency (10) must stay below "
                                                     "max_workers (10)"),
    ({"sms_concurrency": 0}, "sms_concurrency must be at least 1, not 0"),
])
def test_channel_bounds_that_could_starve_the_workers_refuse_to_start(
        notifications_db, notifications_config, container_factory, concurrency, message):  # noqa: F811
    notifications_config["NOTIFICATIONS"].update(concurrency)
    container = container_factory(NotificationsService, notifications_config)
    with pytest.raises(ValueError, match=re.escape(message)):
        container.start()


def test_a_rate_limited_email_waits_the_retry_after_sendgrid_asks_for(
        notifications, dispatch, notifications_db, sendgrid, rpc):  # noqa: F811
    _register(dispatch, notifications_db, 7, phone=None)
    sendgrid.fail_next(1, 429, retry_after=2)  # the back-off alone would retry after 0.2 s
    dispatch("payments", "payment_refunded", payment_event(7, amount=3000))

    [email] = settled(notifications_db, 1, template="payment_refunded")
    assert (email.status, email.attempts) == ("sent", 2)
    first, second = sendgrid.attempts[-2:]
    assert second - first >= 2.0, f"retried {second - first:.2f} s later"
    assert sendgrid.failures == [429] and len(_of(sendgrid.messages, "Refund of")) == 1


def test_an_email_sendgrid_takes_but_answers_too_late_is_sent_once_and_shown_as_unknown(
        notifications, dispatch, notifications_db, sendgrid, rpc, probe):  # noqa: F811
    _register(dispatch, notifications_db, 7, phone=None)
    probe.drain(want=1, timeout=2)  # the welcome email's notification_sent
    sendgrid.answer_after(3)  # after the 2 s timeout: SendGrid has the email, we never hear so
    dispatch("reservations", "reservation_cancelled", reservation_event(7, reservation_id=95, refund_amount=0))

    [email] = wait_until(lambda: (rows := stored(notifications_db, template="reservation_cancelled"))
                         and rows[0].status == "unknown" and rows, what="the email's outcome unknown")
    assert email.attempts == 1 and "did not answer within 2 s" in email.last_error
    eventlet.sleep(2.0)  # longer than every retry delay: nothing is tried again
    assert len(_of(sendgrid.messages, "is cancelled")) == 1 and len(sendgrid.attempts) == 2
    assert probe.drain(want=1, timeout=0.5) == []  # neither notification_sent nor _failed

    # Operators see it where they look: by status, and among the dead letters with the reason.
    unknown = rpc.list_notifications({"status": "unknown"})
    assert [(n["id"], n["status"]) for n in unknown["items"]] == [(email.id, "unknown")]
    [dead] = wait_until(rpc.list_dead_letters, what="the dead letter")
    assert dead["notification_id"] == email.id and dead["reason"].startswith("outcome unknown, not resent")
    assert rpc.list_failed() == []

    # Replaying every dead letter (after an outage, say) leaves it parked; naming it resends it.
    sendgrid.answer_after(0)
    assert rpc.replay_dead_letters() == 0
    assert [d["notification_id"] for d in rpc.list_dead_letters()] == [email.id]
    assert stored(notifications_db, id=email.id)[0].status == "unknown"
    assert rpc.replay_dead_letters([email.id]) == 1
    [email] = settled(notifications_db, 1, template="reservation_cancelled")
    assert (email.status, email.attempts) == ("sent", 2)
    assert len(_of(sendgrid.messages, "is cancelled")) == 2


def _partner_confirmed(reservation_id, phone=None):
    """reservation_confirmed as reservations announces a partner booking: no user, a guest."""
    return reservation_event(None, reservation_id=reservation_id, partner="acme-travel",
                             partner_ref=f"ACME-{reservation_id}",
                             guest={"name": "Grace Hopper", "email": "grace@example.com", "phone": phone})


def test_a_partner_bookings_guest_is_told_and_the_log_answers_by_reservation(
        notifications, dispatch, notifications_db, sendgrid, twilio, rpc):  # noqa: F811
    _register(dispatch, notifications_db, 7, email="ann@example.com", phone=None)
    with_phone = _partner_confirmed(81, phone="+14155550177")
    dispatch("reservations", "reservation_confirmed", with_phone)
    dispatch("reservations", "reservation_confirmed", _partner_confirmed(82))
    dispatch("reservations", "reservation_confirmed", reservation_event(7, reservation_id=83))

    rows = settled(notifications_db, 4, template="reservation_confirmed")
    assert sorted((r.reservation_id, r.user_id, r.channel, r.recipient, r.status) for r in rows) == [
        (81, None, "email", "grace@example.com", "sent"), (81, None, "sms", "+14155550177", "sent"),
        (82, None, "email", "grace@example.com", "sent"), (83, 7, "email", "ann@example.com", "sent")]
    [mail] = _of(sendgrid.messages, "Reservation #81")
    assert mail["to"] == "grace@example.com" and mail["text"].startswith("Hello Grace Hopper,")
    assert "Booked through acme-travel (their reference ACME-81)" in mail["text"] and "Paid" not in mail["text"]
    [text] = _of(twilio.messages, "reservation #81")
    assert text["to"] == "+14155550177"
    assert _of(twilio.messages, "reservation #82") == []  # no phone given: email only
    assert sendgrid.errors == [] and twilio.errors == []

    with entrypoint_waiter(notifications, "on_reservation_confirmed"):  # the same event again
        dispatch("reservations", "reservation_confirmed", with_phone)
    eventlet.sleep(0.5)
    assert len(stored(notifications_db, reservation_id=81)) == 2 and len(_of(sendgrid.messages, "#81")) == 1

    told = rpc.list_notifications({"reservation_id": 81})
    assert told["total"] == 2
    assert sorted((n["recipient"], n["template"], n["status"], n["reservation_id"], n["user_id"])
                  for n in told["items"]) == [
        ("+14155550177", "reservation_confirmed", "sent", 81, None),
        ("grace@example.com", "reservation_confirmed", "sent", 81, None)]
    auditor = {"user_id": 9, "permissions": ["notifications:read_any"]}
    assert rpc.list_notifications({"reservation_id": 81, "channel": "email"}, auditor)["total"] == 1
    # Without read_any a caller sees their own only: a guest's rows belong to no user.
    ann = {"user_id": 7, "permissions": []}
    assert rpc.list_notifications({"reservation_id": 81}, ann) == {"items": [], "total": 0}
    assert [n["reservation_id"] for n in rpc.list_notifications({"reservation_id": 83}, ann)["items"]] == [83]
    assert {n["user_id"] for n in rpc.list_notifications({}, ann)["items"]} == {7}
