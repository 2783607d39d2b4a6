"""Grafana's dashboards and provisioning (docker/observability/grafana): what they query exists and parses."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
GRAFANA = DOCKER / "observability" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (Debian package prometheus; .ci/run installs it)"
)
# What a Grafana variable stands for when an expression is parsed: one concrete value of each.
SAMPLE_VALUES = {"__rate_interval": "1m", "__interval": "1m", "__range": "1h", "upstream": "loan", "service": "loan"}
GRAFANA_BUILTINS = {"__rate_interval", "__interval", "__interval_ms", "__range", "__range_s", "__range_ms"}
# Words of PromQL that are not metric names when not followed by "(" (functions and aggregations always are).
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset", "and", "or"}
PROMQL_WORDS |= {"unless", "inf", "nan"}


def _dashboard(path: Path) -> dict:
    return json.loads(path.read_text())


def _panels(panels: list[dict]) -> list[dict]:
    """Every panel, those inside collapsed rows too."""
    found = []
    for panel in panels:
        found.append(panel)
        found += _panels(panel.get("panels", []))
    return found


def expressions(board: dict) -> list[str]:
    """The PromQL of every panel target of a dashboard."""
    return [target["expr"] for panel in _panels(board["panels"]) for target in panel.get("targets", [])]


def variable_queries(board: dict) -> list[str]:
    """The selector inside each query variable's label_values(...), as PromQL."""
    selectors = []
    for variable in board.get("templating", {}).get("list", []):
        if variable["type"] == "query":
            query = variable["query"]["query"] if isinstance(variable["query"], dict) else variable["query"]
            match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", query.strip())
            assert match, f"{board['uid']}: variable {variable['name']} is not label_values(selector, label)"
            selectors.append(match.group(1))
    return selectors


def substituted(expr: str) -> str:
    """`expr` with each Grafana variable ($name, ${name}, [[name]]) replaced by a sample value."""

    def value(match: re.Match) -> str:
        name = match.group(1) or match.group(2) or match.group(3)
        return SAMPLE_VALUES[name]

    return re.sub(r"\$\{([A-Za-z_]\w*)(?::\w+)?\}|\$([A-Za-z_]\w*)|\[\[([A-Za-z_]\w*)\]\]", value, expr)


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects: identifiers outside strings, label matchers, ranges and
    grouping clauses that are not a function call or a PromQL keyword."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    names = set()
    for match in re.finditer(r"(?<![\w.])([A-Za-z_:][\w:]*)(\s*\()?", text):
        if not match.group(2) and match.group(1).lower() not in PROMQL_WORDS:
            names.add(match.group(1))
    return names


def dashboard_metric_names() -> set[str]:
    """Every metric name the dashboards query (panels and variables), Prometheus' own `up` included."""
    names: set[str] = set()
    for path in DASHBOARDS:
        board = _dashboard(path)
        for expr in expressions(board) + variable_queries(board):
            names |= metric_names(substituted(expr))
    return names


def _families(source: str, kinds: str) -> list[tuple[str, str]]:
    """(kind, name) of each `Kind("name", ...)` or `register_metric(Kind, "name", ...)` in Python source."""
    pattern = rf"\b({kinds})(?:\(|,)\s*\"([a-z_:][a-z0-9_:]*)\""
    return re.findall(pattern, source)


