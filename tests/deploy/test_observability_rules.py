"""Prometheus' configuration and alerting rules, checked and unit-tested by promtool (Debian's `prometheus`)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

OBSERVABILITY = Path(__file__).resolve().parents[2] / "docker" / "observability"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (Debian package prometheus; .ci/run installs it)"
)


def _promtool(*args: str) -> subprocess.CompletedProcess:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *args], cwd=OBSERVABILITY, capture_output=True, text=True, timeout=60)


@needs_promtool
def test_the_scrape_configuration_is_valid():
    result = _promtool("check", "config", "prometheus.yml")

    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_the_alerting_rules_are_valid():
    result = _promtool("check", "rules", "alerts.yml")

    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_every_alert_passes_its_unit_tests():
    result = _promtool("test", "rules", "alerts_test.yml")

    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_unit_test():
    alerts = {rule["alert"] for group in _load("alerts.yml")["groups"] for rule in group["rules"] if "alert" in rule}
    tested = {
        case["alertname"] for test in _load("alerts_test.yml")["tests"] for case in test.get("alert_rule_test", [])
    }

    assert alerts == tested


def test_every_alert_fires_in_some_test_and_stays_quiet_in_another():
    cases = [case for test in _load("alerts_test.yml")["tests"] for case in test.get("alert_rule_test", [])]
    firing = {case["alertname"] for case in cases if case.get("exp_alerts")}
    quiet = {case["alertname"] for case in cases if not case.get("exp_alerts")}

    assert firing == quiet == {case["alertname"] for case in cases}


METRIC_NAME = re.compile(r"\b((?:gateway|django|celery|loan|notification|user|lms)_[a-z_]+)\b")


def alert_metric_names() -> set[str]:
    """The metric names the alerting rules query (Prometheus' own `up` aside)."""
    names: set[str] = set()
    for group in _load("alerts.yml")["groups"]:
        for rule in group["rules"]:
            names |= set(METRIC_NAME.findall(rule["expr"]))
    return names


def _load(name: str) -> dict:
    return yaml.safe_load((OBSERVABILITY / name).read_text())


K8S = OBSERVABILITY.parent / "k8s"


def _k8s_objects(kind: str) -> dict[str, dict]:
    """Every object of `kind` in docker/k8s, by name."""
    found = {}
    for path in sorted(K8S.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document and document.get("kind") == kind:
                found[document["metadata"]["name"]] = document
    return found


@needs_promtool
def test_the_kubernetes_scrape_configuration_is_valid():
    result = _promtool("check", "config", "prometheus-k8s.yml")

    assert result.returncode == 0, result.stdout + result.stderr


def test_kubernetes_scrapes_every_pod_of_the_jobs_compose_scrapes():
    compose = yaml.safe_load((OBSERVABILITY / "prometheus.yml").read_text())["scrape_configs"]
    kubernetes = yaml.safe_load((OBSERVABILITY / "prometheus-k8s.yml").read_text())["scrape_configs"]
    deployments, services = _k8s_objects("Deployment"), _k8s_objects("Service")

    assert [job["job_name"] for job in kubernetes] == [job["job_name"] for job in compose]
    for job in kubernetes:
        name = job["job_name"]
        [discovery] = job["dns_sd_configs"]
        assert discovery["names"] == [f"{name}-pods.lms.svc.cluster.local"], name
        assert discovery["type"] == "A"
        headless = services[f"{name}-pods"]["spec"]
        assert headless["clusterIP"] == "None", name  # one A record per pod, not the Service's one address
        pod = deployments[name]["spec"]["template"]
        assert headless["selector"] == deployments[name]["spec"]["selector"]["matchLabels"], name
        [container] = pod["spec"]["containers"]
        ports = {port["name"]: port["containerPort"] for port in container["ports"]}
        [port] = headless["ports"]
        assert ports[port["targetPort"]] == port["port"] == discovery["port"], name
        # Scraped by its address, the pod must accept that address as a host (common.django_settings).
        env = {variable["name"]: variable for variable in container["env"]}
        assert env["POD_IP"]["valueFrom"] == {"fieldRef": {"fieldPath": "status.podIP"}}, name
