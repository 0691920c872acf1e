"""Configuration access: config.yaml with nameko's ${VAR:default} placeholders.

Running services get their config from `nameko run --config`; scripts and tests
load the same file through `load()` so every process sees identical values.
"""
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_FILE = ROOT / "config.yaml"
SERVICE_PLACEHOLDER = "<service>"


def load(path=None):
    """Read config.yaml (or `path`), resolving ${VAR:default} from the environment."""
    from nameko.cli.utils.config import load_config

    with open(path or os.environ.get("BOOKIFY_CONFIG", DEFAULT_CONFIG_FILE)) as config_file:
        return load_config(config_file)


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
