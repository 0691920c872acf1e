"""The fault campaign at full size: each scenario on a fresh stack (two instances of every
service, MariaDB), its figures printed as JSON.

    python -m tests.reliability.campaign --bookings 1000              # every scenario
    python -m tests.reliability.campaign --bookings 1000 kill broker  # some of them
"""
import eventlet

eventlet.monkey_patch()

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

from tests.reliability.harness import BookingLoad, FaultStack  # noqa: E402
from tests.reliability.scenarios import SCENARIOS  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenarios", nargs="*", help=f"any of {', '.join(SCENARIOS)} (default: all)")
    parser.add_argument("--bookings", type=int, default=1000)
    parser.add_argument("--slow-bookings", type=int, default=200, help="bookings of the slow-service scenario")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--instances", type=int, default=2)
    parser.add_argument("--logs", type=Path, default=None, help="keep the services' logs here")
    parser.add_argument("--out", type=Path, default=None, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    chosen = args.scenarios or list(SCENARIOS)
    unknown = set(chosen) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    results = {}
    failed = False
    for name in chosen:
        log_dir = (args.logs / name) if args.logs else Path(tempfile.mkdtemp(prefix=f"bookify-{name}-"))
        bookings = args.slow_bookings if name == "slow" else args.bookings
        print(f"== {name}: {bookings} bookings, {args.instances} instances of each service (logs: {log_dir})",
              flush=True)
        with FaultStack(log_dir, instances=args.instances) as stack:
            load = BookingLoad(stack)
            figures = SCENARIOS[name](stack, load, bookings=bookings, concurrency=args.concurrency)
        results[name] = figures
        failed |= bool(figures["violations"] or figures["died"] or figures["server_errors_500"]
                       or figures["hangs"] or figures["settled_after_load_s"] is None)
        print(json.dumps(figures, indent=2, default=str), flush=True)
    if args.out:
        args.out.write_text(json.dumps(results, indent=2, default=str))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
