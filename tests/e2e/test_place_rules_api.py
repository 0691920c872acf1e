"""A place with a capacity, opening hours, a slot grid and a time zone, end to end over HTTP:
what may be booked, at what price, what is left, and every bad setting refused by name."""
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

PARIS = ZoneInfo("Europe/Paris")
WEEKDAYS_9_TO_18 = [{"weekday": day, "open": "09:00", "close": "18:00"} for day in range(5)]


def next_monday():
    """A Monday at least three days ahead, as a local date in Paris."""
    day = datetime.now(PARIS).date() + timedelta(days=3)
    return day + timedelta(days=(7 - day.weekday()) % 7)


def local(day, hour, minute=0):
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=PARIS)


def clock_change_sunday(month):
    """The next last Sunday of `month` (March: 23-hour day in Paris; October: 25 hours) that is
    at least three days ahead (and so within the booking horizon)."""
    soon = datetime.now(PARIS).date() + timedelta(days=3)
    for year in (soon.year, soon.year + 1):
        last = date(year, month, 31)
        sunday = last - timedelta(days=(last.weekday() + 1) % 7)
        if sunday >= soon:
            return sunday
    raise AssertionError("unreachable")


def _error(response, status, code):
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code, response.text
    return response.json()["error"]


@pytest.fixture
def desks(api):
    return api.place(unit_price=1000, currency="eur", timezone="Europe/Paris", capacity=3,
                     opening_hours=WEEKDAYS_9_TO_18, slot_minutes=30)


def test_a_place_shows_its_rules(api, desks):
    shown = api.get(f"/v1/places/{desks['id']}", token=api.admin_token()).json()
    assert {key: shown[key] for key in ("timezone", "capacity", "slot_minutes", "min_minutes", "max_minutes",
                                        "buffer_minutes")} == {
        "timezone": "Europe/Paris", "capacity": 3, "slot_minutes": 30, "min_minutes": None, "max_minutes": None,
        "buffer_minutes": 0}
    assert shown["opening_hours"] == WEEKDAYS_9_TO_18
    plain = api.place()
    assert (plain["timezone"], plain["capacity"], plain["opening_hours"], plain["slot_minutes"]) == (
        "UTC", 1, [], 60)


def test_bookings_follow_the_grid_the_hours_and_the_capacity(api, desks):
    _, tokens = api.customer()
    token = tokens["access_token"]
    monday = next_monday()
    first = api.book(token, desks["id"], local(monday, 10), local(monday, 11), quantity=2)
    assert first.status_code == 201, first.text
    assert (first.json()["quantity"], first.json()["amount"]) == (2, 2000)

    def refused(start, end, field, quantity=None):
        error = _error(api.book(token, desks["id"], start, end, quantity=quantity), 400, "validation_error")
        assert list(error["details"]) == [field], error

    refused(local(monday, 10, 15), local(monday, 11), "start")  # off the 30-minute grid
    refused(local(monday, 10), local(monday, 10, 45), "end")
    refused(local(monday, 8), local(monday, 9), "start")  # before opening, in Paris
    refused(local(monday, 17, 30), local(monday, 18, 30), "end")  # past closing
    refused(local(monday + timedelta(days=5), 10), local(monday + timedelta(days=5), 11), "start")  # Saturday
    refused(local(monday, 12), local(monday, 13), "quantity", quantity=0)
    refused(local(monday, 12), local(monday, 13), "quantity", quantity=4)

    over = _error(api.book(token, desks["id"], local(monday, 10, 30), local(monday, 11), quantity=2), 409,
                  "slot_unavailable")
    assert (over["details"]["remaining"], over["details"]["quantity"]) == (1, 2)
    assert api.book(token, desks["id"], local(monday, 10, 30), local(monday, 11)).status_code == 201

    shown = api.get(f"/v1/places/{desks['id']}/availability", token=token, params={
        "from": local(monday, 8).isoformat(), "to": local(monday, 12).isoformat()}).json()
    assert (shown["place_id"], shown["timezone"], shown["capacity"]) == (desks["id"], "Europe/Paris", 3)
    left = {datetime.fromisoformat(slot["start"]).astimezone(PARIS).strftime("%H:%M"): slot["remaining"]
            for slot in shown["slots"]}
    assert left == {"09:00": 3, "09:30": 3, "10:00": 1, "10:30": 0, "11:00": 3, "11:30": 3}
    booked = [(datetime.fromisoformat(w["start"]), datetime.fromisoformat(w["end"])) for w in shown["booked"]]
    assert booked == [(local(monday, 10, 30), local(monday, 11))]
    assert datetime.fromisoformat(shown["free"][0]["start"]) == local(monday, 9)  # closed before 09:00


