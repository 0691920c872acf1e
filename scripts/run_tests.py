"""`make test`: the whole suite, with the unit tests running beside the rest.

The unit tests are CPU-bound and share nothing with the others (their own databases, free
ports, no stacks); the rest spends about half its time waiting on stacks starting, the
broker restarting and deadlines running out. Side by side, the suite ends about a minute
sooner on two cores. Both runs must pass; pytest's "no tests collected" (exit 5) fails too.

With arguments (`make test PYTEST_ARGS="tests/e2e -k grpc"`), it is plain pytest with them.
"""
import subprocess
import sys
import tempfile

UNIT = "tests/unit"


def main(args: list[str]) -> int:
    pytest = [sys.executable, "-m", "pytest"]
    if any(not arg.startswith("-") for arg in args):  # the caller chose what to run
        return subprocess.call([*pytest, *args])
    with tempfile.TemporaryFile("w+") as unit_output:
        unit = subprocess.Popen([*pytest, UNIT, "-p", "no:cacheprovider", *args],
                                stdout=unit_output, stderr=subprocess.STDOUT)
        try:
            rest = subprocess.call([*pytest, "--ignore", UNIT, *args])
        finally:
            unit_code = unit.wait()
        unit_output.seek(0)
        print(f"\n---------------- {UNIT} (ran beside the rest) ----------------", flush=True)
        sys.stdout.write(unit_output.read())
    print(f"\n{UNIT}: exit {unit_code}; the rest: exit {rest}", flush=True)
    return rest or unit_code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
