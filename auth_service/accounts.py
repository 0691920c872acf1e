"""Account use-cases: registration, login with throttling, refresh rotation, logout,
profiles, admin-managed users and their roles. Each use-case is one transaction."""
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.exc import IntegrityError

from auth_service.models import User
from auth_service.passwords import Passwords
from auth_service.rbac import Keyholders, RoleDirectory
from auth_service.repository import UserRepository
from auth_service.sessions import RefreshSessions
from auth_service.throttling import Throttle, ThrottlePolicy
from common.clock import utcnow
from common.contracts.auth import normalise_email
from common.errors import Conflict, NotFound, ServiceUnavailable, Unauthenticated
from common.storage.engines import UnitsOfWork
from common.storage.outbox import EventRecorder
from common.tokens import TokenCodec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AccountPolicy:
    default_role: str = "Free"
    refresh_ttl_seconds: int = 30 * 24 * 3600
    # A spent refresh token presented again this soon gets the same new pair (not a revocation).
    refresh_grace_seconds: int = 10
    throttle: ThrottlePolicy = field(default_factory=ThrottlePolicy)


@dataclass
class Accounts:
    sessions: UnitsOfWork
    events: EventRecorder
    tokens: TokenCodec
    passwords: Passwords
    policy: AccountPolicy
    clock: Callable[[], datetime] = utcnow

    # -- self-service -------------------------------------------------------------------

    def register(self, fields, client_address=None):
        """A customer signs up; they always get the default customer role, never a choice.
        Counted against the client's address first, before any hashing (throttling)."""
        if client_address is not None:  # the console's calls meet no per-address limit
            with self.sessions.transaction() as session:
                Throttle(session, self.policy.throttle).reserve_registration(client_address, self.clock())
        password_hash = self.passwords.hash(fields["password"])
        with self.sessions.transaction() as session:
            role = RoleDirectory(session).roles.by_name(self.policy.default_role)
            if role is None:  # a misconfigured default_role: the seed never made it
                log.error("default role %r missing: run the seed or fix AUTH.default_role", self.policy.default_role)
                raise ServiceUnavailable("Registration is unavailable; try again later", {"service": "auth"})
            return self._create_user(session, fields, password_hash, [role], source="self")

    def login(self, email, password, client_address=None):
        """Tokens for a right email (normalised by the schema) and password. The attempt takes
        its throttling slot before the password is checked; a success hands it back."""
        email, now = normalise_email(email), self.clock()
        with self.sessions.transaction() as session:
            Throttle(session, self.policy.throttle).reserve_login(email, client_address, now)
            user = UserRepository(session).by_email(email)
            password_hash = user.password_hash if user is not None else None
        # The slow hash runs outside any transaction so it holds no database lock.
        if not (self.passwords.verify(password_hash, password) and user.is_active):
            raise Unauthenticated("Wrong email or password")  # the slot stays counted
        with self.sessions.transaction() as session:
            Throttle(session, self.policy.throttle).release_login(email, client_address)
            if self.passwords.needs_rehash(password_hash):
                UserRepository(session).get(user.id).password_hash = self.passwords.hash(password)
            session_id, refresh_token = self._sessions(session).start(user.id, now)
        return self._token_pair(user.id, session_id, refresh_token)

    def purge_throttling(self):
        """Delete throttling rows whose window and lockout are over (a timer calls it)."""
        with self.sessions.transaction() as session:
            return Throttle(session, self.policy.throttle).purge(self.clock())

    def refresh(self, refresh_token):
        now = self.clock()
        pair = None
        with self.sessions.transaction() as session:
            sessions = self._sessions(session)
            rotation = sessions.rotate(refresh_token, now)
            if rotation.reused:
                self.events.record(session, "session_revoked",
                                   user_id=rotation.user_id, session_id=rotation.session_id)
            elif rotation.ok and self._active_user(session, rotation.user_id) is not None:
                pair = rotation.replayed_pair
                if pair is None:
                    pair = self._token_pair(rotation.user_id, rotation.session_id, rotation.refresh_token)
                    sessions.remember(refresh_token, pair)
        # Raised after commit: a detected reuse must stay revoked.
        if pair is None:
            raise Unauthenticated("Refresh token is invalid, expired or already used")
        return pair

    def logout(self, user_id, session_id):
        with self.sessions.transaction() as session:
            self._sessions(session).revoke(session_id, self.clock())
            self.events.record(session, "session_revoked", user_id=user_id, session_id=session_id)

    def principal(self, user_id, session_id):
        """Who the access token's holder is now: permissions from their current roles.
        Refused once the session is revoked or the user deactivated."""
        with self.sessions.transaction() as session:
            user = self._active_user(session, user_id)
            if user is None or not self._sessions(session).is_active(session_id, user.id, self.clock()):
                raise Unauthenticated("Session has ended")
            return {"user_id": user.id, "session_id": session_id, "permissions": user.permissions}

    def get_user(self, user_id):
        with self.sessions.transaction() as session:
            return self._user(session, user_id)

    def update_profile(self, user_id, changes):
        with self.sessions.transaction() as session:
            user = self._user(session, user_id)
            for name, value in changes.items():
                setattr(user, name, value)
            user.updated_at = self.clock()
            self.events.record(session, "user_profile_changed", **contact_of(user))
            return user

    # -- administration -----------------------------------------------------------------

    def create_user(self, fields, actor):
        """An admin creates a user with roles by id (existing) or by name (created if missing)."""
        password_hash = self.passwords.hash(fields["password"])
        with self.sessions.transaction() as session:
            roles = RoleDirectory(session).resolve(fields.get("roles", []), actor, self.clock())
            return self._create_user(session, fields, password_hash, roles, source="admin")

    def set_roles(self, user_id, refs, actor):
        with self.sessions.transaction() as session, Keyholders(session).kept():
            user = self._user(session, user_id)
            directory = RoleDirectory(session)
            # Taking roles away is granting in reverse: both sides must be within the actor's rights.
            directory.assert_grantable(user.permissions, actor)
            user.roles = directory.resolve(refs, actor, self.clock())
            user.updated_at = self.clock()
            self.events.record(session, "user_roles_changed", user_id=user.id)
            return user

    def deactivate(self, user_id, reason, actor):
        """The user can no longer log in or refresh, and every session of theirs ends now
        (one `session_revoked` each, so gateways drop what they cached). Refused (Conflict)
        when it would leave no active keyholder; nobody deactivates a user above their rights."""
        with self.sessions.transaction() as session, Keyholders(session).kept():
            user = self._user(session, user_id)
            RoleDirectory.assert_grantable(user.permissions, actor)
            now = self.clock()
            if user.is_active:
                user.is_active = False
                user.updated_at = now
            ended = self._end_sessions(session, user.id, now)
        log.info("user %s deactivated (%d sessions ended) by %s: %s", user_id, len(ended),
                 "operator" if actor is None else f"user {actor['user_id']}", reason or "no reason given")
        return user

    def reactivate(self, user_id, actor):
        """The user may log in again (their old sessions stay ended)."""
        with self.sessions.transaction() as session:
            user = self._user(session, user_id)
            RoleDirectory.assert_grantable(user.permissions, actor)
            if not user.is_active:
                user.is_active = True
                user.updated_at = self.clock()
            return user

    def end_sessions(self, user_id, actor):
        """End every live session of a user (they can log in again); returns how many ended."""
        with self.sessions.transaction() as session:
            user = self._user(session, user_id)
            RoleDirectory.assert_grantable(user.permissions, actor)
            return len(self._end_sessions(session, user.id, self.clock()))

    def list_users(self, limit, offset, email=None, role=None):
        with self.sessions.transaction() as session:
            return UserRepository(session).search(limit, offset, email=email, role=role)

    # -- internals ----------------------------------------------------------------------

    def _create_user(self, session, fields, password_hash, roles, source):
        users = UserRepository(session)
        email = normalise_email(fields["email"])  # the schema did; the seed did not
        if users.by_email(email) is not None:
            raise Conflict("An account with this email exists", {"email": ["Already registered."]})
        now = self.clock()
        try:
            with session.begin_nested():
                user = users.add(User(
                    email=email, password_hash=password_hash, name=fields.get("name"),
                    phone=fields.get("phone"), created_at=now, updated_at=now, roles=roles))
        except IntegrityError:  # a concurrent registration of the same email won
            raise Conflict("An account with this email exists", {"email": ["Already registered."]}) from None
        self.events.record(session, "user_registered", source=source, **contact_of(user))
        return user

    def _user(self, session, user_id):
        user = UserRepository(session).get(user_id)
        if user is None:
            raise NotFound("User not found", {"id": user_id})
        return user

    def _end_sessions(self, session, user_id, now):
        ended = self._sessions(session).end_all(user_id, now)
        for session_id in ended:
            self.events.record(session, "session_revoked", user_id=user_id, session_id=session_id)
        return ended

    def _active_user(self, session, user_id):
        user = UserRepository(session).get(user_id)
        return user if user is not None and user.is_active else None

    def _sessions(self, session):
        return RefreshSessions(session, self.policy.refresh_ttl_seconds, self.policy.refresh_grace_seconds)

    def _token_pair(self, user_id, session_id, refresh_token):
        return {
            "access_token": self.tokens.issue_access_token(user_id, session_id),
            "refresh_token": refresh_token,
            "token_type": "Bearer",
            "expires_in": self.tokens.settings.access_ttl_seconds,
        }


def contact_of(user):
    """What other services may know of a user to reach them (events carry it to them)."""
    return {"user_id": user.id, "email": user.email, "name": user.name, "phone": user.phone,
            "notify_email": user.notify_email, "notify_sms": user.notify_sms}
