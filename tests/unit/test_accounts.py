"""Account use-cases end to end in the domain: registration, login throttling,
refresh rotation, logout, admin-made users; each with its events in the outbox."""
import json

import eventlet
import pytest
import sqlalchemy as sa

from auth_service.models import OutboxMessage
from common.errors import Conflict, Forbidden, RateLimited, ServiceUnavailable, Unauthenticated, ValidationError

CUSTOMER = {"email": "Ann@Example.com", "password": "password-123", "name": "Ann"}


def outbox(auth_db):
    with auth_db.transaction() as session:
        return [(row.event_type, json.loads(row.payload)) for row in session.scalars(
            sa.select(OutboxMessage).order_by(OutboxMessage.id))]


def test_register_gives_the_default_role_and_records_user_registered(accounts, auth_db):
    user = accounts.register(CUSTOMER)
    assert user.email == "ann@example.com"
    assert [role.name for role in user.roles] == ["Free"]
    [(event_type, body)] = outbox(auth_db)
    assert event_type == "user_registered"
    assert body["user_id"] == user.id and body["email"] == "ann@example.com" and body["name"] == "Ann"
    assert set(body) >= {"event_id", "occurred_at", "phone"}


def test_registration_without_its_default_role_is_unavailable_not_a_crash(accounts, auth_db):
    from auth_service.models import Role

    with auth_db.transaction() as session:
        session.execute(sa.update(Role).where(Role.name == "Free").values(name="Renamed behind our back"))
    with pytest.raises(ServiceUnavailable):
        accounts.register(CUSTOMER)
    assert outbox(auth_db) == []


def test_duplicate_email_is_a_conflict_and_records_nothing(accounts, auth_db):
    accounts.register(CUSTOMER)
    with pytest.raises(Conflict):
        accounts.register(dict(CUSTOMER, email="ANN@example.com"))
    assert len(outbox(auth_db)) == 1


def test_login_issues_a_verifiable_access_token(accounts, tokens):
    user = accounts.register(CUSTOMER)
    pair = accounts.login("ann@example.com", "password-123")
    claims = tokens.verify_access_token(pair["access_token"])
    assert claims.user_id == user.id
    assert pair["token_type"] == "Bearer" and pair["expires_in"] == 900
    assert accounts.principal(user.id, claims.session_id)["permissions"] == ["reservations:create"]


def test_wrong_password_and_unknown_email_are_the_same_401(accounts):
    accounts.register(CUSTOMER)
    with pytest.raises(Unauthenticated) as wrong:
        accounts.login("ann@example.com", "nope-nope")
    with pytest.raises(Unauthenticated) as unknown:
        accounts.login("nobody@example.com", "nope-nope")
    assert wrong.value.message == unknown.value.message


def test_repeated_failures_lock_the_account_then_it_recovers(accounts, clock):
    accounts.register(CUSTOMER)
    for _ in range(3):
        with pytest.raises(Unauthenticated):
            accounts.login("ann@example.com", "wrong-password")
    with pytest.raises(RateLimited) as locked:
        accounts.login("ann@example.com", "password-123")  # even the right password waits
    assert 0 < locked.value.details["retry_after"] <= 301
    clock.advance(seconds=301)
    assert accounts.login("ann@example.com", "password-123")["access_token"]


def test_failures_outside_the_window_do_not_add_up(accounts, clock):
    accounts.register(CUSTOMER)
    for _ in range(2):
        with pytest.raises(Unauthenticated):
            accounts.login("ann@example.com", "wrong-password")
    clock.advance(seconds=601)
    with pytest.raises(Unauthenticated):
        accounts.login("ann@example.com", "wrong-password")
    assert accounts.login("ann@example.com", "password-123")


def test_refresh_rotates_and_a_reused_token_ends_the_session(accounts, auth_db, tokens, clock):
    user = accounts.register(CUSTOMER)
    first = accounts.login("ann@example.com", "password-123")
    second = accounts.refresh(first["refresh_token"])
    clock.advance(seconds=accounts.policy.refresh_grace_seconds + 1)
    with pytest.raises(Unauthenticated):
        accounts.refresh(first["refresh_token"])
    with pytest.raises(Unauthenticated):
        accounts.refresh(second["refresh_token"])
    session_id = tokens.verify_access_token(second["access_token"]).session_id
    with pytest.raises(Unauthenticated):
        accounts.principal(user.id, session_id)
    assert ("session_revoked", session_id) in [(t, b.get("session_id")) for t, b in outbox(auth_db)]


