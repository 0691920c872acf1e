"""Run Bookify's services as separate `nameko run` processes, exactly as `make run` does.
Shared by scripts/run_local.py and the end-to-end tests; deliberately imports no nameko."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

# What each `nameko run` is given, one OS process each. The gateway names its class because its
# module also imports the route mixins, which carry entrypoints and would be run as services too.
SERVICES = ["auth_service.service", "gateway.service:GatewayService"]

# Ignore http_proxy & co: readiness is always probed on a local address.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _tail(path: Path, n: int) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 200_000))
            lines = fh.read().decode("utf-8", "replace").splitlines()
    except OSError as exc:
        return f"(no log: {exc})"
    return "\n".join(lines[-n:])


class Stack:
    def __init__(self, root: Path, env: dict[str, str] | None = None,
                 services: Sequence[str] | None = None, config: str = "config.yaml",
                 log_dir: Path | None = None):
        self.root = Path(root).resolve()
        self.env = dict(env or {})
        # Resolved here, not as a default argument, so appends/monkeypatching of SERVICES count.
        self.services = list(SERVICES if services is None else services)
        self.config = config
        self.log_dir = Path(log_dir) if log_dir else self.root / "var" / "log"
        self.procs: dict[str, subprocess.Popen] = {}
        self.logs: dict[str, Path] = {}

    def _child_env(self) -> dict[str, str]:
        # Unbuffered so the log tail shown on failure is complete; BOOKIFY_CONFIG so that
        # migrate/seed (common.config.load) read the same file as `nameko run --config`.
        return {"PYTHONUNBUFFERED": "1", **os.environ,
                "BOOKIFY_CONFIG": str(self.root / self.config), **self.env}

    def prepare(self) -> None:
        """Run `python -m scripts.migrate` then `python -m scripts.seed` with the stack's env."""
        (self.root / "var").mkdir(exist_ok=True)  # default SQLite files live there
        for module in ("scripts.migrate", "scripts.seed"):
            subprocess.run([sys.executable, "-m", module], cwd=self.root,
                           env=self._child_env(), check=True)

    def start(self) -> None:
        """Spawn one `nameko run` per service, each in its own process group, logging to log_dir."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        env = self._child_env()
        try:
            for module in self.services:
                stem = module.split(":")[0].split(".")[0]  # var/log/gateway.log; full name if shared
                if any(p.stem == stem for p in self.logs.values()):
                    stem = module.replace(":", ".")
                log = self.logs[module] = self.log_dir / f"{stem}.log"
                with open(log, "wb") as out:
                    # Own process group: a terminal Ctrl-C reaches only the parent, which then
                    # stops the children in order; stop() can signal each whole group.
                    self.procs[module] = subprocess.Popen(
                        [sys.executable, "-m", "nameko", "run", "--config", self.config, module],
                        cwd=self.root, env=env, stdin=subprocess.DEVNULL, stdout=out,
                        stderr=subprocess.STDOUT, process_group=0)
        except BaseException:
            self.stop()
            raise

    def check(self) -> None:
        """Raise RuntimeError, with its log tail, if any service process has exited."""
        for module, proc in self.procs.items():
            if proc.poll() is not None:
                raise RuntimeError(
                    f"service {module} exited with code {proc.returncode}; "
                    f"last lines of {self.logs[module]}:\n{_tail(self.logs[module], 40)}")

    def wait_ready(self, url: str, timeout: float = 60) -> None:
        """Poll GET url until it answers 200; fail fast if a service process dies meanwhile."""
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        while True:
            self.check()
            try:
                with _OPENER.open(url, timeout=2) as resp:
                    if resp.status == 200:
                        return
                    last = f"HTTP {resp.status}"
            except urllib.error.HTTPError as exc:
                last = f"HTTP {exc.code}"
            except (urllib.error.URLError, OSError) as exc:
                last = str(getattr(exc, "reason", exc))
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{url} not ready after {timeout:g}s ({last})\n{self.logs_tail()}")
            time.sleep(0.2)

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM each process group, wait up to timeout overall, then SIGKILL stragglers."""
        running = {m: p for m, p in self.procs.items() if p.poll() is None}
        for proc in running.values():
            _killpg(proc, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in running.values():
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _killpg(proc, signal.SIGKILL)
                proc.wait()

    def logs_tail(self, n: int = 40) -> str:
        return "\n".join(f"--- {m} ({self.logs[m]}) ---\n{_tail(self.logs[m], n)}" for m in self.logs)

    def __enter__(self) -> Stack:
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()


def _killpg(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass
