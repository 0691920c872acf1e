"""Body of `make run`: ensure RabbitMQ, migrate and seed, run every Bookify service until Ctrl-C.
Settings come from the same environment variables config.yaml reads. One run per folder
(var/, or BOOKIFY_VAR_DIR): a second one on the same folder stops before it touches anything."""
from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from auth_service.seed import DEMO_CUSTOMER
from common import config as bookify_config
from payments_service.stripe_gateway import stripe_endpoint, uses_localstripe
from scripts import launcher

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_AMQP_URI = "amqp://guest:guest@127.0.0.1:5672/"
ADMIN_VARS = ("BOOKIFY_ADMIN_EMAIL", "BOOKIFY_ADMIN_PASSWORD")
DEV_ADMIN = ("admin@bookify.local", "change-me-admin-password")  # config.yaml's defaults
# Generated on a local run's first start, kept in var/secrets.json (0600) and reused: config.yaml
# has no default for them, so no two installs share one. Set in the environment, they win.
LOCAL_SECRETS = {"JWT_SECRET": lambda: secrets.token_urlsafe(48),
                 "STRIPE_WEBHOOK_SECRET": lambda: "whsec_" + secrets.token_urlsafe(32)}
# A local run listens on loopback only, unless these say otherwise.
LOCAL_BINDS = {"GATEWAY_ADDRESS": "127.0.0.1:8000", "GRPC_BIND": "127.0.0.1", "METRICS_ADDRESS": "127.0.0.1"}
LOCALSTRIPE_PORT = 8420  # where the services look for it when STRIPE_API_BASE is unset
# Each service process's metrics port: config.yaml's METRICS.ports key -> its variable.
METRICS_PORT_SETTINGS = {"auth": "AUTH_METRICS_PORT", "reservations": "RESERVATIONS_METRICS_PORT",
                         "payments": "PAYMENTS_METRICS_PORT", "notifications": "NOTIFICATIONS_METRICS_PORT",
                         "gateway": "GATEWAY_METRICS_PORT", "grpc_gateway": "GRPC_GATEWAY_METRICS_PORT"}


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _mask(url: str) -> str:
    parts = urlsplit(url)
    if not parts.password:
        return url
    return url.replace(f":{parts.password}@", ":***@", 1)


def _rel(path: Path) -> str:
    """`path` as typed from here when it is under the current folder, else in full."""
    path = Path(path).resolve()
    return os.path.relpath(path) if path.is_relative_to(Path.cwd()) else str(path)


def ensure_rabbitmq() -> None:
    uri = urlsplit(os.environ.get("AMQP_URI", DEFAULT_AMQP_URI))
    host, port = uri.hostname or "127.0.0.1", uri.port or 5672
    if _reachable(host, port):
        print(f"RabbitMQ reachable at {host}:{port}")
        return
    print(f"RabbitMQ is not reachable at {host}:{port}.")
    if host in ("127.0.0.1", "localhost", "::1") and shutil.which("rabbitmq-server"):
        print("Starting it: rabbitmq-server -detached (needs root) ...")
        if subprocess.run(["rabbitmq-server", "-detached"]).returncode == 0:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if _reachable(host, port):
                    print("RabbitMQ started")
                    return
                time.sleep(1)
        sys.exit("RabbitMQ did not come up within 30 s; see /var/log/rabbitmq/ "
                 "or start it yourself: sudo rabbitmq-server -detached")
    sys.exit("Install and start RabbitMQ, then retry:\n"
             "  sudo apt-get install rabbitmq-server && sudo rabbitmq-server -detached\n"
             "  or: docker compose -f docker-compose.yml -f docker-compose.debug.yml up rabbitmq\n"
             "      (on 127.0.0.1, with the account in RABBITMQ_DEFAULT_USER/RABBITMQ_DEFAULT_PASS:\n"
             "      AMQP_URI=amqp://$RABBITMQ_DEFAULT_USER:$RABBITMQ_DEFAULT_PASS@127.0.0.1:5672/)\n"
             "(or point AMQP_URI at a running broker)")


