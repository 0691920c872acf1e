"""Health probes for the services that have no HTTP port.

`python -m scripts.probe auth --liveness`: this process's own heartbeat (common/runtime/heartbeat.py) is
fresh, so this instance's event loop still runs; no broker involved, and no other replica can
answer for it. Kubernetes runs it as the liveness probe.

`python -m scripts.probe auth`: one RPC to the service's ping() over RabbitMQ. Any instance of
the service may answer, so it tells whether the service is reachable, not this one process;
Kubernetes and docker compose use it for readiness.

Exits 0 when healthy, 1 otherwise, with the reason on stderr.
"""
import argparse
import signal
import sys

from common import config as bookify_config
from common.liveness import MISSED_BEATS, age_seconds, heartbeat_path, settings


def _give_up(signum, frame):
    raise TimeoutError("no answer in time")


def probe(service, timeout):
    """'pong' from service.ping(), or an exception."""
    import nameko
    from nameko.standalone.rpc import ClusterRpcClient

    # The client's timeout covers only the reply; connecting to a broker that is down retries,
    # so a hard deadline keeps the probe inside the probe's own timeout.
    signal.signal(signal.SIGALRM, _give_up)
    signal.setitimer(signal.ITIMER_REAL, timeout + 1)
    try:
        with nameko.config.patch(bookify_config.load(), clear=True):
            with ClusterRpcClient(timeout=timeout) as client:
                return client[service].ping()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


class Stale(Exception):
    """The heartbeat is missing or too old."""


def liveness(service, max_age=None):
    """'beat Ns ago' when this instance's heartbeat is fresh, else Stale."""
    directory, interval = settings(bookify_config.load())
    path = heartbeat_path(directory, service)
    limit = max_age if max_age is not None else MISSED_BEATS * interval
    age = age_seconds(path)
    if age is None:
        raise Stale(f"no heartbeat at {path}: the service has not started, or has stopped")
    if age > limit:
        raise Stale(f"last heartbeat {age:.1f}s ago (limit {limit:g}s): the process is stuck")
    return f"beat {age:.1f}s ago"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("service", help="nameko service name: auth, reservations, payments, "
                                        "notifications, grpc_gateway")
    parser.add_argument("--timeout", type=float, default=5, help="seconds to wait for the RPC answer")
    parser.add_argument("--liveness", action="store_true",
                        help="check this instance's heartbeat instead of making an RPC")
    parser.add_argument("--max-age", type=float, default=None,
                        help="with --liveness: oldest heartbeat accepted, in seconds "
                             "(default 4 × HEARTBEAT_INTERVAL)")
    args = parser.parse_args(argv)
    try:
        answer = liveness(args.service, args.max_age) if args.liveness else probe(args.service, args.timeout)
    except Exception as error:  # any failure is "not healthy"; the reason goes to the probe log
        print(f"{args.service}: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    print(f"{args.service}: {answer}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
