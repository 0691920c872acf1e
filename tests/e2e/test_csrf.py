"""CSRF over HTTP against a running stack: with the `Authentication` cookie, a cross-site
form POST (text/plain, another Origin) neither cancels nor books (403 `forbidden`), while the
site's own JSON requests, `Sec-Fetch-Site: same-origin`, bearer tokens and sign-in from curl
work as before (docs/security.md)."""
import json

import requests

from gateway.principals import COOKIE_NAME
from tests.e2e.test_booking_api import at

EVIL = "https://evil.example"


def _forbidden(response):
    assert response.status_code == 403, response.text
    assert response.json()["error"]["code"] == "forbidden", response.text
    assert "signed in by cookie" in response.json()["error"]["message"]


def _reservations(api, token):
    response = api.get("/v1/reservations", token=token)
    assert response.status_code == 200, response.text
    body = response.json()
    return {item["id"]: item for item in (body["items"] if isinstance(body, dict) else body)}


def test_a_cross_site_form_with_the_cookie_changes_nothing_and_same_origin_works(api):
    place = api.place()
    user = api.register()  # from curl: no Origin, no cookie
    browser = requests.Session()
    login = browser.post(api.base_url + "/v1/auth/login",
                         json={"email": user["email"], "password": user["password"]})
    assert login.status_code == 200 and COOKIE_NAME in browser.cookies
    token = login.json()["access_token"]
    reservation = api.book(token, place["id"], at(11, 10), at(11, 12)).json()
    cancel = f"{api.base_url}/v1/reservations/{reservation['id']}/cancel"
    booking = {"place_id": place["id"], "start": at(12, 10).isoformat(), "end": at(12, 12).isoformat(),
               "payment_method": "pm_card_visa"}

    # What a page elsewhere can make the browser send: a text/plain form, its own Origin.
    form = {"Content-Type": "text/plain", "Origin": EVIL, "Sec-Fetch-Site": "cross-site"}
    _forbidden(browser.post(cancel, data=json.dumps({"reason": "x"}), headers=form))
    _forbidden(browser.post(api.base_url + "/v1/reservations", data=json.dumps(booking), headers=form))
    # JSON is not enough without our origin, nor our origin without JSON.
    _forbidden(browser.post(cancel, json={}, headers={"Origin": EVIL}))
    _forbidden(browser.post(cancel, json={}))
    _forbidden(browser.post(cancel, data=json.dumps({}), headers={
        "Content-Type": "text/plain", "Origin": api.base_url}))
    assert _reservations(api, token) == {reservation["id"]: reservation}  # nothing cancelled or booked

    # The site's own page: JSON from its own origin, or a browser's Sec-Fetch-Site.
    booked = browser.post(api.base_url + "/v1/reservations", json=booking,
                          headers={"Sec-Fetch-Site": "same-origin"})
    assert booked.status_code == 201, booked.text
    cancelled = browser.post(cancel, json={"reason": "plans changed"}, headers={"Origin": api.base_url})
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled", cancelled.text
    # Reads with the cookie need nothing more.
    assert browser.get(api.base_url + "/v1/users/me").status_code == 200

    # A bearer token is never sent by a browser on its own: no Origin needed, cookie or not.
    by_bearer = api.post(f"/v1/reservations/{booked.json()['id']}/cancel", token=token, json={})
    assert by_bearer.status_code == 200, by_bearer.text
    assert browser.post(api.base_url + "/v1/auth/logout", json={},
                        headers={"Origin": api.base_url}).status_code == 204
    assert browser.get(api.base_url + "/v1/users/me").status_code == 401
