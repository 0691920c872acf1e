"""localstripe, the Stripe emulator `make run` uses without Stripe credentials, minus the
costs that grow with its store. As shipped it

* pickles its whole in-memory store to a file after every object it stores and after every
  write request (and reads that file back at start unless told `--from-scratch`);
* builds every list by scanning the whole store - and it builds several for every
  PaymentIntent it returns (the refunds of the intent's charge, twice per charge), and one
  for a customer's cards.

Either way each payment cost more than the one before: on a long-running `make run` its CPU
per booking grew from 8 to over 200 ms (docs/performance.md). Stripe itself has no such
cost. Here the store keeps an index by object type, refunds are indexed by their charge and
payment methods by their customer, so a list reads only what it returns; nothing is written
to or read from disk, so every start is a fresh, empty store (as `--from-scratch`). What the
emulator answers is unchanged: same routes, same objects, same signed webhooks, same
`/_config` endpoints.
Run: python -m scripts.localstripe_server --port N, or `spawn()` it."""
from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMAND = [sys.executable, "-m", "scripts.localstripe_server"]


def spawn(port: int, log_path: Path, timeout: float = 30) -> subprocess.Popen:
    """Start it in a process group of its own, logging to `log_path`; return once it listens."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as out:
        process = subprocess.Popen(
            [*COMMAND, "--port", str(port), "--from-scratch"],
            cwd=ROOT, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, process_group=0)
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return process
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"localstripe did not start; see {log_path}") from None
            time.sleep(0.1)


class _AttributeIndex:
    """{value of `attribute`: {store key: object}} for one class of StripeObject, kept up to
    date by the class's __setattr__, so it follows every change (a card attached, detached)."""

    def __init__(self, cls, attribute: str):
        self.by_value: dict = {}
        index, original = self, cls.__setattr__

        def tracking_setattr(obj, name, value):
            if name == attribute:
                key = f"{cls.object}:{obj.id}"
                old = obj.__dict__.get(attribute)
                if old is not None:
                    index.by_value.get(old, {}).pop(key, None)
                if value is not None:
                    index.by_value.setdefault(value, {})[key] = obj
            original(obj, name, value)

        cls.__setattr__ = tracking_setattr

    def get(self, value, store) -> list:
        """The objects whose attribute is `value` and that are still in the store."""
        return [obj for key, obj in self.by_value.get(value, {}).items() if store.get(key) is obj]

    def clear(self) -> None:
        self.by_value.clear()


def index_store(resources) -> None:
    """Make localstripe's store (a dict of "type:id" -> object) keep a dict per type beside
    it and never touch the disk, and its lists read those indexes instead of scanning
    everything. The store is swapped in place: localstripe's server module holds its own
    reference to it."""
    refunds_by_charge = _AttributeIndex(resources.Refund, "charge")
    cards_by_customer = _AttributeIndex(resources.PaymentMethod, "customer")

    class IndexedStore(resources.Store):
        def __setitem__(self, key, value):
            dict.__setitem__(self, key, value)
            self.by_type.setdefault(key.split(":", 1)[0], {})[key] = value

        def __delitem__(self, key):
            dict.__delitem__(self, key)
            self.by_type.get(key.split(":", 1)[0], {}).pop(key, None)

        def clear(self):
            dict.clear(self)
            self.by_type.clear()
            refunds_by_charge.clear()
            cards_by_customer.clear()

        def dump_to_disk(self):
            """No snapshot: the store lives for one run (see the module docstring)."""

        def try_load_from_disk(self):
            """Nothing to load: every run starts empty."""

    store = resources.store
    store.__class__ = IndexedStore
    store.by_type = {}
    for key, value in list(store.items()):
        IndexedStore.__setitem__(store, key, value)

    UserError = resources.UserError

    def list_all(cls, url, limit=None, starting_after=None, **kwargs):
        if kwargs:  # as localstripe's own
            raise UserError(400, "Unexpected " + ", ".join(kwargs.keys()))
        found = resources.List(url, limit=limit, starting_after=starting_after)
        found._list = list(store.by_type.get(cls.object, {}).values())
        return found

    def list_refunds(cls, url, charge=None, payment_intent=None, limit=None, starting_after=None):
        # localstripe's Refund._api_list_all, reading the charge's own refunds.
        try:
            if charge is not None:
                assert type(charge) is str and charge.startswith("ch_")
                assert payment_intent is None
            elif payment_intent is not None:
                assert type(payment_intent) is str and payment_intent.startswith("pi_")
                charge = resources.PaymentIntent._api_retrieve(payment_intent).latest_charge.id
        except AssertionError:
            raise UserError(400, "Bad request") from None
        if charge is None:
            found = list_all(cls, url, limit=limit, starting_after=starting_after)
        else:
            resources.Charge._api_retrieve(charge)  # 404 if there is no such charge
            found = resources.List(url, limit=limit, starting_after=starting_after)
            found._list = refunds_by_charge.get(charge, store)
        found._list.sort(key=lambda refund: refund.date, reverse=True)
        return found

    def list_payment_methods(cls, url, customer=None, type=None, limit=None, starting_after=None):
        # localstripe's PaymentMethod._api_list_all, reading the customer's own cards.
        try:
            assert isinstance(customer, str) and customer.startswith("cus_")
            assert type in ("card",)
        except AssertionError:
            raise UserError(400, "Bad request") from None
        resources.Customer._api_retrieve(customer)  # 404 if there is no such customer
        found = resources.List(url, limit=limit, starting_after=starting_after)
        found._list = [card for card in cards_by_customer.get(customer, store) if card.type == type]
        return found

    resources.StripeObject._api_list_all = classmethod(list_all)
    resources.Refund._api_list_all = classmethod(list_refunds)
    resources.PaymentMethod._api_list_all = classmethod(list_payment_methods)


def main() -> None:
    from localstripe import resources
    from localstripe.server import start

    index_store(resources)
    _log_to_own_file()
    sys.argv[0] = "localstripe"
    start()


def _log_to_own_file() -> None:
    """Under `make run` (BOOKIFY_LOG_FILE set), a request log that rolls over like the
    services' logs: localstripe's start() gives its access log a plain stream handler of its own,
    which would never roll over, so the file's handler takes its place."""
    import logging

    from common.logfile import log_file_from

    handler = log_file_from()
    if handler is not None:
        access = logging.getLogger("aiohttp.access")
        access.addHandler(handler)
        access.addHandler = lambda _handler: None


if __name__ == "__main__":
    main()
