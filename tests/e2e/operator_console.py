"""Drive a real `nameko shell --config config.yaml` as an operator types into it, and read
docs/operators.md's transcript: the `>>>` statements of its ```python blocks, each with the
output printed under it."""
import os
import re
import select
import subprocess
import sys
import termios
import time
from dataclasses import dataclass
from pathlib import Path

PROMPT = ">>> "
CONTINUATION = "... "


@dataclass
class Step:
    source: list  # the statement's lines, without their `>>> ` / `... ` prompts
    expected: str  # what the console printed under it ("" for nothing)
    line: int  # where the statement starts in the document (1-based)


def transcript(path):
    """Every `>>>` statement of the document's ```python blocks, in order, with its output."""
    steps, in_block, step = [], False, None
    for number, text in enumerate(Path(path).read_text().splitlines(), start=1):
        if text.startswith("```"):
            in_block, step = text == "```python", None
            continue
        if not in_block:
            continue
        if text.startswith(PROMPT) or text == PROMPT.strip():
            step = Step([text[len(PROMPT):]], "", number)
            steps.append(step)
        elif step is not None and text.startswith(CONTINUATION) and not step.expected:
            step.source.append(text[len(CONTINUATION):])
        elif step is not None:
            step.expected += text + "\n"
    return steps


class Console:
    """`make shell` (`python -m scripts.shell`, nameko's shell with our errors typed) with a
    terminal on its stdin, so it runs
    the interactive console as an operator gets it (an exception is printed, the session goes
    on; piped, the shell would exit at the first one). Its output goes to a pipe, where the
    console's prompts mark where each statement's output ends."""

    def __init__(self, cwd, env, timeout=60):
        self.timeout = timeout
        self.terminal, tty = os.openpty()
        attributes = termios.tcgetattr(tty)
        attributes[3] &= ~termios.ECHO  # what we type is not printed back
        termios.tcsetattr(tty, termios.TCSANOW, attributes)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "scripts.shell", "--interface", "plain"],
            stdin=tty, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=cwd,
            env={**env, "PYTHONUNBUFFERED": "1", "TERM": "dumb"})
        os.close(tty)
        self.banner = self._until_prompt()

    def run(self, source):
        """Type one statement (its lines as they would be typed) and return what it printed."""
        for text in source:
            os.write(self.terminal, (text + "\n").encode())
        # One `... ` prompt per continuation line comes before the statement's own output.
        return self._until_prompt(skip=CONTINUATION * (len(source) - 1))

    def close(self):
        try:
            os.write(self.terminal, b"n.disconnect()\n\x04")
            self.process.wait(timeout=15)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()
        finally:
            os.close(self.terminal)
            self.process.stdout.close()

    def _until_prompt(self, skip=""):
        received, deadline = b"", time.monotonic() + self.timeout
        stream, skip = self.process.stdout.fileno(), skip.encode()
        while not (received.endswith(b"\n" + PROMPT.encode()) or received == skip + PROMPT.encode()):
            left = deadline - time.monotonic()
            if left <= 0 or self.process.poll() is not None:
                raise AssertionError(f"the console stopped answering; it printed: {received.decode()!r}")
            if select.select([stream], [], [], min(left, 1))[0]:
                chunk = os.read(stream, 65536)
                if not chunk:
                    raise AssertionError(f"the console exited; it printed: {received.decode()!r}")
                received += chunk
        return re.sub(r"\r\n?", "\n", received[len(skip):-len(PROMPT)].decode())


# What the document writes where the console printed something that differs from run to run.
PLACEHOLDERS = {
    "<time>": r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?\+00:00",
    "<uuid>": r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}",
    "<n>": r"\d+",
    "...": r".*?",
}
_PLACEHOLDER = re.compile("|".join(re.escape(token) for token in PLACEHOLDERS))


def matches(expected, printed):
    """Whether the console printed what the document shows: the same text, runs of white space
    aside (pprint wraps by width), with the placeholders standing for what they name."""
    pattern, end = [], 0
    expected = " ".join(expected.split())
    for found in _PLACEHOLDER.finditer(expected):
        pattern += [re.escape(expected[end:found.start()]), PLACEHOLDERS[found.group()]]
        end = found.end()
    pattern.append(re.escape(expected[end:]))
    return re.fullmatch("".join(pattern), " ".join(printed.split()), re.DOTALL) is not None
