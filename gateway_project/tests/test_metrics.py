"""/metrics: requests and latency by route, status and upstream, with a bounded set of route labels."""

import uuid

from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import bearer


def _samples(gateway, name: str) -> list:
    text = gateway.request("GET", "/metrics").body.decode()
    return [
        sample for family in text_string_to_metric_families(text) for sample in family.samples if sample.name == name
    ]


def test_metrics_count_requests_by_route_status_and_upstream(gateway, stubs):
    gateway.request("GET", "/api/loan/42", headers=bearer())

    text = gateway.request("GET", "/metrics").body.decode()

    assert (
        'gateway_requests_total{group="default",method="GET",route="/api/loan/{id}",status="200",upstream="loan"}'
        in text
    )


def test_latency_histograms_are_by_route_status_and_upstream(gateway, stubs):
    gateway.request("GET", "/api/loan/42/history", headers=bearer())
    gateway.request("GET", "/api/loan/42/history")  # no token: 401

    counts = {
        (s.labels["route"], s.labels["status"], s.labels["upstream"])
        for s in _samples(gateway, "gateway_request_duration_seconds_count")
    }

    assert ("/api/loan/{id}/history", "200", "loan") in counts
    assert ("/api/loan/{id}/history", "401", "loan") in counts


def test_route_labels_stay_bounded_whatever_paths_clients_send(gateway, stubs):
    marker = uuid.uuid4().hex
    for index in range(5):
        assert gateway.request("GET", f"/api/loan/{marker}-{index}/x", headers=bearer()).status == 200

    samples = _samples(gateway, "gateway_requests_total")

    assert not [s for s in samples if marker in s.labels["route"]]
    others = [s for s in samples if s.labels["route"] == "other" and s.labels["upstream"] == "loan"]
    assert sum(s.value for s in others) >= 5


def test_unrouted_paths_share_the_one_label_of_unknown_routes(gateway, stubs):
    for path in ("/api/nowhere", "/api/loan/%2e%2e/internal/x", "/api/other-service/1"):
        assert gateway.request("GET", path, headers=bearer()).status == 404

    samples = _samples(gateway, "gateway_requests_total")

    unrouted = [s for s in samples if s.labels["upstream"] == "none"]
    assert {s.labels["route"] for s in unrouted} == {"other"}
    assert sum(s.value for s in unrouted if s.labels["status"] == "404") >= 3
    assert "unknown" not in {s.labels["route"] for s in samples}


def _verifications(gateway) -> dict[str, float]:
    return {s.labels["result"]: s.value for s in _samples(gateway, "gateway_token_verifications_total")}


def test_token_verifications_are_counted_by_result(gateway, stubs):
    before = _verifications(gateway)
    token = bearer(user_id=uuid.uuid4().int % 100_000)
    gateway.request("GET", "/api/loan/42", headers=token)  # verified
    gateway.request("GET", "/api/loan/42", headers=token)  # the same token again: from the memory of verified ones
    gateway.request("GET", "/api/loan/42")
    gateway.request("GET", "/api/loan/42", headers={"Authorization": "Token abc"})
    gateway.request("GET", "/api/loan/42", headers=bearer(lifetime=-120))
    gateway.request("GET", "/api/loan/42", headers=bearer(token_type="refresh"))

    after = _verifications(gateway)
    grown = {result: after[result] - before.get(result, 0) for result in after if after[result] != before.get(result)}
    assert grown == {"valid": 1, "cached": 1, "missing": 1, "malformed_header": 1, "expired": 1, "wrong_type": 1}
