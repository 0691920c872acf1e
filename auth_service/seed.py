"""Seed data of the auth database: the permission catalogue, the seeded roles and the
first admin (from BOOKIFY_ADMIN_EMAIL / BOOKIFY_ADMIN_PASSWORD). Safe to run again.

The demo customer is announced like a registered one (user_registered in the outbox,
published when auth starts), so notifications knows how to reach them and `make run` shows
their booking emails in the log."""
from auth_service.accounts import contact_of
from auth_service.models import OutboxMessage, User
from auth_service.rbac import SUPER_ADMIN, RoleDirectory
from auth_service.repository import UserRepository
from common.clock import utcnow
from common.storage.outbox import EventRecorder


def _announce(session, user):
    EventRecorder(OutboxMessage).record(session, "user_registered", source="seed", **contact_of(user))


def seed(sessions, passwords, admin_email, admin_password):
    """Returns True when the admin account was created by this run."""
    now = utcnow()
    with sessions.transaction() as session:
        directory = RoleDirectory(session)
        directory.ensure_seeded(now)
        users = UserRepository(session)
        if users.by_email(admin_email) is not None:
            return False
        users.add(User(
            email=admin_email.lower(), password_hash=passwords.hash(admin_password),
            name="Administrator", created_at=now, updated_at=now,
            roles=[directory.roles.by_name(SUPER_ADMIN)]))
        return True


DEMO_CUSTOMER = ("demo@bookify.local", "demo-password", "Demo Customer")


def seed_demo(sessions, passwords, default_role="Free"):
    """A demo customer for local runs (`make run`), never for production seeds."""
    email, password, name = DEMO_CUSTOMER
    now = utcnow()
    with sessions.transaction() as session:
        users = UserRepository(session)
        if users.by_email(email) is not None:
            return False
        user = users.add(User(email=email, password_hash=passwords.hash(password), name=name,
                              created_at=now, updated_at=now,
                              roles=[RoleDirectory(session).roles.by_name(default_role)]))
        _announce(session, user)
        return True