def test_logout_ends_the_session(accounts, tokens):
    user = accounts.register(CUSTOMER)
    pair = accounts.login("ann@example.com", "password-123")
    session_id = tokens.verify_access_token(pair["access_token"]).session_id
    accounts.logout(user.id, session_id)
    with pytest.raises(Unauthenticated):
        accounts.principal(user.id, session_id)
    with pytest.raises(Unauthenticated):
        accounts.refresh(pair["refresh_token"])


def test_admin_creates_user_with_role_by_id_and_new_role_by_name(accounts, auth_db):
    from auth_service.rbac import RoleDirectory

    with auth_db.transaction() as session:
        moderator_id = RoleDirectory(session).roles.by_name("Moderator").id
    user = accounts.create_user(
        {"email": "mod@example.com", "password": "password-123",
         "roles": [{"id": moderator_id}, {"name": "Night Shift", "category": "admin"}]}, None)
    assert [(r.name, r.category) for r in user.roles] == [("Moderator", "admin"), ("Night Shift", "admin")]
    assert "users:read" in user.permissions


def test_set_roles_cannot_strip_someone_above_you(accounts, auth_db):
    from auth_service.repository import UserRepository

    with auth_db.transaction() as session:
        admin_id = UserRepository(session).by_email("admin@bookify.test").id
    moderator_actor = {"user_id": 99, "permissions": ["users:manage_roles", "reservations:create"]}
    with pytest.raises(Forbidden):
        accounts.set_roles(admin_id, [{"name": "Free"}], moderator_actor)


def test_set_roles_changes_permissions_and_records_the_change(accounts, auth_db, tokens):
    user = accounts.register(CUSTOMER)
    pair = accounts.login("ann@example.com", "password-123")
    session_id = tokens.verify_access_token(pair["access_token"]).session_id
    accounts.set_roles(user.id, [{"name": "Moderator"}], None)
    assert "users:read" in accounts.principal(user.id, session_id)["permissions"]
    assert ("user_roles_changed", user.id) in [(t, b.get("user_id")) for t, b in outbox(auth_db)]


def test_unknown_role_id_is_a_validation_error(accounts):
    with pytest.raises(ValidationError):
        accounts.create_user({"email": "x@example.com", "password": "password-123",
                              "roles": [{"id": 4242}]}, None)


def test_a_session_cannot_be_borrowed_by_another_subject(accounts, tokens):
    """A token naming the first user but carrying the second user's own session is refused:
    the session must belong to the token's subject."""
    first = accounts.register(CUSTOMER)
    accounts.register(dict(CUSTOMER, email="bob@example.com", name="Bob"))
    pair = accounts.login("bob@example.com", "password-123")
    bobs_session = tokens.verify_access_token(pair["access_token"]).session_id
    with pytest.raises(Unauthenticated):
        accounts.principal(first.id, bobs_session)


def test_a_refresh_replayed_within_the_grace_window_gets_the_same_pair(accounts, auth_db, tokens, clock):
    user = accounts.register(CUSTOMER)
    first = accounts.login("ann@example.com", "password-123")
    second = accounts.refresh(first["refresh_token"])
    clock.advance(seconds=accounts.policy.refresh_grace_seconds)
    assert accounts.refresh(first["refresh_token"]) == second  # a retry, not a theft
    third = accounts.refresh(second["refresh_token"])  # the pair still works
    session_id = tokens.verify_access_token(third["access_token"]).session_id
    assert accounts.principal(user.id, session_id)["user_id"] == user.id
    assert "session_revoked" not in [topic for topic, _ in outbox(auth_db)]


def test_parallel_refreshes_of_one_token_all_get_the_same_working_pair(accounts, auth_db, tokens):
    user = accounts.register(CUSTOMER)
    first = accounts.login("ann@example.com", "password-123")
    pool = eventlet.GreenPool(8)
    pairs = list(pool.imap(lambda _: accounts.refresh(first["refresh_token"]), range(8)))
    assert all(pair == pairs[0] for pair in pairs)
    assert pairs[0]["refresh_token"] != first["refresh_token"]
    after = accounts.refresh(pairs[0]["refresh_token"])
    session_id = tokens.verify_access_token(after["access_token"]).session_id
    assert accounts.principal(user.id, session_id)["user_id"] == user.id
    assert "session_revoked" not in [topic for topic, _ in outbox(auth_db)]


def test_the_stored_successor_reveals_no_token_without_the_spent_one(accounts, auth_db):
    from auth_service.models import RefreshToken

    accounts.register(CUSTOMER)
    first = accounts.login("ann@example.com", "password-123")
    second = accounts.refresh(first["refresh_token"])
    with auth_db.transaction() as session:
        sealed = [row.successor_sealed for row in session.query(RefreshToken) if row.successor_sealed]
    assert len(sealed) == 1
    assert second["refresh_token"] not in sealed[0] and second["access_token"] not in sealed[0]