def local_secrets(var_dir: Path, env) -> dict[str, str]:
    """The secrets a local run passes to its services: each from `env` when set there, else
    from var_dir/secrets.json, generated (secrets.token_urlsafe) and saved there, mode 0600, the
    first time it is needed."""
    path = Path(var_dir) / "secrets.json"
    stored = {}
    if path.exists():
        os.chmod(path, 0o600)  # an older or hand-made file may have looser rights
        stored = json.loads(path.read_text())
    missing = [name for name in LOCAL_SECRETS if not env.get(name) and not stored.get(name)]
    if missing:
        stored.update({name: LOCAL_SECRETS[name]() for name in missing})
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(path.name + ".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(stored, out, indent=2)
        os.replace(temporary, path)
    return {name: env.get(name) or stored[name] for name in LOCAL_SECRETS}


def local_binds(env) -> dict[str, str]:
    """Loopback addresses for whatever of GATEWAY_ADDRESS / GRPC_BIND / METRICS_ADDRESS is unset."""
    return {name: value for name, value in LOCAL_BINDS.items() if not env.get(name)}


def var_dir(env) -> Path:
    """The folder of this run's databases (SQLite), secrets, logs and lock."""
    return Path(env.get("BOOKIFY_VAR_DIR") or ROOT / "var").resolve()


def var_db_url(env) -> dict[str, str]:
    """With BOOKIFY_VAR_DIR and no BOOKIFY_DB_URL, the SQLite files go in that folder too."""
    if env.get("BOOKIFY_VAR_DIR") and not env.get("BOOKIFY_DB_URL"):
        return {"BOOKIFY_DB_URL": f"sqlite:///{var_dir(env)}/bookify_<service>.db"}
    return {}


def localstripe_port(env) -> int:
    return int(env.get("LOCALSTRIPE_PORT") or LOCALSTRIPE_PORT)


@contextlib.contextmanager
def _environment(env):
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def listeners(env, local_stripe: bool) -> list[tuple[str, int, str, str]]:
    """(host, port, what, setting) of every port the run's processes will listen on, read from
    config.yaml under the environment they get (`env` added to this process's)."""
    with _environment(env):
        config = bookify_config.load()
    gateway = str(config["WEB_SERVER_ADDRESS"])
    host, _, port = gateway.rpartition(":")
    found = [(host, int(port), "the HTTP gateway", "GATEWAY_ADDRESS"),
             (str(config["GRPC_BIND_HOST"]), int(config["GRPC_BIND_PORT"]), "the gRPC gateway", "GRPC_PORT")]
    metrics = config.get("METRICS") or {}
    for name, setting in METRICS_PORT_SETTINGS.items():
        port = int((metrics.get("ports") or {}).get(name) or 0)
        if port:
            found.append((str(metrics.get("address", "")), port, f"{name}'s metrics", setting))
    if local_stripe:
        # localstripe binds every interface ("::"), whatever the services are told.
        found.append(("::" if socket.has_ipv6 else "", localstripe_port({**os.environ, **env}),
                      "localstripe", "LOCALSTRIPE_PORT"))
    return found


def _free(host: str, port: int) -> bool:
    # Bind as the servers will (SO_REUSEADDR, as eventlet.listen does): a port someone listens
    # on, on this address or the wildcard, refuses; one left in TIME_WAIT does not.
    host = host.strip("[]") or "0.0.0.0"
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
            if ":" in host:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)  # IPv4 too, as servers do
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
    except OSError:  # taken, or an address this machine does not have: the server would fail too
        return False
    return True


def port_problem(planned: list[tuple[str, int, str, str]]) -> str | None:
    """One line about the first port that cannot be used, or None when all are free."""
    seen: dict[int, str] = {}
    for host, port, what, setting in planned:
        if port in seen:
            return (f"Port {port} is set for both {seen[port]} and {what}: "
                    f"set {setting} to another port.")
        seen[port] = f"{what} ({setting})"
        if not _free(host, port):
            off = " (0 turns it off)" if setting.endswith("_METRICS_PORT") else ""
            where = "" if host.strip("[]") in ("", "0.0.0.0", "::") else f" on {host}"
            return (f"Port {port} for {what} is already in use{where}: stop what "
                    f"listens there, or set {setting} to a free port{off}.")
    return None


def stripe_uses_localstripe(env) -> bool:
    """Whether `make run` starts localstripe: neither STRIPE_API_KEY nor STRIPE_API_BASE set."""
    return uses_localstripe(env.get("STRIPE_API_KEY"), env.get("STRIPE_API_BASE"))


def stripe_api_base(env) -> str:
    """Where the payments service sends Stripe calls under these settings (config.yaml)."""
    return stripe_endpoint(env.get("STRIPE_API_KEY"), env.get("STRIPE_API_BASE"))[1]


def _on_sigterm(signum, frame):
    raise KeyboardInterrupt  # same clean shutdown as Ctrl-C


def _gateway_url(env) -> str:
    host, _, port = env.get("GATEWAY_ADDRESS", LOCAL_BINDS["GATEWAY_ADDRESS"]).rpartition(":")
    return f"http://{'127.0.0.1' if host in ('', '0.0.0.0', '::', '[::]') else host}:{port}"


