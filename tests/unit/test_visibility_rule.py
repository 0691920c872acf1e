"""The one visibility rule (common/permissions.py), as reservations, payments and notifications apply it."""
from common.permissions import may_see, owner_filter

CUSTOMER = {"user_id": 7, "permissions": ["reservations:create"]}
SUPPORT = {"user_id": 9, "permissions": ["payments:read_any"]}


def test_the_owner_an_operator_and_a_holder_of_the_permission_see_it_no_one_else():
    assert may_see(CUSTOMER, 7, "payments:read_any")
    assert may_see(None, 7, "payments:read_any")
    assert may_see(SUPPORT, 7, "payments:read_any")
    assert not may_see(CUSTOMER, 8, "payments:read_any")
    assert not may_see(SUPPORT, 7, "reservations:read_any")


def test_a_listing_is_the_callers_own_whatever_they_ask_unless_they_may_see_anyones():
    assert owner_filter(CUSTOMER, 8, "payments:read_any") == 7
    assert owner_filter(CUSTOMER, None, "payments:read_any") == 7
    assert owner_filter(SUPPORT, 8, "payments:read_any") == 8
    assert owner_filter(SUPPORT, None, "payments:read_any") is None
    assert owner_filter(None, 8, "payments:read_any") == 8
