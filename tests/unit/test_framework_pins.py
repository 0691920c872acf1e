"""Everything our framework extensions (common/runtime/, and the gateway's HTTP entrypoint)
take from nameko and nameko-grpc beyond their documented API, pinned here so that an upgrade
fails in this one file, saying what moved, instead of somewhere at run time.

For every class that extends a framework class the test reads our source and checks that
- each method or attribute we override still exists on a framework base, with the same
  parameters (an override of something renamed upstream would silently stop being called);
- each attribute we read from the base (`self.consumer`, `self.sock`, ...) is still defined by
  a framework base, as a class attribute or assigned in its source.
common/runtime/README.md says why each extension exists."""
import ast
import importlib
import inspect
import re
from importlib.metadata import version
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FRAMEWORK = ("nameko", "nameko_grpc", "nameko_sqlalchemy")
EXTENSIONS = ["common.runtime.rpc", "common.runtime.grpc_transport", "common.runtime.consumers",
              "common.runtime.inbox", "common.runtime.timers", "common.runtime.database", "common.runtime.http"]


def _locked(package):
    lock = (ROOT / "requirements" / "lock.txt").read_text()
    return re.search(rf"^{package}==(\S+)$", lock, re.MULTILINE | re.IGNORECASE).group(1)


@pytest.mark.parametrize("package", ["nameko", "nameko-grpc", "nameko-sqlalchemy"])
def test_the_framework_is_the_version_these_pins_were_written_for(package):
    assert version(package) == _locked(package) == {"nameko": "3.0.0rc11", "nameko-grpc": "1.3.0",
                                                       "nameko-sqlalchemy": "1.5.0"}[package], (
        f"{package} moved: check every pin in this file against the new version, then update the versions here")


def _extension_classes():
    for module_name in EXTENSIONS:
        module = importlib.import_module(module_name)
        for node in ast.parse(inspect.getsource(module)).body:
            if isinstance(node, ast.ClassDef):
                cls = getattr(module, node.name)
                bases = [base for base in cls.__mro__[1:] if base.__module__.startswith(FRAMEWORK)]
                if bases:
                    yield pytest.param(cls, node, bases, id=f"{module_name}.{node.name}")


CLASSES = list(_extension_classes())


def _self_attributes(node, ctx):
    return {each.attr for each in ast.walk(node)
            if isinstance(each, ast.Attribute) and isinstance(each.value, ast.Name)
            and each.value.id == "self" and isinstance(each.ctx, ctx)}


def _defined_by(bases, name):
    """Whether a framework base defines `name`: on the class, or assigned in its source."""
    assigned = re.compile(rf"\bself\.{re.escape(name)}\s*(:[^=]+)?=[^=]")
    return any(name in vars(base) or assigned.search(inspect.getsource(base)) for base in bases)


def test_the_extensions_are_found():
    names = {param.id for param in CLASSES}
    assert {"common.runtime.rpc.Rpc", "common.runtime.rpc.StartupSafeReplyListener",
            "common.runtime.grpc_transport.WakingServerConnection", "common.runtime.consumers.EventHandler",
            "common.runtime.http.JsonHttp"} <= names


@pytest.mark.parametrize("cls, node, bases", CLASSES)
def test_every_override_still_overrides_something_with_the_same_parameters(cls, node, bases):
    for member in node.body:
        if not isinstance(member, ast.FunctionDef) or member.name == "__init__":
            continue  # constructors: our own code calls them, with our arguments
        upstream = next((vars(base)[member.name] for base in bases if member.name in vars(base)), None)
        if upstream is None:
            continue  # our own method
        if isinstance(upstream, property) or not callable(upstream):
            continue
        ours = list(inspect.signature(getattr(cls, member.name)).parameters)
        theirs = list(inspect.signature(upstream).parameters)
        assert ours[:len(theirs)] == theirs or "args" in ours or "kwargs" in ours, (
            f"{cls.__name__}.{member.name}{ours} no longer matches the framework's {theirs}")


