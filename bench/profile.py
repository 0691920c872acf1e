"""Where the CPU goes while the stack books: py-spy samples every process of the stack at once
(`python -m bench --only booking --profile`), writes each one's stacks in py-spy's collapsed
format under var/bench/profiles/<run>/, and sums them per process by layer (our code,
SQLAlchemy, the MySQL driver, AMQP, nameko, logging, ...) and by hottest function."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

# A sample belongs to the layer of its innermost frame that has one (a sample inside
# SQLAlchemy called from our code is SQLAlchemy's; a socket send, the sender's), except that
# logging and metrics claim everything beneath them: json encoding a log line is the price
# of logging, not of json.
WRAPPING_LAYERS = ("logging", "metrics")
LAYERS = [  # py-spy names files relative to their sys.path entry: "kombu/messaging.py"
    ("logging", ("logging/", "common/logs.py")),
    ("metrics", ("prometheus_client/", "common/runtime/metrics.py")),
    ("mysql driver", ("pymysql/",)),
    ("sqlalchemy", ("sqlalchemy/",)),
    ("amqp", ("kombu/", "amqp/")),
    ("http", ("werkzeug/", "eventlet/wsgi", "aiohttp/", "http/")),
    ("stripe sdk", ("stripe/",)),
    ("marshmallow", ("marshmallow/",)),
    ("jwt/crypto", ("jwt/", "cryptography/", "argon2/")),
    ("json", ("json/",)),
    ("nameko", ("nameko/",)),
    ("eventlet", ("eventlet/", "greenlet")),
    ("our code", ("common/", "_service/", "gateway/", "bench/")),
]
FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^():]+)(?::\d+)?\)$")


def available() -> bool:
    return _py_spy() is not None


def _py_spy() -> str | None:
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


def start(process_groups: dict[str, list[int]], out_dir: Path, seconds: float) -> list[subprocess.Popen]:
    """One `py-spy record` per process for `seconds`; wait for them with `finish`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    recorders = []
    for group, pids in process_groups.items():
        for pid in pids:
            recorders.append(subprocess.Popen(
                # Not --nonblocking: sampling a running process without pausing it misreads
                # the stack often enough to put a quarter of every service in socket sends.
                [_py_spy(), "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "100",
                 "--format", "raw", "--output", str(out_dir / f"{group}-{pid}.txt")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    return recorders


def finish(recorders: list[subprocess.Popen]) -> None:
    for recorder in recorders:
        recorder.wait(timeout=120)


def read_collapsed(path: Path) -> Counter:
    """{stack (outermost first, as a tuple of frames): samples} from a collapsed-stack file."""
    stacks = Counter()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks[tuple(stack.split(";"))] += int(count)
    return stacks


def _frame_layer(frame: str) -> str | None:
    match = FRAME.match(frame)
    path = match["file"] if match else frame
    return next((layer for layer, markers in LAYERS if any(marker in path for marker in markers)), None)


def layer_of(stack: tuple[str, ...]) -> str:
    layers = [layer for layer in map(_frame_layer, stack) if layer]
    wrapping = [layer for layer in layers if layer in WRAPPING_LAYERS]
    if wrapping:
        return wrapping[0]
    # A green socket's send is the time of whoever sends (the MySQL driver, AMQP): eventlet
    # counts only when nothing else is on the stack (its hub polling).
    layers = [layer for layer in layers if layer != "eventlet"] or layers
    return layers[-1] if layers else "other"


def hottest(stacks: Counter, n: int = 8) -> list[tuple[str, int]]:
    """The functions with the most samples on top of the stack (self time)."""
    own = Counter()
    for stack, count in stacks.items():
        match = FRAME.match(stack[-1])
        own[f"{match['function']} ({Path(match['file']).name})" if match else stack[-1]] += count
    return own.most_common(n)


def summarise(out_dir: Path) -> dict:
    """Per process group: samples, share of each layer, hottest functions."""
    groups: dict[str, Counter] = {}
    for path in sorted(out_dir.glob("*.txt")):
        group = path.stem.rsplit("-", 1)[0]
        groups.setdefault(group, Counter()).update(read_collapsed(path))
    summary = {}
    for group, stacks in groups.items():
        total = sum(stacks.values())
        if not total:
            continue
        layers = Counter()
        for stack, count in stacks.items():
            layers[layer_of(stack)] += count
        summary[group] = {
            "samples": total,
            "layers": {layer: round(100 * count / total, 1) for layer, count in layers.most_common()},
            "hottest": [(name, round(100 * count / total, 1)) for name, count in hottest(stacks)],
        }
    return summary


def render(summary: dict, title: str = "Where each process spends its CPU") -> str:
    lines = [f"{title} (py-spy samples; % of that process's busy samples)"]
    for group, info in sorted(summary.items(), key=lambda item: -item[1]["samples"]):
        layers = ", ".join(f"{layer} {share:g}%" for layer, share in info["layers"].items() if share >= 2)
        lines.append(f"  {group} ({info['samples']} samples): {layers}")
        for name, share in info["hottest"][:5]:
            lines.append(f"      {share:5.1f}%  {name}")
    return "\n".join(lines)
