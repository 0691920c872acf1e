"""Health probe for the services that have no HTTP port: `python -m scripts.probe auth`.

Makes one RPC to the service's ping() over RabbitMQ and exits 0 when it answers, 1 otherwise.
Kubernetes runs it as an exec probe and docker compose as a healthcheck. Any instance of the
service may answer, so it tells whether the service is reachable, not this one process.
"""
import argparse
import signal
import sys

from common import config as bookify_config


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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("service", help="nameko service name: auth, reservations, payments, notifications")
    parser.add_argument("--timeout", type=float, default=5, help="seconds to wait for the answer")
    args = parser.parse_args(argv)
    try:
        answer = probe(args.service, args.timeout)
    except Exception as error:  # any failure is "not healthy"; the reason goes to the probe log
        print(f"{args.service}: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    print(f"{args.service}: {answer}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
