"""Open `watch_reservations` streams of one gRPC gateway process: who watches what, the limit
per user, which reservation each may see, and ending them when their caller's rights lapse.

A watch is fed, not polled: the gateway hears reservations' events, fetches the reservation
once, and offers it to every open watch (`WatchRegistry.deliver`). A watch waits on its own
queue, so an idle one costs a parked greenthread and no worker. What a watch may see is
fixed when it opens (its scope):

* `everyone`: its caller held `reservations:read_any`; it sees every reservation, partner
  bookings (no user) included. It ends with PERMISSION_DENIED once that permission is gone.
* `own`: anybody else; it sees the caller's own reservations, which needs no permission,
  so only the end of the session ends it.

Whatever the scope, a watch ends with UNAUTHENTICATED when its session ends (logout, refresh
reuse, a deactivated user) or its access token expires: the client signs in or refreshes and
watches again, and gets the current state first, as on any new watch.
"""
import time
from datetime import datetime

import nameko
from eventlet.queue import Empty, LightQueue
from nameko.extensions import DependencyProvider

from common.config import section
from common.errors import Forbidden, RateLimited, ServiceUnavailable, Unauthenticated

READ_ANY = "reservations:read_any"
DEFAULT_MAX_PER_USER = 2
DEFAULT_RECHECK_SECONDS = 30.0


class _End:
    """The last item of a watch's queue: the error to end the stream with, or None."""

    __slots__ = ("error",)

    def __init__(self, error):
        self.error = error


class Watch:
    """One open stream: its caller, its scope and place, and the reservations queued for it."""

    def __init__(self, principal, place_id=None, expires_at=None, clock=time.time):
        self.user_id = principal.user_id
        self.session_id = principal.session_id
        self.everyone = principal.can(READ_ANY)
        self.place_id = place_id
        self.expires_at = expires_at  # the access token's expiry (Unix time), None: never
        self.confirmed_at = time.monotonic()  # when the caller's rights were last confirmed
        self.clock = clock
        self.ended = False
        self._queue = LightQueue()
        self._seen = {}  # reservation id -> (updated_at, status) last queued

    @property
    def scope(self):
        return "everyone" if self.everyone else "own"

    def may_see(self, reservation):
        if self.place_id is not None and reservation["place_id"] != self.place_id:
            return False
        return self.everyone or reservation["user_id"] == self.user_id

    def offer(self, reservation):
        """Queue `reservation` if this watch may see it and it is newer than the one it has."""
        if self.ended or not self.may_see(reservation):
            return False
        version = (datetime.fromisoformat(reservation["updated_at"]), reservation["status"])
        seen = self._seen.get(reservation["id"])
        # An older state than the one sent (a snapshot taken before an event) is not news.
        if seen is not None and (version == seen or version[0] < seen[0]):
            return False
        self._seen[reservation["id"]] = version
        self._queue.put(reservation)
        return True

    def allows(self, principal):
        """The error that ends this watch for a caller who now has `principal`'s rights, or None."""
        if self.everyone and not principal.can(READ_ANY):
            return Forbidden("This watch showed everyone's reservations, which needs the "
                             f"'{READ_ANY}' permission", {"permission": READ_ANY})
        return None

    def confirmed(self):
        self.confirmed_at = time.monotonic()

    def end(self, error=None):
        """End the stream: with `error` (a Bookify error), or normally with None."""
        if not self.ended:
            self.ended = True
            self._queue.put(_End(error))

    def reservations(self):
        """The reservations to send, as they come, until the watch ends (raising its error)."""
        while True:
            timeout = None if self.expires_at is None else max(self.expires_at - self.clock(), 0)
            try:
                item = self._queue.get(timeout=timeout)
            except Empty:
                self.end(Unauthenticated("The access token has expired; refresh it and watch again"))
                continue
            if isinstance(item, _End):
                if item.error is not None:
                    raise item.error
                return
            yield item


