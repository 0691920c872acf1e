"""`make shell`: nameko's console on the running system, with Bookify's errors arriving typed
(`ValidationError`, `NotFound`, … with their `.details`) instead of nameko's RemoteError whose
text drops the details. Arguments after it go to `nameko shell` (docs/operators.md)."""
import sys

import nameko.cli

import common.runtime.rpc  # noqa: F401  (registers the typed errors with nameko's client)


def main(arguments=None):
    nameko.cli.cli(["shell", "--config", "config.yaml", *(sys.argv[1:] if arguments is None else arguments)])


if __name__ == "__main__":
    main()
