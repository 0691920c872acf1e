"""The rules of gRPC watches (gateway/watches.py): what each may see, the limit per user, and
how a lapsed session or permission ends them."""
import time

import pytest

from common import errors
from common.permissions import Principal
from gateway.watches import READ_ANY, WatchRegistry

CUSTOMER = Principal(7, "s-7", frozenset({"reservations:create"}))
MODERATOR = Principal(8, "s-8", frozenset({READ_ANY}))


def reservation(id=1, user_id=7, place_id=1, status="confirmed", updated_at="2027-01-01T10:00:00+00:00"):
    return {"id": id, "user_id": user_id, "place_id": place_id, "status": status, "updated_at": updated_at}


def queued(watch):
    """What the watch would send now (without waiting for more)."""
    out = []
    while not watch._queue.empty():
        item = watch._queue.get()
        if not isinstance(item, dict):
            watch._queue.put(item)
            break
        out.append(item)
    return out


def test_a_customer_sees_only_their_own_and_a_moderator_everyones_partner_bookings_included():
    registry = WatchRegistry()
    mine, everyone = registry.open(CUSTOMER), registry.open(MODERATOR)
    assert (mine.scope, everyone.scope) == ("own", "everyone")
    theirs, partner = reservation(id=2, user_id=9), reservation(id=3, user_id=None)
    assert registry.deliver(reservation()) == 2
    assert registry.deliver(theirs) == 1
    assert registry.deliver(partner) == 1
    assert [item["id"] for item in queued(mine)] == [1]
    assert [item["id"] for item in queued(everyone)] == [1, 2, 3]


def test_a_watch_of_one_place_sees_that_place_only():
    registry = WatchRegistry()
    watch = registry.open(MODERATOR, place_id=5)
    assert not registry.interested(7, 1) and registry.interested(7, 5) and registry.interested(None, 5)
    registry.deliver(reservation(id=1, place_id=1))
    registry.deliver(reservation(id=2, place_id=5))
    assert [item["id"] for item in queued(watch)] == [2]


def test_nobody_is_interested_in_what_no_watch_may_see():
    registry = WatchRegistry()
    registry.open(CUSTOMER)
    assert registry.interested(7, 1)
    assert not registry.interested(9, 1) and not registry.interested(None, 1)


def test_the_same_state_twice_or_an_older_one_is_not_news():
    registry = WatchRegistry()
    watch = registry.open(CUSTOMER)
    first = reservation(updated_at="2027-01-01T10:00:00+00:00")
    later = reservation(status="cancelled", updated_at="2027-01-01T10:05:00+00:00")
    assert watch.offer(first) and not watch.offer(dict(first))
    assert watch.offer(later)
    assert not watch.offer(first)  # a snapshot read before the cancel arrives after it
    assert [item["status"] for item in queued(watch)] == ["confirmed", "cancelled"]


def test_at_most_max_per_user_watches_and_closing_one_frees_its_place():
    registry = WatchRegistry(max_per_user=2)
    first, _ = registry.open(CUSTOMER), registry.open(Principal(7, "other-session"))
    with pytest.raises(errors.RateLimited) as refused:
        registry.open(CUSTOMER)
    assert refused.value.details == {"open_watches": 2, "limit": 2}
    registry.open(MODERATOR)  # another user is not counted against this one
    registry.close(first)
    assert registry.open(CUSTOMER)


def test_an_ended_session_ends_its_watches_with_unauthenticated():
    registry = WatchRegistry()
    watch, other = registry.open(CUSTOMER), registry.open(MODERATOR)
    registry.deliver(reservation())
    assert registry.session_ended("s-7", errors.Unauthenticated("The session has ended")) == 1
    assert registry.deliver(reservation(id=2)) == 1  # the moderator's; the ended watch takes nothing
    stream = watch.reservations()
    assert next(stream)["id"] == 1  # what was queued before the end still goes out
    with pytest.raises(errors.Unauthenticated):
        next(stream)
    assert not other.ended


def test_losing_read_any_ends_a_watch_of_everyone_but_not_one_of_ones_own():
    registry = WatchRegistry()
    everyone = registry.open(MODERATOR)
    demoted = Principal(8, "s-8", frozenset({"reservations:create"}))
    own = registry.open(Principal(8, "s-8", frozenset()))  # opened after the demotion: own scope
    assert registry.rights_are(demoted) == 1
    with pytest.raises(errors.Forbidden) as ended:
        next(everyone.reservations())
    assert ended.value.details == {"permission": READ_ANY}
    assert not own.ended


def test_rights_of_another_session_leave_a_watch_alone():
    registry = WatchRegistry()
    watch = registry.open(MODERATOR)
    assert registry.rights_are(Principal(8, "another-session", frozenset())) == 0
    assert not watch.ended


def test_a_watch_ends_when_its_access_token_expires():
    now = [1000.0]
    registry = WatchRegistry(clock=lambda: now[0])
    watch = registry.open(CUSTOMER, expires_at=1000.2)
    started = time.monotonic()
    with pytest.raises(errors.Unauthenticated) as ended:
        now[0] = 1001.0
        next(watch.reservations())
    assert "expired" in ended.value.message
    assert time.monotonic() - started < 1


def test_rights_confirmed_too_long_ago_are_stale_until_confirmed_again():
    registry = WatchRegistry(recheck_seconds=0.05)
    watch = registry.open(MODERATOR)
    registry.open(CUSTOMER)
    assert registry.stale_sessions_seeing(reservation(user_id=9)) == set()
    time.sleep(0.1)
    assert registry.stale_sessions_seeing(reservation(user_id=9)) == {(8, "s-8")}
    assert registry.sessions(stale_only=True) == {(8, "s-8"), (7, "s-7")}
    registry.rights_are(MODERATOR)
    assert registry.stale_sessions_seeing(reservation(user_id=9)) == set()
    assert not watch.ended


def test_closing_forgets_the_watch_and_ends_its_stream_quietly():
    registry = WatchRegistry()
    watch = registry.open(CUSTOMER)
    registry.close(watch)
    assert len(registry) == 0
    assert list(watch.reservations()) == []
