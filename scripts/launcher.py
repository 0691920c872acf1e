"""Run Bookify's services as separate `nameko run` processes, exactly as `make run` does.
Shared by scripts/run_local.py and the end-to-end tests; deliberately imports no nameko."""
from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from scripts import localstripe_server

# What each `nameko run` is given, one OS process each. The gateway names its class because its
# module also imports the route mixins, which carry entrypoints and would be run as services too.
SERVICES = [
    "auth_service.service",
    "reservations_service.service",
    "payments_service.service",
    "notifications_service.service",
    "gateway.service:GatewayService",
    "gateway.grpc_server:GrpcGatewayService",
]

LOCALSTRIPE = "localstripe"
LOCK_FILE = "run.lock"
# Set for each process whose output goes to a file of its own: the process then writes that file
# itself and rolls it over (common/logfile.py) instead of leaving it to grow.
LOG_FILE_VARIABLE = "BOOKIFY_LOG_FILE"

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


def register_stripe_webhook(localstripe_port: int, gateway_url: str, secret: str) -> None:
    """Point localstripe's signed webhooks at the gateway, as a Stripe dashboard would."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{localstripe_port}/_config/webhooks/bookify", method="POST",
        data=json.dumps({"url": f"{gateway_url}/v1/webhooks/stripe", "secret": secret}).encode(),
        headers={"Content-Type": "application/json"})
    with _OPENER.open(request, timeout=5):
        pass


class FolderInUse(RuntimeError):
    """Another run holds the lock of this folder."""

    def __init__(self, folder: Path, holder: str):
        self.folder, self.holder = folder, holder
        super().__init__(f"{folder} is in use by another run ({holder or 'pid unknown'})")


def lock_folder(folder: Path) -> int:
    """Take `folder`'s run lock (an exclusive flock on folder/run.lock) for as long as this
    process, or any child it passes the returned descriptor to, lives: the kernel drops it
    when the last of them exits, so a crash leaves nothing stale behind. Raises FolderInUse,
    having written nothing, when another run holds it."""
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 100).decode("ascii", "replace").strip()
        os.close(fd)
        raise FolderInUse(folder, holder) from None
    os.ftruncate(fd, 0)
    os.write(fd, f"pid {os.getpid()}\n".encode())  # for the message a second run prints
    return fd


class Stack:
    def __init__(self, root: Path, env: dict[str, str] | None = None,
                 services: Sequence[str] | None = None, config: str = "config.yaml",
                 log_dir: Path | None = None, localstripe_port: int | None = None,
                 stock_localstripe: bool = False, rolled_logs: bool = False,
                 lock_fd: int | None = None):
        self.root = Path(root).resolve()
        self.env = dict(env or {})
        # localstripe (the Stripe emulator) for runs without real Stripe credentials: the
        # scripts.localstripe_server build, whose cost per payment does not grow with its store;
        # `stock_localstripe` runs the emulator as shipped instead (to measure the difference).
        self.localstripe_port = localstripe_port
        self.stock_localstripe = stock_localstripe
        if localstripe_port:
            self.env["STRIPE_API_BASE"] = f"http://127.0.0.1:{localstripe_port}"
        # Resolved here, not as a default argument, so appends/monkeypatching of SERVICES count.
        self.services = list(SERVICES if services is None else services)
        self.config = config
        self.log_dir = Path(log_dir) if log_dir else self.root / "var" / "log"
        # make run: each process writes and rolls over its own log (LOG_FILE_MAX_BYTES,
        # LOG_FILE_BACKUPS); otherwise its output simply goes to the file.
        self.rolled_logs = rolled_logs
        # The folder's run lock, held by every process started (lock_folder): a stack whose
        # parent was killed still keeps a second run off its databases and logs.
        self.pass_fds = (lock_fd,) if lock_fd is not None else ()
        self.procs: dict[str, subprocess.Popen] = {}
        self.logs: dict[str, Path] = {}

    def _child_env(self) -> dict[str, str]:
        # Unbuffered so the log tail shown on failure is complete; BOOKIFY_CONFIG so that
        # migrate/seed (common.config.load) read the same file as `nameko run --config`.
        env = {"PYTHONUNBUFFERED": "1", **os.environ,
               "BOOKIFY_CONFIG": str(self.root / self.config), **self.env}
        env.pop(LOG_FILE_VARIABLE, None)  # per process (_log_env), never one file for all
        return env

    def _log_env(self, env: dict[str, str], log: Path) -> dict[str, str]:
        return {**env, LOG_FILE_VARIABLE: str(log)} if self.rolled_logs else env

    def prepare(self) -> None:
        """Migrate and seed (`python -m scripts.prepare`) with the stack's env. A stack is a
        local run, so a MariaDB database that does not exist yet is created."""
        (self.root / "var").mkdir(exist_ok=True)  # default SQLite files live there
        subprocess.run([sys.executable, "-m", "scripts.prepare", "--create-databases"], cwd=self.root,
                       env=self._child_env(), check=True, pass_fds=self.pass_fds)

    def start(self) -> None:
        """Spawn one `nameko run` per service, each in its own process group, logging to log_dir."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        env = self._child_env()
        try:
            if self.localstripe_port:
                self._start_localstripe(env)
            for module in self.services:
                # var/log/<name>.log; a second instance of a service gets <name>-2.log
                # auth_service.service -> auth_service, gateway.grpc_server:… -> gateway_grpc_server
                name = module.split(":")[0].removesuffix(".service").replace(".", "_")
                instance = sum(1 for key in self.procs if key.split("#")[0] == module) + 1
                key = module if instance == 1 else f"{module}#{instance}"
                stem = name if instance == 1 else f"{name}-{instance}"
                self.logs[key] = self.log_dir / f"{stem}.log"
                self._spawn(key, env)
        except BaseException:
            self.stop()
            raise

    def _spawn(self, key: str, env: dict[str, str], fresh: bool = True) -> None:
        module = key.split("#")[0]
        with _log_file(self.logs[key], fresh) as out:
            # Own process group: a terminal Ctrl-C reaches only the parent, which then
            # stops the children in order; stop() can signal each whole group.
            self.procs[key] = subprocess.Popen(
                [sys.executable, "-m", "nameko", "run", "--config", self.config, module],
                cwd=self.root, env=self._log_env(env, self.logs[key]), stdin=subprocess.DEVNULL,
                stdout=out, stderr=subprocess.STDOUT, process_group=0, pass_fds=self.pass_fds)

    def stop_service(self, key: str, timeout: float = 10) -> None:
        """Stop one service process (SIGTERM, then SIGKILL after `timeout`); its queues stay."""
        proc = self.procs[key]
        if proc.poll() is None:
            _killpg(proc, signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                _killpg(proc, signal.SIGKILL)
                proc.wait()

    def start_service(self, key: str) -> None:
        """Start a stopped service process again, appending to its log."""
        self._spawn(key, self._child_env(), fresh=False)

    def _start_localstripe(self, env) -> None:
        log = self.logs[LOCALSTRIPE] = self.log_dir / "localstripe.log"
        # As shipped, it snapshots its store to /tmp/localstripe.pickle on every write.
        command = ([str(Path(sys.executable).with_name("localstripe"))] if self.stock_localstripe
                   else localstripe_server.COMMAND)
        with _log_file(log) as out:
            self.procs[LOCALSTRIPE] = subprocess.Popen(
                [*command, "--port", str(self.localstripe_port), "--from-scratch"], cwd=self.root,
                env=self._log_env(env, log), stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, process_group=0, pass_fds=self.pass_fds)
        deadline = time.monotonic() + 30
        while not _listening(self.localstripe_port):
            self.check()
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"localstripe did not listen on {self.localstripe_port}\n{self.logs_tail()}")
            time.sleep(0.1)

    def register_stripe_webhook(self, gateway_url: str, secret: str) -> None:
        register_stripe_webhook(self.localstripe_port, gateway_url, secret)

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


def _log_file(path: Path, fresh: bool = True):
    """`path` opened for a child's output, emptied first when `fresh`. Always in append mode:
    the child may write the same file through a handler of its own (rolled_logs), and two
    writers that do not both append overwrite each other's lines."""
    out = open(path, "ab")
    if fresh:
        out.truncate(0)
    return out


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _killpg(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass
