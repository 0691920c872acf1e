"""The HTTP gateway as the benchmark uses it, over one keep-alive aiohttp session: customers
with tokens (created once: login is argon2 on purpose), the place set, and the three requests
that are measured (book, availability, get a place)."""
from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime

import aiohttp

from bench.load import OK

PASSWORD = "bench-password-123"
PAYMENT_METHOD = "pm_card_visa"  # succeeds on localstripe and on Stripe's test mode


@dataclass(frozen=True)
class Customer:
    user_id: int
    email: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def outcome(status: int, expected: int) -> str:
    return OK if status == expected else str(status)


class Gateway:
    def __init__(self, base_url: str, connections: int = 64):
        self.base_url = base_url
        # One pooled session, keep-alive, no per-request overhead beyond the request itself.
        self.session = aiohttp.ClientSession(
            base_url, connector=aiohttp.TCPConnector(limit=connections, force_close=False),
            timeout=aiohttp.ClientTimeout(total=60))

    async def close(self) -> None:
        await self.session.close()

    async def _json(self, method: str, path: str, expected: int, **kwargs):
        async with self.session.request(method, path, **kwargs) as response:
            body = await response.json(content_type=None)
            if response.status != expected:
                raise RuntimeError(f"{method} {path}: HTTP {response.status} {body}")
            return body

    # -- setup ------------------------------------------------------------------------

    async def login(self, email: str, password: str) -> str:
        tokens = await self._json("POST", "/v1/auth/login", 200, json={"email": email, "password": password})
        return tokens["access_token"]

    async def customers(self, count: int, parallel: int = 4) -> list[Customer]:
        """`count` fresh self-registered customers, logged in once each."""
        limit = asyncio.Semaphore(parallel)
        prefix = uuid.uuid4().hex[:6]

        async def one(index: int) -> Customer:
            async with limit:
                email = f"bench-{prefix}-{index}@example.com"
                user = await self._json("POST", "/v1/auth/register", 201, json={
                    "email": email, "password": PASSWORD, "name": f"Bench {index}"})
                return Customer(user["id"], email, await self.login(email, PASSWORD))

        return list(await asyncio.gather(*(one(index) for index in range(count))))

    async def places(self, admin_token: str, count: int) -> list[int]:
        """`count` hourly places, created by the admin; their ids."""
        ids = []
        for index in range(count):
            place = await self._json("POST", "/v1/places", 201, headers={"Authorization": f"Bearer {admin_token}"},
                                     json={"name": f"Bench room {index}", "unit": "hour", "unit_price": 2500,
                                           "currency": "usd"})
            ids.append(place["id"])
        return ids

    # -- measured requests ------------------------------------------------------------

    async def book(self, customer: Customer, place_id: int, start: datetime, end: datetime) -> str:
        headers = {**customer.headers, "Idempotency-Key": uuid.uuid4().hex}
        async with self.session.post("/v1/reservations", headers=headers, json={
                "place_id": place_id, "start": start.isoformat(), "end": end.isoformat(),
                "payment_method": PAYMENT_METHOD}) as response:
            await response.read()
            return outcome(response.status, 201)

    async def availability(self, customer: Customer, place_id: int, frm: datetime, to: datetime) -> str:
        params = {"from": frm.isoformat(), "to": to.isoformat()}
        async with self.session.get(f"/v1/places/{place_id}/availability", headers=customer.headers,
                                    params=params) as response:
            await response.read()
            return outcome(response.status, 200)

    async def health(self, number: int = 0) -> str:
        async with self.session.get("/health") as response:
            await response.read()
            return outcome(response.status, 200)

    async def get_place(self, customer: Customer, place_id: int) -> str:
        async with self.session.get(f"/v1/places/{place_id}", headers=customer.headers) as response:
            await response.read()
            return outcome(response.status, 200)