# What each class overrides on purpose: an override that lost its base method is flagged
# above as "our own"; this list makes that loud.
OVERRIDES = {
    "RpcPublisher": {"setup", "stop", "kill"},
    "StartupSafeReplyListener": {"setup", "check_for_lost_replies", "handle_message", "stop", "kill"},
    "TimedServiceRpc": {"setup", "get_dependency"},
    "RpcResponder": {"sharing_key", "setup", "handle_result"},
    "Rpc": {"__init__", "handle_message", "setup", "check_signature"},
    "WakingSendStream": {"__init__", "populate", "close"},
    "WakingServerConnection": {"__init__", "run_forever", "stop", "request_received"},
    "_WakingConnectionPool": {"run"},
    "_WakingChannel": {"__init__"},
    "WakingGrpcServer": {"setup", "timeout"},
    "Grpc": {"__init__", "handle_result"},
    "TolerantConsumer": {"ack_message", "requeue_message"},
    "_RawConsumer": {"get_consumers"},
    "PolicyEventHandler": {"__init__"},
    "PolicyConsumer": {"__init__"},
    "ConfiguredTimer": {"__init__", "setup"},
    "Store": {"__init__"},
    "Database": {"__init__", "setup", "stop", "get_dependency"},
    "JsonWsgiApp": {"__init__", "__call__"},
    "JsonWebServer": {"get_wsgi_app", "get_wsgi_server", "context_data_from_headers"},
    "JsonHttp": {"__init__", "setup", "handle_request", "response_from_result", "response_from_exception"},
}


@pytest.mark.parametrize("cls, node, bases", CLASSES)
def test_the_methods_we_override_are_still_the_frameworks(cls, node, bases):
    methods = {member.name for member in node.body if isinstance(member, ast.FunctionDef)}
    overridden = {name for name in methods if any(name in vars(base) for base in bases)}
    assert overridden == OVERRIDES.get(cls.__name__, set()), (
        f"{cls.__name__}: the framework no longer has {sorted(OVERRIDES.get(cls.__name__, set()) - overridden)}"
        f"; newly overridden {sorted(overridden - OVERRIDES.get(cls.__name__, set()))} (add them here)")


@pytest.mark.parametrize("cls, node, bases", CLASSES)
def test_what_we_read_from_the_framework_is_still_there(cls, node, bases):
    ours = ({member.name for member in node.body if isinstance(member, ast.FunctionDef)}
            | {target.id for member in node.body if isinstance(member, ast.Assign)
               for target in member.targets if isinstance(target, ast.Name)}
            | _self_attributes(node, ast.Store))
    ours |= {name for klass in cls.__mro__[1:] if not klass.__module__.startswith(FRAMEWORK)
             for name in vars(klass)}
    missing = sorted(name for name in _self_attributes(node, ast.Load) - ours if not _defined_by(bases, name))
    assert missing == [], f"{cls.__name__} reads {missing}, which the framework no longer defines"


def test_the_worker_pool_rpc_reads_to_refuse_work_it_cannot_start():
    """common/runtime/rpc.py (Rpc.handle_message) reads `container._worker_pool.free()`."""
    from nameko.containers import ServiceContainer

    class Probe:
        name = "probe"

    container = ServiceContainer(Probe)
    assert container._worker_pool.free() == container.max_workers


def test_nameko_s_config_loader_still_loads_on_its_own_and_reads_as_nameko_run_does(tmp_path, monkeypatch):
    # common/config.py runs nameko/cli/utils/config.py as a module of its own (importing it by
    # name loads the whole framework): it must still stand alone and mean what nameko means.
    from nameko.cli.utils.config import load_config

    from common import config

    monkeypatch.setenv("PIN_HOST", "db.internal")
    text = "A: ${PIN_HOST}\nB: ${PIN_MISSING:fallback}\nC: ${PIN_PORT:5672}\nD: amqp://${PIN_HOST:x}:1/\n"
    (tmp_path / "c.yaml").write_text(text)
    with open(tmp_path / "c.yaml") as stock:
        expected = load_config(stock)
    assert config.load(tmp_path / "c.yaml") == expected == {"A": "db.internal", "B": "fallback", "C": 5672,
                                                             "D": "amqp://db.internal:1/"}