def main() -> int:
    sys.stdout.reconfigure(line_buffering=True)  # keep our lines in order with the children's output
    folder = var_dir(os.environ)
    # First of all: a second run on this folder would migrate and seed the live databases and
    # truncate the logs the running services write.
    try:
        lock = launcher.lock_folder(folder)
    except launcher.FolderInUse as busy:
        sys.exit(f"{_rel(folder)}/ is in use by another `make run` ({busy.holder or 'pid unknown'}): "
                 f"stop that one first (Ctrl-C), or run this one on another folder with "
                 f"BOOKIFY_VAR_DIR and other ports (docs/debugging.md).")
    # Without a Stripe key (or an API base of your own), payments go to localstripe, the Stripe
    # emulator, started here; with a key alone, to Stripe itself.
    local_stripe = stripe_uses_localstripe(os.environ)
    binds = {**local_binds(os.environ), **var_db_url(os.environ)}
    # Every port before anything starts: a process that dies on bind leaves the others running.
    if problem := port_problem(listeners(binds, local_stripe)):
        sys.exit(problem)
    ensure_rabbitmq()
    email = os.environ.get("BOOKIFY_ADMIN_EMAIL", DEV_ADMIN[0])
    defaults = [f"{var}={val}" for var, val in zip(ADMIN_VARS, DEV_ADMIN, strict=True)
                if var not in os.environ]
    if defaults:
        print(f"Using dev admin defaults: {', '.join(defaults)}")
    base = _gateway_url(os.environ)
    generated = local_secrets(folder, os.environ)
    unset = [name for name in LOCAL_SECRETS if not os.environ.get(name)]
    if unset:
        print(f"Using this install's own {', '.join(unset)} from {_rel(folder / 'secrets.json')}")
    stripe_port = localstripe_port(os.environ)
    stack = launcher.Stack(ROOT, env={"BOOKIFY_DEMO_DATA": os.environ.get("BOOKIFY_DEMO_DATA", "1"),
                                      **generated, **binds},
                           log_dir=folder / "log", localstripe_port=stripe_port if local_stripe else None,
                           rolled_logs=True, lock_fd=lock)
    # Explicit: Python leaves SIGINT ignored if it started ignored (e.g. launched from a script with `&`).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _on_sigterm)
    code = 0
    try:
        print("Migrating and seeding ...", flush=True)
        stack.prepare()
        print(f"Starting {', '.join(stack.services)} ...", flush=True)
        stack.start()
        # Every service answers, not just the gateway; a loaded laptop may need a while.
        stack.wait_ready(f"{base}/ready", timeout=120)
        if local_stripe:
            stack.register_stripe_webhook(base, generated["STRIPE_WEBHOOK_SECRET"])
        db_url = os.environ.get("BOOKIFY_DB_URL")
        store = (f"BOOKIFY_DB_URL={_mask(db_url)}" if db_url else
                 f"SQLite (default), {_rel(folder)}/bookify_<service>.db")
        messages = ("emails by SendGrid" if os.environ.get("SENDGRID_API_KEY") else
                    "emails by SMTP" if os.environ.get("SMTP_HOST") else
                    "emails to the console (no SENDGRID_API_KEY / SMTP_HOST)")
        messages += ("; SMS by Twilio" if os.environ.get("TWILIO_ACCOUNT_SID") else
                     "; SMS to the console (no TWILIO_ACCOUNT_SID)") + ": see the notifications log"
        payments = (f"localstripe (Stripe emulator) on 127.0.0.1:{stripe_port}; no real money"
                    if local_stripe else f"Stripe at {stripe_api_base(os.environ)} (STRIPE_API_KEY / STRIPE_API_BASE)")
        password = "password from BOOKIFY_ADMIN_PASSWORD" if "BOOKIFY_ADMIN_PASSWORD" in os.environ \
            else f"password {DEV_ADMIN[1]} (dev default)"
        grpc_address = f"{os.environ.get('GRPC_BIND', '127.0.0.1')}:{os.environ.get('GRPC_PORT', '50051')}"
        print(f"\nBookify is running\n"
              f"  gateway:  {base}\n"
              f"  OpenAPI:  {base}/openapi.json\n"
              f"  gRPC:     {grpc_address} (proto/bookify/v1, docs/grpc.md)\n"
              f"  admin:    {email}, {password}\n"
              f"  demo:     {DEMO_CUSTOMER[0]}, password {DEMO_CUSTOMER[1]}\n"
              f"  store:    {store}\n"
              f"  payments: {payments}\n"
              f"  messages: {messages}\n"
              f"  logs:     {', '.join(_rel(p) for p in stack.logs.values())}\n"
              f"Ctrl-C to stop.", flush=True)
        while True:
            stack.check()
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("\nStopping Bookify ...", flush=True)
    except subprocess.CalledProcessError as exc:
        print(f"python {' '.join(exc.cmd[1:])} failed with exit code {exc.returncode}", file=sys.stderr)
        code = 1
    except (RuntimeError, TimeoutError) as exc:
        print(exc, file=sys.stderr)
        code = 1
    finally:
        # A second Ctrl-C must not cut the shutdown short; stop() escalates to SIGKILL anyway.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stack.stop()
    print("Stopped." if code == 0 else "Stopped after a failure.", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