class WatchRegistry:
    """The open watches of this process, with at most `max_per_user` per user."""

    def __init__(self, max_per_user=DEFAULT_MAX_PER_USER, recheck_seconds=DEFAULT_RECHECK_SECONDS,
                 clock=time.time):
        self.max_per_user = max_per_user
        self.recheck_seconds = recheck_seconds
        self.clock = clock
        self._watches = set()

    def __len__(self):
        return len(self._watches)

    def open(self, principal, place_id=None, expires_at=None):
        """A new watch for `principal`; RateLimited (RESOURCE_EXHAUSTED) beyond the limit."""
        mine = sum(1 for watch in self._watches if watch.user_id == principal.user_id)
        if mine >= self.max_per_user:
            raise RateLimited(f"At most {self.max_per_user} open watches per user; end one first",
                              {"open_watches": mine, "limit": self.max_per_user})
        watch = Watch(principal, place_id, expires_at, self.clock)
        self._watches.add(watch)
        return watch

    def close(self, watch):
        """Forget `watch` (its stream has ended or its client has gone)."""
        watch.end()
        self._watches.discard(watch)

    def interested(self, user_id, place_id):
        """Whether any open watch may see a reservation of `user_id` (None: a partner's) at `place_id`."""
        probe = {"user_id": user_id, "place_id": place_id}
        return any(watch.may_see(probe) for watch in self._watches if not watch.ended)

    def deliver(self, reservation):
        """Offer `reservation` to every open watch; how many queued it."""
        return sum(watch.offer(reservation) for watch in list(self._watches))

    def sessions(self, user_id=None, stale_only=False):
        """{(user_id, session_id)} of the open watches (of `user_id`, or everyone's); with
        `stale_only`, only those whose rights were confirmed longer than `recheck_seconds` ago."""
        oldest = time.monotonic() - self.recheck_seconds
        return {(watch.user_id, watch.session_id) for watch in self._watches
                if not watch.ended and (user_id is None or watch.user_id == user_id)
                and (not stale_only or watch.confirmed_at <= oldest)}

    def stale_sessions_seeing(self, reservation):
        """Sessions of the watches that would get `reservation` but whose rights are stale."""
        oldest = time.monotonic() - self.recheck_seconds
        return {(watch.user_id, watch.session_id) for watch in self._watches
                if not watch.ended and watch.confirmed_at <= oldest and watch.may_see(reservation)}

    def session_ended(self, session_id, error):
        """End every watch of `session_id` with `error`; how many."""
        ended = [watch for watch in self._watches if watch.session_id == session_id and not watch.ended]
        for watch in ended:
            watch.end(error)
        return len(ended)

    def rights_are(self, principal):
        """`principal` is what its session may do now: end the watches of that session it no
        longer allows, mark the rest confirmed; how many ended."""
        ended = 0
        for watch in list(self._watches):
            if watch.session_id != principal.session_id or watch.user_id != principal.user_id or watch.ended:
                continue
            error = watch.allows(principal)
            if error is None:
                watch.confirmed()
            else:
                watch.end(error)
                ended += 1
        return ended

    def end_all(self, error):
        for watch in list(self._watches):
            watch.end(error)


class Watches(DependencyProvider):
    """The process's `WatchRegistry`, shared by every worker (the gRPC calls that open
    watches, the event handlers that feed and end them). Settings: GRPC_WATCH in config.yaml."""

    def setup(self):
        settings = section(nameko.config, "GRPC_WATCH")
        max_per_user = int(settings.get("max_per_user", DEFAULT_MAX_PER_USER))
        recheck_seconds = float(settings.get("recheck_seconds", DEFAULT_RECHECK_SECONDS))
        if max_per_user < 1 or recheck_seconds <= 0:
            raise ValueError("GRPC_WATCH: max_per_user must be at least 1 and recheck_seconds positive")
        self.registry = WatchRegistry(max_per_user, recheck_seconds)

    def stop(self):
        self.registry.end_all(ServiceUnavailable("The server is shutting down; watch again"))

    def kill(self):
        self.stop()

    def get_dependency(self, worker_ctx):
        return self.registry
