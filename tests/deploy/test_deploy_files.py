"""The deployment files, checked without a Docker engine or a cluster: schemas, and what they must say."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

import manage_all

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
K8S_VERSION = "1.31.0"
SERVICES = {
    # settings package → (compose services, k8s workloads) that run it
    "user_service": (["user-service", "user-relay", "user-migrate"], ["user-service", "user-relay", "user-migrate"]),
    "loan_service": (
        ["loan-service", "loan-relay", "loan-worker", "loan-beat", "loan-migrate"],
        ["loan-service", "loan-relay", "loan-worker", "loan-beat", "loan-migrate"],
    ),
    "notification_service": (
        ["notification-service", "notification-worker", "notification-beat", "notification-migrate"],
        ["notification-service", "notification-worker", "notification-beat", "notification-migrate"],
    ),
    "gateway_project": (["gateway"], ["gateway"]),
}
# Variables a container may leave at their development default, and why.
DEFAULT_IS_FINE = {
    "DJANGO_DEBUG": "false unless set",
    "LMS_VAR_DIR": "the image sets /var/lib/lms",
    "SESSION_COOKIE_SECURE": "true outside development",
    "CSRF_COOKIE_SECURE": "true outside development",
    "EMAIL_BACKEND": "SMTP",
    "NOTIFICATION_EMAIL_BACKEND": "the SMTP email backend",
    "NOTIFICATION_SMS_BACKEND": "no SMS provider configured",
    "NOTIFICATION_PUSH_BACKEND": "no push provider configured",
    "JWT_JWKS_REFRESH_COOLDOWN": "30 s",
    "GATEWAY_CONNECT_TIMEOUT": "1 s",
    "GATEWAY_MAX_RETRIES": "2",
    "GATEWAY_POOL_SIZE": "32",
    "GATEWAY_BREAKER_FAILURES": "5",
    "GATEWAY_BREAKER_RESET_SECONDS": "5 s",
    "GATEWAY_HEALTH_INTERVAL": "5 s",
    "PROMETHEUS_MULTIPROC_DIR": "per-process metrics",
    "POD_IP": "Kubernetes only (the downward API): compose scrapes each service by its name",
}
ENV_READERS = {"env_str", "env_bool", "env_int", "env_float", "env_list", "env_secret"}


def _reads(tree: ast.AST) -> set[str]:
    """Names passed to the common.env readers (env_str("NAME", ...)) anywhere in `tree`."""
    return {
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and getattr(node.func, "id", "") in ENV_READERS
        and node.args
        and isinstance(node.args[0], ast.Constant)
    }


def _helpers() -> dict[str, set[str]]:
    """The variables each settings helper of common reads, by function name."""
    helpers = {}
    for module in ("env.py", "django_settings.py", "celery_config.py"):
        tree = ast.parse((ROOT / "common" / "common" / module).read_text())
        for node in tree.body:
            if isinstance(node, ast.FunctionDef):
                helpers[node.name] = _reads(node)
    helpers["var_dir"] = {"LMS_VAR_DIR"}
    helpers["database_from_env"] = {"DATABASE_URL"}
    helpers["is_development"] = {"DJANGO_ENV"}
    return helpers


def settings_variables(package: str) -> set[str]:
    """Every environment variable a service's settings read, directly or through common's helpers."""
    tree = ast.parse((ROOT / package / package / "settings.py").read_text())
    helpers = _helpers()
    names = _reads(tree) | {"DJANGO_ENV"}  # env_secret reads DJANGO_ENV too
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") in helpers:
            names |= helpers[node.func.id]
    return names


def secrets_of(package: str) -> set[str]:
    tree = ast.parse((ROOT / package / package / "settings.py").read_text())
    return {
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "env_secret"
    }


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


def _kustomization(folder: Path) -> list[dict]:
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    documents = []
    for resource in kustomization["resources"]:
        documents += [doc for doc in yaml.safe_load_all((folder / resource).read_text()) if doc]
    return documents


@pytest.fixture(scope="module")
def manifests() -> list[dict]:
    """The workloads (`kubectl apply -k docker/k8s`) and the migration Jobs (`docker/k8s/migrate`)."""
    return _kustomization(DOCKER / "k8s") + _kustomization(DOCKER / "k8s" / "migrate")


def test_migration_jobs_are_applied_on_their_own_before_the_rollout():
    workloads = {doc["kind"] for doc in _kustomization(DOCKER / "k8s")}
    jobs = _kustomization(DOCKER / "k8s" / "migrate")

    assert "Job" not in workloads  # a Job's template is immutable: the next release's apply would fail
    assert sorted(job["metadata"]["name"] for job in jobs) == ["loan-migrate", "notification-migrate", "user-migrate"]


def pod_spec(document: dict) -> dict:
    return document["spec"]["template"]["spec"]


def test_compose_file_follows_the_compose_specification(compose):
    schema = json.loads((DOCKER / "schema" / "compose-spec.json").read_text())

    jsonschema.validate(compose, schema)


def test_every_manifest_is_valid_kubernetes(manifests):
    for document in manifests:
        kubernetes_validate.validate(document, K8S_VERSION, strict=True)
    kinds = {document["kind"] for document in manifests}
    assert kinds >= {
        "Namespace",
        "ConfigMap",
        "Secret",
        "Deployment",
        "Service",
        "Ingress",
        "Job",
        "HorizontalPodAutoscaler",
        "PersistentVolumeClaim",
    }


def test_the_dockerfile_is_pinned_multi_stage_and_not_root():
    dockerfile = (DOCKER / "Dockerfile").read_text()
    entrypoint = (DOCKER / "entrypoint.sh").read_text()

    image = re.search(r"ARG PYTHON_IMAGE=(\S+)", dockerfile).group(1)
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+", image)
    assert ":latest" not in dockerfile
    assert dockerfile.count("FROM ") >= 2
    assert re.search(r"^USER (?!root|0\b)\S+", dockerfile, re.MULTILINE)
    for command in ("web)", "worker)", "beat)", "relay)", "migrate)"):
        assert command in entrypoint


def test_only_the_gateway_publishes_a_port(compose):
    published = {name for name, service in compose["services"].items() if service.get("ports")}
    tools = {name for name in published if compose["services"][name].get("profiles") == ["observability"]}

    assert published - tools == {"gateway"}
    for name in tools:  # Grafana: an operator's tool, on this host only
        assert all(port.startswith("127.0.0.1:") for port in compose["services"][name]["ports"]), name


def test_every_long_running_web_service_has_a_health_check_and_a_restart_policy(compose):
    for name, service in compose["services"].items():
        if "migrate" in name:
            assert service["restart"] == "no"
            continue
        assert service.get("restart") == "unless-stopped", name
        if service.get("command") in (["web"], ["worker"]) or name in ("postgres", "redis"):
            assert "healthcheck" in service, name


def test_services_start_after_their_migrations(compose):
    for names, _ in SERVICES.values():
        migrate = next((n for n in names if n.endswith("migrate")), None)
        for name in names:
            if migrate and name != migrate:
                condition = compose["services"][name]["depends_on"][migrate]["condition"]
                assert condition == "service_completed_successfully", name


def test_the_signing_key_is_mounted_into_user_service_only(compose, manifests):
    with_key = {
        name for name, service in compose["services"].items() if "jwt_private_key" in service.get("secrets", [])
    }
    assert with_key == {"user-service", "user-relay", "user-migrate"}

    k8s_with_key = set()
    for document in manifests:
        if document["kind"] in ("Deployment", "Job"):
            volumes = pod_spec(document).get("volumes", [])
            if any(v.get("secret", {}).get("secretName") == "lms-jwt-signing-key" for v in volumes):
                k8s_with_key.add(document["metadata"]["name"])
    assert k8s_with_key == {"user-service", "user-relay", "user-migrate"}


def test_every_deployment_has_resources_and_web_ones_have_probes(manifests):
    for document in manifests:
        if document["kind"] != "Deployment":
            continue
        container = pod_spec(document)["containers"][0]
        assert container["resources"]["requests"], document["metadata"]["name"]
        assert container["resources"]["limits"], document["metadata"]["name"]
        assert container["securityContext"]["runAsNonRoot"] is True
        if container["args"] == ["web"]:
            liveness, readiness = container["livenessProbe"]["httpGet"], container["readinessProbe"]["httpGet"]
            assert liveness["path"] in ("/health", "/health/live")
            assert readiness["path"] == "/health/ready"
            # kubelet's Host is the pod IP, which ALLOWED_HOSTS rejects with a 400: the probes name the service
            config = next(d for d in manifests if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "lms-config")
            for probe in (liveness, readiness):
                host = next(h["value"] for h in probe["httpHeaders"] if h["name"] == "Host")
                assert host in config["data"]["ALLOWED_HOSTS"].split(","), document["metadata"]["name"]
        if container["args"] == ["worker"]:
            assert "livenessProbe" in container


def test_the_ingress_reaches_the_gateway_only_and_hpas_scale_gateway_and_worker(manifests):
    backends = {
        path["backend"]["service"]["name"]
        for document in manifests
        if document["kind"] == "Ingress"
        for rule in document["spec"]["rules"]
        for path in rule["http"]["paths"]
    }
    scaled = {
        document["spec"]["scaleTargetRef"]["name"]
        for document in manifests
        if document["kind"] == "HorizontalPodAutoscaler"
    }

    assert backends == {"gateway"}
    assert scaled == {"gateway", "notification-worker"}


def _k8s_env(manifests: list[dict], workload: str) -> dict[str, str | None]:
    """The environment of a workload's container: lms-config's data if it takes it, then its own env on top.

    A variable set from a secret (valueFrom) is there with the value None.
    """
    config = next(d for d in manifests if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "lms-config")
    for document in manifests:
        if document["kind"] in ("Deployment", "Job") and document["metadata"]["name"] == workload:
            container = pod_spec(document)["containers"][0]
            values: dict[str, str | None] = {}
            if any(ref.get("configMapRef", {}).get("name") == "lms-config" for ref in container.get("envFrom", [])):
                values |= config["data"]
            return values | {item["name"]: item.get("value") for item in container.get("env", [])}
    raise AssertionError(f"no workload {workload}")


@pytest.mark.parametrize("package", list(SERVICES))
def test_every_variable_the_settings_read_is_set_in_compose_and_kubernetes(compose, manifests, package):
    if not (ROOT / package / package / "settings.py").exists():
        pytest.skip(f"{package} has no settings yet")
    needed = settings_variables(package) - set(DEFAULT_IS_FINE)
    compose_names, k8s_names = SERVICES[package]

    for name in compose_names:
        environment = compose["services"][name]["environment"]
        missing = needed - set(environment) - {"LMS_VAR_DIR"}
        assert not missing, f"compose service {name} does not set {sorted(missing)}"
    for name in k8s_names:
        missing = needed - _k8s_env(manifests, name).keys()
        assert not missing, f"k8s workload {name} does not set {sorted(missing)}"
    assert secrets_of(package) <= needed  # secrets are never on the allow-list


def test_the_gateway_never_holds_the_service_key(compose, manifests):
    # The key opens /internal/ on every service; the internet-facing process has no use for it.
    assert "SERVICE_KEY" not in compose["services"]["gateway"]["environment"]
    assert "SERVICE_KEY" not in _k8s_env(manifests, "gateway")
    assert "SERVICE_KEY" in compose["services"]["loan-service"]["environment"]


def test_web_servers_keep_their_heartbeat_files_off_the_read_only_root():
    assert "--worker-tmp-dir /dev/shm" in (DOCKER / "entrypoint.sh").read_text()


def test_each_hop_trusts_the_proxies_in_front_of_it(compose, manifests):
    # A service's client address is the entry its proxies put in X-Forwarded-For: one hop too few and
    # every client shares the proxy's address (and its login limit); one too many and clients can forge it.
    assert compose["services"]["gateway"]["environment"]["NUM_PROXIES"] == "0"  # published directly
    assert compose["services"]["user-service"]["environment"]["NUM_PROXIES"] == "1"  # behind the gateway
    assert _k8s_env(manifests, "gateway")["NUM_PROXIES"] == "1"  # behind the Ingress
    for workload in ("user-service", "loan-service", "notification-service"):
        assert _k8s_env(manifests, workload)["NUM_PROXIES"] == "2"  # behind the Ingress and the gateway


WORKERS = [service for service in manage_all.SERVICES if service.worker_queues]


def _deployment(manifests: list[dict], name: str) -> dict:
    return next(d for d in manifests if d["kind"] == "Deployment" and d["metadata"]["name"] == name)


def _deployed_name(label: str) -> str:
    """`up` labels a web process by its service alone (`loan`); the deploy files call it `loan-service`."""
    return label if "-" in label or label == "gateway" else f"{label}-service"


def test_every_process_up_runs_is_deployed_in_compose_and_kubernetes(compose, manifests, tmp_path):
    expected = {_deployed_name(spec.label) for spec in manage_all.plan(8000, tmp_path)}
    in_compose = {
        name
        for name, service in compose["services"].items()
        if not name.endswith("-migrate") and "profiles" not in service  # observability: Prometheus, Grafana
    } - {"postgres", "redis"}
    deployments = {document["metadata"]["name"] for document in manifests if document["kind"] == "Deployment"}

    assert in_compose == expected
    assert deployments == expected


def _routed_queues(package: str) -> set[str]:
    """The queues a service's settings send its own tasks to: the default queue and the routes' queues."""
    tree = ast.parse((ROOT / package / package / "settings.py").read_text())
    queues = set()
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            if node.targets[0].id == "CELERY_TASK_DEFAULT_QUEUE":
                queues.add(ast.literal_eval(node.value))
            if node.targets[0].id == "CELERY_TASK_ROUTES":
                queues |= {route["queue"] for route in ast.literal_eval(node.value).values()}
    return queues


@pytest.mark.parametrize("service", WORKERS, ids=lambda service: service.label)
def test_each_worker_consumes_the_queues_up_runs_it_on(compose, manifests, service):
    name = f"{service.label}-worker"
    default = re.search(r"WORKER_QUEUES:-([^}]+)}", (DOCKER / "entrypoint.sh").read_text()).group(1)

    assert compose["services"][name]["environment"].get("WORKER_QUEUES", default) == service.worker_queues
    assert (_k8s_env(manifests, name).get("WORKER_QUEUES") or default) == service.worker_queues
    assert _routed_queues(service.name) <= set(service.worker_queues.split(","))  # no task left on a queue no one reads


@pytest.mark.parametrize("service", WORKERS, ids=lambda service: service.label)
def test_a_worker_probe_pings_its_own_node(compose, manifests, service, tmp_path):
    # Every service's workers answer `inspect ping` on the shared broker: a bare ping would pass a hung
    # worker on another one's pong. Each worker is named <service>@<host> and its probe asks that node.
    name = f"{service.label}-worker"
    plan = {spec.label: spec for spec in manage_all.plan(8000, tmp_path)}
    probe = pod_spec(_deployment(manifests, name))["containers"][0]["livenessProbe"]

    assert '--hostname "${SERVICE}@%h"' in (DOCKER / "entrypoint.sh").read_text()
    assert f"{service.name}@%h" in plan[name].argv
    assert f"-d {service.name}@$$HOSTNAME " in compose["services"][name]["healthcheck"]["test"][1]  # $$: compose's $
    assert f"-d {service.name}@$HOSTNAME " in probe["exec"]["command"][2]


def test_a_beat_runs_alone_and_is_replaced_not_rolled(compose, manifests):
    beats = [d for d in manifests if d["kind"] == "Deployment" and pod_spec(d)["containers"][0]["args"] == ["beat"]]
    scaled = {d["spec"]["scaleTargetRef"]["name"] for d in manifests if d["kind"] == "HorizontalPodAutoscaler"}

    assert {d["metadata"]["name"] for d in beats} == {f"{s.label}-beat" for s in manage_all.SERVICES if s.beat}
    for beat in beats:
        assert beat["spec"]["replicas"] == 1, beat["metadata"]["name"]  # a second beat sends every job twice
        assert beat["spec"]["strategy"] == {"type": "Recreate"}  # a rolling update runs old and new together
        assert beat["metadata"]["name"] not in scaled
    for name, service in compose["services"].items():
        if service.get("command") == ["beat"]:
            assert service.get("deploy", {}).get("replicas", 1) == 1, name
            assert "scale" not in service, name


def test_loan_worker_writes_the_statements_where_loan_service_serves_them(compose, manifests):
    # compose: one named volume at LOAN_MEDIA_ROOT in both containers
    media_root = compose["services"]["loan-service"]["environment"]["LOAN_MEDIA_ROOT"]
    volumes = {}
    for name in ("loan-service", "loan-worker"):
        assert compose["services"][name]["environment"]["LOAN_MEDIA_ROOT"] == media_root
        mounts = [mount.split(":") for mount in compose["services"][name].get("volumes", [])]
        volumes[name] = {source for source, target, *_ in mounts if target == media_root}
    assert volumes["loan-service"] == volumes["loan-worker"] == {"loan-statements"}
    assert "loan-statements" in compose["volumes"]
    # the image has the folder, owned by its user: a volume mounted on a missing path would be root's
    assert f"mkdir -p {media_root}" in (DOCKER / "Dockerfile").read_text()

    # Kubernetes: one ReadWriteMany claim (the pods may be on different nodes) at LOAN_MEDIA_ROOT in both
    claims = set()
    for name in ("loan-service", "loan-worker"):
        spec = pod_spec(_deployment(manifests, name))
        k8s_root = _k8s_env(manifests, name)["LOAN_MEDIA_ROOT"]
        mount = next(m for m in spec["containers"][0]["volumeMounts"] if m["mountPath"] == k8s_root)
        volume = next(v for v in spec["volumes"] if v["name"] == mount["name"])
        claims.add(volume["persistentVolumeClaim"]["claimName"])
    claim = next(d for d in manifests if d["kind"] == "PersistentVolumeClaim" and d["metadata"]["name"] in claims)
    assert claims == {"loan-statements"}
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
