"""localstripe, the Stripe emulator `make run` uses, minus its snapshot on every write: as
shipped it pickles its whole in-memory store to a file after each object it stores, so each
payment costs more than the one before (O(payments so far)). Over a benchmark's thousands of
bookings that growth would be measured as Bookify's. Stripe itself has no such cost.
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


def main() -> None:
    from localstripe import resources
    from localstripe.server import start

    resources.Store.dump_to_disk = lambda self: None
    sys.argv[0] = "localstripe"
    start()


if __name__ == "__main__":
    main()
