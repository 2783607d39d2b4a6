"""A real Prometheus (Debian's package) scrapes every process of the running system with the shipped rules.

The harness starts it on a free port with docker/observability/prometheus.yml's jobs pointed at this
system's ports (scraped every second) and alerts.yml loaded, and stops it after the module, also on failure.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.actors import approved_agent, sign_up
from tests.harness import wait_for

OBSERVABILITY = Path(__file__).resolve().parent.parent / "docker" / "observability"
PROMETHEUS = shutil.which("prometheus")
JOBS = {"gateway": "gateway", "user-service": "user", "loan-service": "loan", "notification-service": "notification"}

pytestmark = pytest.mark.skipif(
    PROMETHEUS is None, reason="prometheus not installed (Debian package prometheus; .ci/run installs it)"
)


class Prometheus:
    def __init__(self, url: str) -> None:
        self.url = url

    def query(self, expression: str) -> list[dict]:
        address = f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': expression})}"
        with urllib.request.urlopen(address, timeout=5) as reply:
            body = json.load(reply)
        assert body["status"] == "success", body
        return body["data"]["result"]

    def value(self, expression: str) -> float | None:
        """The single sample `expression` gives, or None while it gives none."""
        result = self.query(expression)
        assert len(result) <= 1, result
        return float(result[0]["value"][1]) if result else None

    def get(self, path: str) -> dict:
        with urllib.request.urlopen(f"{self.url}{path}", timeout=5) as reply:
            return json.load(reply)


@pytest.fixture(scope="module")
def prometheus(system, tmp_path_factory) -> Prometheus:
    folder = tmp_path_factory.mktemp("prometheus")
    shipped = yaml.safe_load((OBSERVABILITY / "prometheus.yml").read_text())
    assert {job["job_name"] for job in shipped["scrape_configs"]} == set(JOBS)
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(OBSERVABILITY / "alerts.yml")],
        "scrape_configs": [
            {**job, "static_configs": [{"targets": [system.url(JOBS[job["job_name"]]).removeprefix("http://")]}]}
            for job in shipped["scrape_configs"]
        ],
    }
    (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    argv = [
        str(PROMETHEUS),
        f"--config.file={folder / 'prometheus.yml'}",
        f"--storage.tsdb.path={folder / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    log = (folder / "prometheus.log").open("w")
    process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    try:
        server = Prometheus(f"http://127.0.0.1:{port}")

        def ready() -> bool:
            try:
                return server.value("count(up == 1)") == len(JOBS)
            except OSError:
                return False

        wait_for(ready, timeout=30, message="Prometheus up and every job scraped")
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def test_every_process_is_scraped_and_every_rule_is_loaded(prometheus):
    up = {sample["metric"]["job"]: sample["value"][1] for sample in prometheus.query("up")}
    rules = prometheus.get("/api/v1/rules")["data"]["groups"]
    shipped = yaml.safe_load((OBSERVABILITY / "alerts.yml").read_text())["groups"]

    assert up == dict.fromkeys(JOBS, "1")
    assert {group["name"] for group in rules} == {group["name"] for group in shipped}
    assert all(rule["health"] == "ok" for group in rules for rule in group["rules"]), rules
    assert prometheus.query('ALERTS{alertstate="firing"}') == []  # a healthy system pages no one


def test_decisions_and_the_gateways_requests_arrive_with_the_right_values(system, admin, prometheus):
    gateway = system.gateway
    customer, agent = sign_up(gateway, "customer"), approved_agent(gateway, admin)
    body = {"customer_id": customer.id, "principal": "25000.00", "months": 12}
    loans = [agent.api.post("/api/loan/customer-loan", body).data["id"] for _ in range(3)]
    for loan_id, decision in zip(loans, ["APPROVED", "APPROVED", "REJECTED"], strict=True):
        assert admin.api.put(f"/api/loan/approve-reject-loan/{loan_id}", {"status": decision}).status == 200

    def figures_match() -> bool:
        approved = admin.api.get("/api/loan/list-loans-admin-agent?status=APPROVED&page_size=1").data["count"]
        rejected = admin.api.get("/api/loan/list-loans-admin-agent?status=REJECTED&page_size=1").data["count"]
        return (
            prometheus.value('lms_loans{status="APPROVED"}') == approved
            and prometheus.value('lms_loans{status="REJECTED"}') == rejected
            and prometheus.value('lms_loans_decided_total{decision="rejected"}') == rejected
        )

    wait_for(figures_match, timeout=30, message="Prometheus' loan figures equal to the API's counts")

    # The gateway's request counter, summed over its workers: exactly the requests sent.
    series = 'gateway_requests_total{upstream="user",method="GET",status="200"}'

    def scraped() -> float:
        return prometheus.value(f"sum({series})") or 0.0  # no such request yet: no series

    def counted_by_the_gateway() -> float:
        text = system.gateway.get("/metrics", headers={"Accept": "text/plain"}).body.decode()
        families = text_string_to_metric_families(text)
        return sum(
            sample.value
            for family in families
            for sample in family.samples
            if sample.name == "gateway_requests_total"
            and (sample.labels.get("upstream"), sample.labels.get("method"), sample.labels.get("status"))
            == ("user", "GET", "200")
        )

    assert (
        customer.api.get("/api/user/profile").status == 200
    )  # the series exists before the burst: rate() sees it grow
    settled = wait_for(lambda: (value := scraped()) == counted_by_the_gateway() > 0 and [value])
    before = settled[0]  # what Prometheus has is all the gateway counted
    for _ in range(25):
        assert customer.api.get("/api/user/profile").status == 200

    wait_for(lambda: scraped() == before + 25, timeout=30, message="25 more requests counted")
    assert counted_by_the_gateway() == before + 25
    assert prometheus.value(f"sum(increase({series}[1m]))") > 0
    assert prometheus.value(f"sum(rate({series}[1m]))") > 0
