"""Roles as data: resolution of role references, CRUD rules, no privilege escalation."""
import pytest

from auth_service.models import User
from auth_service.rbac import SEEDED_ROLES, RoleDirectory
from common.errors import Conflict, Forbidden, NotFound, ValidationError
from common.permissions import PERMISSIONS

ADMIN_ACTOR = {"user_id": 1, "permissions": SEEDED_ROLES["Admin"][1]}


def test_seed_creates_every_role_and_super_admin_holds_everything(auth_db, clock):
    with auth_db.transaction() as session:
        roles = {role.name: role for role, _ in RoleDirectory(session).listing(100, 0).items}
    assert set(SEEDED_ROLES) <= set(roles)
    assert set(roles["Super Admin"].permissions) == set(PERMISSIONS)
    assert {roles[name].category for name in ("Free", "Pro", "Premium", "Enterprise")} == {"customer"}
    assert {roles[name].category for name in ("Super Admin", "Admin", "Moderator")} == {"admin"}


def test_seed_again_keeps_admin_edits_to_seeded_roles(auth_db, clock):
    with auth_db.transaction() as session:
        directory = RoleDirectory(session)
        pro = directory.roles.by_name("Pro")
        directory.update(pro.id, {"permissions": ["reservations:create", "users:read"]}, None)
    with auth_db.transaction() as session:
        RoleDirectory(session).ensure_seeded(clock())
    with auth_db.transaction() as session:
        pro = RoleDirectory(session).roles.by_name("Pro")
        assert pro.permissions == ["reservations:create", "users:read"]


def test_resolve_by_id_and_by_name_creates_the_missing_name(auth_db, clock):
    with auth_db.transaction() as session:
        directory = RoleDirectory(session)
        moderator = directory.roles.by_name("Moderator")
        roles = directory.resolve([{"id": moderator.id}, {"name": "Night Shift"}], None, clock())
    assert [role.name for role in roles] == ["Moderator", "Night Shift"]
    with auth_db.transaction() as session:
        created = RoleDirectory(session).roles.by_name("night shift")  # names match case-insensitively
        assert created is not None and created.permissions == [] and created.category == "customer"


def test_resolve_refuses_an_unknown_id(auth_db, clock):
    with auth_db.transaction() as session, pytest.raises(ValidationError) as error:
        RoleDirectory(session).resolve([{"id": 9999}], None, clock())
    assert error.value.details == {"roles": {0: ["No role with id 9999."]}}


def test_nobody_grants_a_role_beyond_their_own_permissions(auth_db, clock):
    with auth_db.transaction() as session:
        directory = RoleDirectory(session)
        super_admin = directory.roles.by_name("Super Admin")
        with pytest.raises(Forbidden) as error:
            directory.resolve([{"id": super_admin.id}], ADMIN_ACTOR, clock())
    assert "roles:manage" in error.value.details["permissions"]


def test_create_role_refuses_unknown_permissions_and_duplicate_names(auth_db, clock):
    with auth_db.transaction() as session:
        directory = RoleDirectory(session)
        with pytest.raises(ValidationError):
            directory.create("Bogus", "admin", ["rockets:launch"], None, clock())
        with pytest.raises(Conflict):
            directory.create("moderator", "admin", [], None, clock())


def test_role_in_use_cannot_be_deleted(auth_db, clock):
    with auth_db.transaction() as session:
        directory = RoleDirectory(session)
        role = directory.create("Support", "admin", ["users:read"], None, clock())
        session.add(User(email="s@example.com", password_hash="x", created_at=clock(),
                         updated_at=clock(), roles=[role]))
        session.flush()
        with pytest.raises(Conflict) as error:
            directory.delete(role.id, None)
        assert error.value.details == {"user_count": 1}
        unused = directory.create("Unused", "customer", [], None, clock())
        directory.delete(unused.id, None)
        with pytest.raises(NotFound):
            directory.get(unused.id)


def test_update_replaces_permissions(auth_db, clock):
    with auth_db.transaction() as session:
        directory = RoleDirectory(session)
        role = directory.create("Support", "admin", ["users:read"], None, clock())
        directory.update(role.id, {"permissions": ["roles:read", "users:create"], "name": "Helpdesk"}, None)
    with auth_db.transaction() as session:
        role = RoleDirectory(session).roles.by_name("Helpdesk")
        assert role.permissions == ["roles:read", "users:create"]


def test_the_demo_customer_is_announced_so_notifications_can_reach_them(auth_db, fast_passwords):
    import json

    from auth_service.models import OutboxMessage
    from auth_service.seed import DEMO_CUSTOMER, seed, seed_demo
    from tests.conftest import ADMIN

    seed_demo(auth_db, fast_passwords)
    seed_demo(auth_db, fast_passwords)  # again: nobody new, nothing announced twice
    seed(auth_db, fast_passwords, *ADMIN)
    with auth_db.transaction() as session:
        announced = [json.loads(row.payload) for row in session.query(OutboxMessage)
                     if row.event_type == "user_registered"]
    assert [event["email"] for event in announced] == [DEMO_CUSTOMER[0]]
    assert {event["source"] for event in announced} == {"seed"}


def test_the_role_sign_ups_get_can_be_edited_but_not_renamed_or_deleted(auth_db, clock):
    with auth_db.transaction() as session:
        RoleDirectory(session).ensure_seeded(clock())
    with auth_db.transaction() as session:
        directory = RoleDirectory(session, protected=["Free"])
        free = directory.roles.by_name("Free")
        with pytest.raises(Conflict) as renamed:
            directory.update(free.id, {"name": "Gratis"}, None)
        assert renamed.value.details == {"id": free.id, "name": "Free"}
        with pytest.raises(Conflict):
            directory.delete(free.id, None)
        directory.update(free.id, {"name": "FREE", "permissions": ["reservations:create"]}, None)  # same name
    with auth_db.transaction() as session:
        assert RoleDirectory(session).roles.by_name("Free") is not None
