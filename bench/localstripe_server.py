"""localstripe, the Stripe emulator `make run` uses, minus two costs that grow with its store:

* as shipped it pickles its whole in-memory store to a file after each object it stores;
* every list it builds scans the whole store for objects of one type - and it builds one for
  every PaymentIntent it returns (the refunds of the intent's charge).

Either way each payment cost more than the one before (O(payments so far)), and over a
benchmark's thousands of bookings that growth would be measured as Bookify's. Stripe itself
has no such cost. Here the store keeps an index by object type, so a list reads only its own
type, and nothing is written to disk. What the emulator answers is unchanged.
Run: python -m bench.localstripe_server --port N --from-scratch, or `spawn()` it."""
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def spawn(port: int, log_path: Path, timeout: float = 30) -> subprocess.Popen:
    """Start it in a process group of its own, logging to `log_path`; return once it listens."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "bench.localstripe_server", "--port", str(port), "--from-scratch"],
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


def index_store_by_type(resources) -> None:
    """Make localstripe's store (a dict of "type:id" -> object) keep a dict per type beside
    it, and its lists read that instead of scanning everything. The store is swapped in
    place: localstripe's server module holds its own reference to it."""

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

        def dump_to_disk(self):
            """No snapshot: the store lives for one run (see the module docstring)."""

    store = resources.store
    store.__class__ = IndexedStore
    store.by_type = {}
    for key, value in list(store.items()):
        IndexedStore.__setitem__(store, key, value)

    def list_all(cls, url, limit=None, starting_after=None, **kwargs):
        if kwargs:  # as localstripe's own
            raise resources.UserError(400, "Unexpected " + ", ".join(kwargs.keys()))
        found = resources.List(url, limit=limit, starting_after=starting_after)
        found._list = list(store.by_type.get(cls.object, {}).values())
        return found

    resources.StripeObject._api_list_all = classmethod(list_all)


def main() -> None:
    from localstripe import resources
    from localstripe.server import start

    index_store_by_type(resources)
    sys.argv[0] = "localstripe"
    start()


if __name__ == "__main__":
    main()