def _exposed(kind: str, name: str) -> set[str]:
    """The sample names prometheus_client writes for a family of that kind."""
    if kind in ("Counter", "CounterMetricFamily"):
        return {name if name.endswith("_total") else f"{name}_total"}
    if kind == "Histogram":
        return {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
    return {name}


BUSINESS_METRICS = [
    ROOT / "common" / "common" / "business_metrics.py",
    ROOT / "user_service" / "users" / "metrics.py",
    ROOT / "loan_service" / "loans" / "metrics.py",
    ROOT / "notification_service" / "notifications" / "metrics.py",
]


def code_metric_names() -> set[str]:
    """What the processes export: the gateway's own metrics, django-prometheus' on every service and the
    business figures each service reads from its database (common.business_metrics)."""
    gateway = (ROOT / "gateway_project" / "gateway" / "metrics.py").read_text()
    spec = importlib.util.find_spec("django_prometheus")
    assert spec is not None, "django-prometheus is not installed (requirements)"
    assert spec.origin
    middleware = (Path(spec.origin).parent / "middleware.py").read_text()
    names = {"up"}  # Prometheus' own, per scrape target
    for kind, name in _families(gateway, "Counter|Histogram|Gauge") + _families(middleware, "Counter|Histogram"):
        names |= _exposed(kind, name)
    for path in BUSINESS_METRICS:
        for kind, name in _families(path.read_text(), "GaugeMetricFamily|CounterMetricFamily"):
            names |= _exposed(kind, name)
    return names


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


def _mounts(service: dict) -> dict[str, Path]:
    """A compose service's bind mounts: container path → host path (relative to docker/)."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target, *_ = volume.split(":")
        if source.startswith("."):
            mounts[target] = (DOCKER / source).resolve()
    return mounts


def _host_path(mounts: dict[str, Path], container_path: str) -> Path | None:
    """Where a path inside the container is on the host, through the bind mounts; None if it is not mounted."""
    for target, source in sorted(mounts.items(), key=lambda item: -len(item[0])):
        if container_path == target or container_path.startswith(target.rstrip("/") + "/"):
            return source / Path(container_path).relative_to(target)
    return None


def test_the_metric_name_extraction_finds_names_and_only_names():
    # The checks below are only as good as this: a metric hidden from it would go unchecked.
    expr = (
        'sum by (le, upstream) (rate(gateway_request_duration_seconds_bucket{status=~"5..", upstream="x"}[5m]))'
        " / ignoring (group) group_left sum(up offset 5m) and on (job) process_x > bool 0.5 or vector(1)"
    )
    assert metric_names(expr) == {"gateway_request_duration_seconds_bucket", "up", "process_x"}
    assert substituted('rate(x{a=~"$upstream", b="${service}"}[$__rate_interval])') == (
        'rate(x{a=~"loan", b="loan"}[1m])'
    )


def test_every_dashboard_parses_and_has_a_unique_uid_and_title():
    boards = [_dashboard(path) for path in DASHBOARDS]
    uids = [board["uid"] for board in boards]
    titles = [board["title"] for board in boards]

    assert {"LMS — Gateway", "LMS — Services"} <= set(titles)
    assert len(set(uids)) == len(uids)
    assert all(uids)
    assert len(set(titles)) == len(titles)
    for board in boards:
        assert len(board["uid"]) <= 40, board["uid"]  # Grafana's limit
        ids = [panel["id"] for panel in _panels(board["panels"])]
        assert len(set(ids)) == len(ids), f"{board['uid']}: panel ids repeat"
        assert expressions(board), f"{board['uid']} queries nothing"


def test_every_panel_and_variable_uses_the_provisioned_datasource():
    provisioned = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())
    (datasource,) = provisioned["datasources"]

    for path in DASHBOARDS:
        board = _dashboard(path)
        for panel in _panels(board["panels"]):
            if panel["type"] == "row":
                continue
            assert panel["datasource"] == {"type": "prometheus", "uid": datasource["uid"]}, (path.name, panel["title"])
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == datasource["uid"], (path.name, panel["title"])
        for variable in board["templating"]["list"]:
            if variable["type"] == "query":
                assert variable["datasource"]["uid"] == datasource["uid"], (path.name, variable["name"])


def test_every_variable_an_expression_uses_is_defined():
    for path in DASHBOARDS:
        board = _dashboard(path)
        defined = {variable["name"] for variable in board["templating"]["list"]} | GRAFANA_BUILTINS
        repeats = {panel["repeat"] for panel in _panels(board["panels"]) if panel.get("repeat")}
        used = set()
        for text in expressions(board) + [panel["title"] for panel in _panels(board["panels"])]:
            used |= set(re.findall(r"\$\{?([A-Za-z_]\w*)", text))
        assert used <= defined, f"{path.name}: undefined variables {sorted(used - defined)}"
        assert repeats <= defined - GRAFANA_BUILTINS
        assert set(SAMPLE_VALUES) >= used  # each has a sample value for the promtool check


@needs_promtool
def test_every_expression_is_valid_promql(tmp_path):
    # promtool parses PromQL offline only in rule files: each expression becomes a recording rule.
    rules = []
    for path in DASHBOARDS:
        board = _dashboard(path)
        for number, expr in enumerate(expressions(board) + variable_queries(board)):
            rules.append({"record": f"dashboard:{board['uid'].replace('-', '_')}:{number}", "expr": substituted(expr)})
    (tmp_path / "dashboards.yml").write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))

    result = subprocess.run(
        [PROMTOOL, "check", "rules", "dashboards.yml"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout + result.stderr


@needs_promtool
def test_an_invalid_expression_would_fail_the_promtool_check(tmp_path):
    rules = [{"record": "dashboard:broken", "expr": "sum by (upstream (rate(gateway_requests_total[1m]))"}]
    (tmp_path / "broken.yml").write_text(yaml.safe_dump({"groups": [{"name": "broken", "rules": rules}]}))

    result = subprocess.run(
        [PROMTOOL, "check", "rules", "broken.yml"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )

    assert result.returncode != 0


def test_every_metric_a_dashboard_queries_is_exported_by_the_code():
    queried = dashboard_metric_names()
    exported = code_metric_names()

    assert "gateway_requests_total" in exported
    assert "django_http_responses_total_by_status_total" in exported
    assert {"lms_loans", "lms_loans_decided_total", "lms_outbox_oldest_unsent_age_seconds"} <= exported
    assert queried <= exported, f"queried but exported by no process: {sorted(queried - exported)}"


def test_the_overview_charts_the_business_and_pipeline_figures():
    queried = set()
    for expr in expressions(_dashboard(GRAFANA / "dashboards" / "overview.json")):
        queried |= metric_names(substituted(expr))

    business = {name for name in code_metric_names() if name.startswith("lms_")}
    assert business <= queried, f"not on the overview: {sorted(business - queried)}"
    assert {"up", "gateway_requests_total", "gateway_token_verifications_total", "gateway_breaker_state"} <= queried


def test_figures_read_from_a_database_are_never_summed_over_instances():
    """Each instance of a service reports its database's figure: summing two replicas would double it."""
    per_process = {"lms_metrics_read_errors_total"}  # each process counts its own failed reads
    summed = [
        expr
        for path in DASHBOARDS
        for expr in expressions(_dashboard(path))
        if any(name.startswith("lms_") for name in metric_names(substituted(expr)) - per_process)
        and re.search(r"\bsum\b", expr)
    ]
    assert not summed, summed


def test_the_gateway_dashboard_compares_the_release_groups_per_upstream():
    board = _dashboard(GRAFANA / "dashboards" / "gateway.json")
    panels = _panels(board["panels"])
    (releases,) = [panel for panel in panels if panel["type"] == "row" and panel["title"].startswith("Releases")]
    after = panels[panels.index(releases) + 1 :]
    in_row = after[: next((i for i, p in enumerate(after) if p["type"] == "row"), len(after))]
    grouped = " ".join(target["expr"] for panel in in_row for target in panel["targets"])

    assert releases.get("repeat") == "upstream"  # one row per upstream
    assert "sum by (group)" in grouped
    assert 'status=~"5.."' in grouped
    assert "histogram_quantile(0.95, sum by (le, group)" in grouped


def test_compose_mounts_what_the_provisioning_files_point_at(compose):
    grafana, prometheus = compose["services"]["grafana"], compose["services"]["prometheus"]
    mounts = _mounts(grafana)

    provisioning = _host_path(mounts, "/etc/grafana/provisioning")
    assert provisioning == (GRAFANA / "provisioning").resolve()
    providers = yaml.safe_load((provisioning / "dashboards" / "lms.yml").read_text())["providers"]
    for provider in providers:
        folder = _host_path(mounts, provider["options"]["path"])
        assert folder is not None, provider["options"]["path"]
        assert folder.is_dir(), provider["options"]["path"]
        assert sorted(folder.glob("*.json")) == DASHBOARDS
    home = _host_path(mounts, grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"])
    assert home is not None
    assert home.is_file()

    (datasource,) = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())["datasources"]
    url = urlsplit(datasource["url"])
    assert url.hostname == "prometheus"  # the compose service
    assert url.port == 9090  # Prometheus' port
    assert "observability" in prometheus["profiles"]
    assert "observability" in grafana["profiles"]

    config = next(arg.split("=", 1)[1] for arg in prometheus["command"] if arg.startswith("--config.file="))
    prometheus_mounts = _mounts(prometheus)
    config_file = _host_path(prometheus_mounts, config)
    assert config_file == (DOCKER / "observability" / "prometheus.yml").resolve()
    for rule_file in yaml.safe_load(config_file.read_text())["rule_files"]:
        inside = str(Path(config).parent / rule_file)  # relative to the configuration file
        assert _host_path(prometheus_mounts, inside) == (config_file.parent / rule_file).resolve(), rule_file


def test_the_observability_images_are_pinned(compose):
    for name in ("prometheus", "grafana"):
        image = compose["services"][name]["image"]
        assert re.fullmatch(r"[\w./-]+:v?\d+\.\d+\.\d+", image), image


def test_prometheus_scrapes_every_service_the_services_dashboard_shows(compose):
    config = yaml.safe_load((DOCKER / "observability" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    web = {name for name, service in compose["services"].items() if service.get("command") == ["web"]}

    assert set(jobs) == web  # the jobs are named after the compose services, the dashboards' $service
    for name, job in jobs.items():
        assert job["static_configs"][0]["targets"] == [f"{name}:8000"]
