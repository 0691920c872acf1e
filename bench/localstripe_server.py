"""localstripe, the Stripe emulator `make run` uses, minus its snapshot on every write: as
shipped it pickles its whole in-memory store to a file after each object it stores, so each
payment costs more than the one before (O(payments so far)). Over a benchmark's thousands of
bookings that growth would be measured as Bookify's. Stripe itself has no such cost.
Run: python -m bench.localstripe_server --port N --from-scratch"""
import sys

from localstripe import resources
from localstripe.server import start


def main() -> None:
    resources.Store.dump_to_disk = lambda self: None
    sys.argv[0] = "localstripe"
    start()


if __name__ == "__main__":
    main()
