"""`make test` (scripts/run_tests.py): the unit tests beside the rest, both must pass."""
import subprocess

import pytest

from scripts import run_tests


class FakeRun:
    """Stands in for the two pytest processes: records each command, returns set codes."""

    def __init__(self, monkeypatch, unit=0, rest=0):
        self.commands, self.codes = [], {"unit": unit, "rest": rest}
        fake = self

        class Process:
            def __init__(self, command, **kwargs):
                fake.commands.append(command)
                kwargs["stdout"].write("unit output\n")

            def wait(self):
                return fake.codes["unit"]

        def call(command):
            self.commands.append(command)
            return self.codes["rest"]

        monkeypatch.setattr(subprocess, "Popen", Process)
        monkeypatch.setattr(subprocess, "call", call)


def test_the_unit_tests_run_beside_the_rest_with_the_same_flags(monkeypatch, capsys):
    run = FakeRun(monkeypatch)
    assert run_tests.main(["--durations=5"]) == 0
    unit, rest = run.commands
    assert unit[-4:] == ["tests/unit", "-p", "no:cacheprovider", "--durations=5"]
    assert rest[-3:] == ["--ignore", "tests/unit", "--durations=5"]
    assert "unit output" in capsys.readouterr().out


@pytest.mark.parametrize(("unit", "rest"), [(1, 0), (0, 1), (5, 0), (0, 5)])
def test_either_run_failing_or_finding_nothing_fails_the_whole(monkeypatch, unit, rest):
    FakeRun(monkeypatch, unit=unit, rest=rest)
    assert run_tests.main([]) != 0


def test_a_chosen_selection_runs_as_plain_pytest(monkeypatch):
    run = FakeRun(monkeypatch, rest=0)
    assert run_tests.main(["tests/e2e", "-k", "grpc"]) == 0
    [command] = run.commands
    assert command[-3:] == ["tests/e2e", "-k", "grpc"]
