"""Refresh-token rotation: each token is spent once; reuse revokes the whole session."""
from datetime import timedelta

from auth_service.models import User
from auth_service.sessions import RefreshSessions, fingerprint


def _user(session, now):
    user = User(email="r@example.com", password_hash="x", created_at=now, updated_at=now)
    session.add(user)
    session.flush()
    return user.id


def test_rotation_spends_the_old_token_and_keeps_the_session(auth_db, clock):
    with auth_db.transaction() as session:
        user_id = _user(session, clock())
        session_id, first = RefreshSessions(session, 3600).start(user_id, clock())
    with auth_db.transaction() as session:
        rotation = RefreshSessions(session, 3600).rotate(first, clock())
    assert rotation.ok and rotation.session_id == session_id and rotation.user_id == user_id
    assert rotation.refresh_token != first


def test_reusing_a_spent_token_revokes_the_session(auth_db, clock):
    with auth_db.transaction() as session:
        user_id = _user(session, clock())
        session_id, first = RefreshSessions(session, 3600).start(user_id, clock())
    with auth_db.transaction() as session:
        second = RefreshSessions(session, 3600).rotate(first, clock()).refresh_token
    with auth_db.transaction() as session:
        reuse = RefreshSessions(session, 3600).rotate(first, clock())
    assert reuse.reused and not reuse.ok
    with auth_db.transaction() as session:
        sessions = RefreshSessions(session, 3600)
        assert not sessions.rotate(second, clock()).ok  # the thief's successor dies too
        assert not sessions.is_active(session_id, user_id, clock())


def test_expired_and_unknown_tokens_do_not_rotate(auth_db, clock):
    with auth_db.transaction() as session:
        user_id = _user(session, clock())
        _, token = RefreshSessions(session, 60).start(user_id, clock())
    with auth_db.transaction() as session:
        sessions = RefreshSessions(session, 60)
        assert not sessions.rotate(token, clock() + timedelta(seconds=61)).ok
        assert not sessions.rotate("never-issued", clock()).ok


def test_only_a_hash_of_the_token_is_stored(auth_db, clock):
    from auth_service.models import RefreshToken

    with auth_db.transaction() as session:
        user_id = _user(session, clock())
        _, token = RefreshSessions(session, 60).start(user_id, clock())
    with auth_db.transaction() as session:
        stored = session.query(RefreshToken).one()
        assert stored.token_hash == fingerprint(token) and token not in stored.token_hash


def test_revoke_ends_the_session(auth_db, clock):
    with auth_db.transaction() as session:
        user_id = _user(session, clock())
        session_id, token = RefreshSessions(session, 3600).start(user_id, clock())
        assert RefreshSessions(session, 3600).is_active(session_id, user_id, clock())
    with auth_db.transaction() as session:
        RefreshSessions(session, 3600).revoke(session_id, clock())
    with auth_db.transaction() as session:
        assert not RefreshSessions(session, 3600).is_active(session_id, user_id, clock())
        assert not RefreshSessions(session, 3600).rotate(token, clock()).ok


def test_a_session_is_active_only_for_its_own_user(auth_db, clock):
    with auth_db.transaction() as session:
        owner = _user(session, clock())
        other = User(email="o@example.com", password_hash="x", created_at=clock(), updated_at=clock())
        session.add(other)
        session.flush()
        other_id = other.id
        session_id, _ = RefreshSessions(session, 3600).start(owner, clock())
    with auth_db.transaction() as session:
        sessions = RefreshSessions(session, 3600)
        assert sessions.is_active(session_id, owner, clock())
        assert not sessions.is_active(session_id, other_id, clock())
