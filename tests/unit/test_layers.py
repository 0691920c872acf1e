"""The layers docs/architecture.md draws, held by the imports themselves.

- common/*.py and common/contracts/: plain Python; neither the framework nor SQLAlchemy.
- common/storage/: SQLAlchemy; never the framework.
- common/runtime/: the nameko extensions; the only part of common/ that may load nameko.
- In each service package every module is domain or storage code, free of the framework,
  except the entrypoints (`service.py`) and the adapters named in ADAPTERS.

Each module is imported in a fresh interpreter, so a framework pulled in through any chain
of imports counts, not only a direct `import nameko`."""
import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FRAMEWORK = {"nameko", "eventlet", "kombu", "werkzeug"}
SERVICES = ("auth_service", "payments_service", "reservations_service", "notifications_service")
# Modules of a service package that speak the framework's language on purpose.
ADAPTERS = {f"{service}.service" for service in SERVICES} | {"notifications_service.queues"}


def _module(path):
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


def _modules(folder, pattern="*.py"):
    return sorted(_module(path) for path in (ROOT / folder).glob(pattern)
                  if path.name != "__init__.py" and "migrations" not in path.parts)


PURE = _modules("common") + _modules("common/contracts")
STORAGE = _modules("common/storage")
DOMAIN = [module for service in SERVICES for module in _modules(service, "**/*.py") if module not in ADAPTERS]


# Imported once before the modules are tried, to spare each its own import: libraries a layer
# may use. The framework is never among them, and SQLAlchemy only where the layer allows it.
PRELOAD = {"pure": ["marshmallow", "jwt", "cryptography", "yaml"],
           "rest": ["marshmallow", "jwt", "cryptography", "yaml", "sqlalchemy", "sqlalchemy.orm"]}
PROBE = """
import importlib, json, os, sys
preload, modules = json.loads(sys.argv[1]), json.loads(sys.argv[2])
for library in preload:
    importlib.import_module(library)
found = {}
for module in modules:  # each in a child forked from this clean parent
    read, write = os.pipe()
    if os.fork() == 0:
        os.close(read)
        try:
            importlib.import_module(module)
            answer = sorted({name.split(".")[0] for name in sys.modules})
        except BaseException as error:
            answer = {"error": repr(error)}
        os.write(write, json.dumps(answer).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        found[module] = json.loads(pipe.read())
    os.wait()
print(json.dumps(found))
"""


def _loaded_by(modules, preload):
    """{module: the top-level packages importing it leaves in sys.modules}, each imported in a
    fresh process (forked from one that imported only `preload`)."""
    result = subprocess.run([sys.executable, "-c", PROBE, json.dumps(preload), json.dumps(modules)],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    found = json.loads(result.stdout)
    failed = {module: answer["error"] for module, answer in found.items() if isinstance(answer, dict)}
    assert failed == {}
    return {module: set(answer) for module, answer in found.items()}


@pytest.fixture(scope="module")
def loaded():
    return {**_loaded_by(PURE, PRELOAD["pure"]), **_loaded_by(STORAGE + DOMAIN, PRELOAD["rest"])}


def test_the_layers_are_found():
    assert {"common.errors", "common.clock", "common.contracts.events"} <= set(PURE)
    assert {"common.storage.engines", "common.storage.outbox"} <= set(STORAGE)
    assert {"reservations_service.booking", "payments_service.charges", "notifications_service.notifier",
            "auth_service.accounts", "auth_service.rbac"} <= set(DOMAIN)


def test_pure_common_loads_neither_the_framework_nor_sqlalchemy(loaded):
    offenders = {module: sorted(loaded[module] & (FRAMEWORK | {"sqlalchemy"})) for module in PURE}
    assert {module: found for module, found in offenders.items() if found} == {}


def test_storage_never_loads_the_framework(loaded):
    offenders = {module: sorted(loaded[module] & FRAMEWORK) for module in STORAGE}
    assert {module: found for module, found in offenders.items() if found} == {}


def test_domain_modules_never_load_the_framework(loaded):
    offenders = {module: sorted(loaded[module] & FRAMEWORK) for module in DOMAIN}
    assert {module: found for module, found in offenders.items() if found} == {}


def _common_imports(module):
    tree = ast.parse((ROOT / Path(*module.split("."))).with_suffix(".py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module + "".join(f".{alias.name}" for alias in node.names[:1]
                                        if node.module == "common")
        elif isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)


@pytest.mark.parametrize("layer, above", [(PURE, ("common.storage", "common.runtime")),
                                          (STORAGE, ("common.runtime",))])
def test_a_layer_never_imports_the_one_above_it(layer, above):
    wrong = {module: sorted(name for name in _common_imports(module) if name.startswith(above))
             for module in layer}
    assert {module: names for module, names in wrong.items() if names} == {}
