"""The rule that someone can always administer roles (auth_service.rbac.Keyholders): no
change to roles, their permissions or who holds them leaves the system without an active
user holding both roles:manage and users:manage_roles. On SQLite and MariaDB."""
import eventlet
import pytest

from auth_service.models import User
from auth_service.rbac import KEY_PERMISSIONS, Keyholders, RoleDirectory
from auth_service.repository import UserRepository
from common.errors import Conflict
from tests.conftest import ADMIN


def _role_id(auth_db, name):
    with auth_db.transaction() as session:
        return RoleDirectory(session).roles.by_name(name).id


def _admin_id(auth_db):
    with auth_db.transaction() as session:
        return UserRepository(session).by_email(ADMIN[0]).id


def _keyholders(auth_db):
    with auth_db.transaction() as session:
        return Keyholders(session).count()


def _user(auth_db, clock, email, *role_names, active=True):
    """A user holding `role_names`, each created with the permissions named in it."""
    with auth_db.transaction() as session:
        directory = RoleDirectory(session)
        roles = [directory.roles.by_name(name) for name in role_names]
        user = User(email=email, password_hash="x", created_at=clock(), updated_at=clock(),
                    roles=roles, is_active=active)
        session.add(user)
        session.flush()
        return user.id


def _role(auth_db, clock, name, permissions):
    with auth_db.transaction() as session:
        return RoleDirectory(session).create(name, "admin", permissions, None, clock()).id


def _super_admin_permissions(auth_db):
    with auth_db.transaction() as session:
        return RoleDirectory(session).roles.by_name("Super Admin").permissions


@pytest.mark.parametrize("permission", KEY_PERMISSIONS)
def test_the_last_keyholders_role_cannot_lose_either_key(auth_db, permission):
    super_admin = _role_id(auth_db, "Super Admin")
    before = _super_admin_permissions(auth_db)
    wanted = [p for p in before if p != permission]
    for change in (lambda d: d.update(super_admin, {"permissions": wanted}, None),
                   lambda d: d.revoke(super_admin, permission, None)):
        with pytest.raises(Conflict) as refused, auth_db.transaction() as session:
            change(RoleDirectory(session))
        assert refused.value.details["permissions"] == ["roles:manage", "users:manage_roles"]
        assert (refused.value.details["holders_before"], refused.value.details["holders_after"]) == (1, 0)
        assert "manage roles" in refused.value.message
    assert _super_admin_permissions(auth_db) == before  # rolled back, nothing changed


def test_the_last_keyholder_cannot_be_given_other_roles(accounts, auth_db):
    admin = _admin_id(auth_db)
    with pytest.raises(Conflict):
        accounts.set_roles(admin, [{"name": "Admin"}], None)  # Admin lacks roles:manage
    with pytest.raises(Conflict):
        accounts.set_roles(admin, [], None)
    assert [role.name for role in accounts.get_user(admin).roles] == ["Super Admin"]


def test_changes_that_leave_a_keyholder_pass(accounts, auth_db, clock):
    _role(auth_db, clock, "Keys", list(KEY_PERMISSIONS))
    other = _user(auth_db, clock, "other@example.com", "Keys")
    assert _keyholders(auth_db) == 2
    accounts.set_roles(_admin_id(auth_db), [{"name": "Admin"}], None)
    assert _keyholders(auth_db) == 1
    with pytest.raises(Conflict):  # now `other` is the last one
        accounts.set_roles(other, [], None)


def test_both_keys_may_come_from_different_roles_of_one_user(auth_db, clock):
    _role(auth_db, clock, "Role keeper", ["roles:manage"])
    _role(auth_db, clock, "User keeper", ["users:manage_roles"])
    _user(auth_db, clock, "split@example.com", "Role keeper", "User keeper")
    with auth_db.transaction() as session:
        RoleDirectory(session).revoke(_role_id(auth_db, "Super Admin"), "roles:manage", None)
    assert _keyholders(auth_db) == 1


def test_keys_split_between_two_users_or_held_by_an_inactive_user_do_not_count(auth_db, clock):
    _role(auth_db, clock, "Role keeper", ["roles:manage"])
    _role(auth_db, clock, "User keeper", ["users:manage_roles"])
    _role(auth_db, clock, "Keys", list(KEY_PERMISSIONS))
    _user(auth_db, clock, "roles@example.com", "Role keeper")
    _user(auth_db, clock, "users@example.com", "User keeper")
    _user(auth_db, clock, "gone@example.com", "Keys", active=False)
    assert _keyholders(auth_db) == 1
    with pytest.raises(Conflict), auth_db.transaction() as session:
        RoleDirectory(session).revoke(_role_id(auth_db, "Super Admin"), "users:manage_roles", None)


def test_a_system_without_keyholders_can_be_mended_step_by_step(auth_db):
    super_admin = _role_id(auth_db, "Super Admin")
    with auth_db.transaction() as session:  # as if broken by hand in the database
        role = RoleDirectory(session).roles.get(super_admin)
        role.grants = [g for g in role.grants if g.permission not in KEY_PERMISSIONS]
    assert _keyholders(auth_db) == 0
    with auth_db.transaction() as session:  # still none after this step: allowed
        RoleDirectory(session).grant(super_admin, "roles:manage", None)
    with auth_db.transaction() as session:
        RoleDirectory(session).grant(super_admin, "users:manage_roles", None)
    assert _keyholders(auth_db) == 1


def test_two_changes_each_fine_alone_cannot_both_pass(auth_db, accounts, clock):
    """One admin takes roles:manage from Super Admin while another takes the other keyholder's
    role away. Each leaves one keyholder; together they would leave none. The first holds its
    transaction open while the second starts: the second must wait for it and then see it."""
    _role(auth_db, clock, "Keys", list(KEY_PERMISSIONS))
    other = _user(auth_db, clock, "other@example.com", "Keys")
    super_admin = _role_id(auth_db, "Super Admin")
    assert _keyholders(auth_db) == 2

    with auth_db.transaction() as session:
        RoleDirectory(session).revoke(super_admin, "roles:manage", None)
        second = eventlet.spawn(accounts.set_roles, other, [], None)
        eventlet.sleep(0.5)  # long enough for it to run to its check, were nothing to stop it
        assert not second.dead, "the second change went through while the first was undecided"
    with pytest.raises(Conflict):
        second.wait()

    assert _keyholders(auth_db) == 1
    assert "roles:manage" not in _super_admin_permissions(auth_db)
    assert [role.name for role in accounts.get_user(other).roles] == ["Keys"]