def test_a_day_is_a_local_calendar_day_even_when_the_clocks_change(api):
    cabin = api.place(unit="day", unit_price=10000, currency="eur", timezone="Europe/Paris")
    room = api.place(unit="hour", unit_price=1000, currency="eur", timezone="Europe/Paris")
    _, tokens = api.customer()
    token = tokens["access_token"]
    for month, hours in ((3, 23), (10, 25)):
        sunday = clock_change_sunday(month)
        start, end = local(sunday, 0), local(sunday + timedelta(days=1), 0)
        assert end.astimezone(timezone.utc) - start.astimezone(timezone.utc) == timedelta(hours=hours)
        day = api.book(token, cabin["id"], start, end)
        assert day.status_code == 201, day.text
        assert day.json()["amount"] == 10000  # one local day, 23 or 25 hours long
        # An hourly place charges the hours that pass: 01:00-04:00 is 2 hours in March, 4 in October.
        night = api.book(token, room["id"], local(sunday, 1), local(sunday, 4))
        assert night.status_code == 201, night.text
        assert night.json()["amount"] == (hours - 21) * 1000
    error = _error(api.book(token, cabin["id"], datetime(2027, 1, 4, tzinfo=timezone.utc),
                            datetime(2027, 1, 5, tzinfo=timezone.utc)), 400, "validation_error")
    assert set(error["details"]) == {"start", "end"}  # UTC midnight is 01:00 in Paris: off the day grid


@pytest.mark.parametrize("settings, field", [
    ({"timezone": "Europe/Atlantis"}, "timezone"),
    ({"capacity": 0}, "capacity"),
    ({"slot_minutes": 7}, "slot_minutes"),
    ({"opening_hours": [{"weekday": 0, "open": "09:00", "close": "13:00"},
                        {"weekday": 0, "open": "12:00", "close": "18:00"}]}, "opening_hours"),
    ({"opening_hours": [{"weekday": 0, "open": "18:00", "close": "09:00"}]}, "opening_hours"),
    ({"opening_hours": [{"weekday": 7, "open": "09:00", "close": "18:00"}]}, "opening_hours"),
    ({"min_minutes": 120, "max_minutes": 60}, "max_minutes"),
    ({"buffer_minutes": -5}, "buffer_minutes"),
])
def test_bad_settings_are_400_naming_the_field(api, settings, field):
    admin = api.admin_token()
    before = api.get("/v1/places", token=admin, params={"limit": 1}).json()["total"]
    error = _error(api.post("/v1/places", token=admin, json={
        "name": "Bad", "unit": "hour", "unit_price": 100, "currency": "eur", **settings}), 400, "validation_error")
    assert field in error["details"], error
    assert api.get("/v1/places", token=admin, params={"limit": 1}).json()["total"] == before


def test_an_update_is_checked_as_the_place_would_be_after_it(api, desks):
    admin = api.admin_token()
    assert api.request("PATCH", f"/v1/places/{desks['id']}", token=admin, json={"max_minutes": 60}).status_code == 200
    error = _error(api.request("PATCH", f"/v1/places/{desks['id']}", token=admin, json={"min_minutes": 90}), 400,
                   "validation_error")
    assert "max_minutes" in error["details"]
    error = _error(api.request("PATCH", f"/v1/places/{desks['id']}", token=admin, json={"slot_minutes": 0}), 400,
                   "validation_error")
    assert "slot_minutes" in error["details"]
    assert api.get(f"/v1/places/{desks['id']}", token=admin).json()["slot_minutes"] == 30
