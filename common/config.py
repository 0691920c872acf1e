"""Configuration access: config.yaml with nameko's ${VAR:default} placeholders.

Running services get their config from `nameko run --config`; scripts and tests
load the same file through `load()` so every process sees identical values.
"""
import functools
import importlib.util
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_FILE = ROOT / "config.yaml"
SERVICE_PLACEHOLDER = "<service>"


def load(path=None):
    """Read config.yaml (or `path`), resolving ${VAR:default} from the environment."""
    with open(path or os.environ.get("BOOKIFY_CONFIG", DEFAULT_CONFIG_FILE)) as config_file:
        return _nameko_config_loader().load_config(config_file)


@functools.cache
def _nameko_config_loader():
    """nameko's own loader (nameko/cli/utils/config.py), so `${VAR:default}` means exactly what
    it means to `nameko run --config`; but read as a module of its own: importing it by name
    first runs the `nameko.cli` package, which loads eventlet and the whole framework, half a
    second of CPU that every liveness probe paid (tests/unit/test_framework_pins.py pins it)."""
    import nameko

    path = Path(nameko.__file__).parent / "cli" / "utils" / "config.py"
    spec = importlib.util.spec_from_file_location("bookify_nameko_config_loader", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def current():
    """The config of the running nameko process (set by `nameko run` or `activate`)."""
    import nameko

    return nameko.config


def activate(config):
    """Make `config` the running process's config (scripts and tests outside `nameko run`)."""
    import nameko

    nameko.config.setup(config)
    return nameko.config


def database_url(config, service):
    """The service's own database URL, from the one DATABASE_URL template."""
    template = config["DATABASE_URL"]
    if SERVICE_PLACEHOLDER not in template:
        raise ValueError(f"DATABASE_URL must contain {SERVICE_PLACEHOLDER}: {template}")
    return template.replace(SERVICE_PLACEHOLDER, service)


def section(config, name):
    """A named block of the config (JWT, AUTH, …) as a dict, empty when absent."""
    return dict(config.get(name) or {})


class MissingSecret(SystemExit):
    """A secret the service cannot run without is unset: the process stops with one line.
    There is no built-in default, so no two installs ever share a secret; `make run` (local
    mode) generates its own under var/ and passes them on."""

    def __init__(self, variable):
        super().__init__(f"{variable} is not set: refusing to start without it (set it, or use "
                         f"`make run`, which generates one under var/; see docs/configuration.md)")
        self.variable = variable


def require_secret(value, variable):
    """`value`, or MissingSecret naming `variable` when it is unset or empty."""
    if value is None or str(value) == "":
        raise MissingSecret(variable)
    return value


def require_jwt_secret(jwt_config):
    """HS256 signs with JWT_SECRET; RS256 uses key files and needs no secret."""
    if (jwt_config.get("algorithm") or "HS256") == "HS256":
        require_secret(jwt_config.get("secret"), "JWT_SECRET")
