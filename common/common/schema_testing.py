"""Test helpers every service's suite shares: its OpenAPI document against real replies, and its /metrics.

Only tests import this (like common.testing).
"""

from __future__ import annotations

from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from prometheus_client.parser import text_string_to_metric_families

REFS = "#/components/schemas/"


# Warnings that mean the document is wrong: an operation left undescribed, or two serializers sharing a
# component name (drf-spectacular keeps one, and the other operation states its body).
FAULTY_DOCUMENT_WARNINGS = ("unable to guess serializer", "components with identical names")


def document_faults() -> list[str]:
    """drf-spectacular's errors, and its warnings that mean a wrong document, while generating this service's."""
    GENERATOR_STATS.reset()
    try:
        with GENERATOR_STATS.silence():
            SchemaGenerator().get_schema(request=None, public=True)
        errors, warnings = list(GENERATOR_STATS._error_cache), list(GENERATOR_STATS._warn_cache)
    finally:
        GENERATOR_STATS.reset()
    return errors + [warning for warning in warnings if any(fault in warning for fault in FAULTY_DOCUMENT_WARNINGS)]


def resolved(document: dict, schema: dict) -> dict:
    """`schema` with its `$ref` (or a lone `allOf` around one) followed into components/schemas."""
    while True:
        if "$ref" in schema:
            schema = {**document["components"]["schemas"][schema["$ref"].removeprefix(REFS)], **schema}
            del schema["$ref"]
        elif len(schema.get("allOf", [])) == 1:
            (inner,) = schema["allOf"]
            schema = {**{key: value for key, value in schema.items() if key != "allOf"}, **inner}
        else:
            return schema


def documented_data(document: dict, path: str, method: str, status: int) -> dict:
    """The schema of the `data` of `method path`'s `status` reply (the schema itself if it has no envelope)."""
    content = document["paths"][path][method]["responses"][str(status)]["content"]["application/json"]
    schema = resolved(document, content["schema"])
    properties = schema.get("properties", {})
    return resolved(document, properties["data"]) if {"success", "data"} <= set(properties) else schema


def mismatches(document: dict, schema: dict, value, where: str = "data") -> list[str]:
    """Where `value` has a key `schema` does not state, or lacks one it requires (nested objects and lists too)."""
    schema = resolved(document, schema)
    if "oneOf" in schema:
        found = [mismatches(document, option, value, where) for option in schema["oneOf"]]
        return [] if [] in found else [f"{where}: matches none of oneOf: {found}"]
    if value is None:
        return [] if schema.get("nullable") else [f"{where}: null, not nullable"]
    if isinstance(value, list):
        return [problem for item in value for problem in mismatches(document, schema.get("items", {}), item, where)]
    if not isinstance(value, dict) or "properties" not in schema:
        return []
    properties = schema["properties"]
    problems = [f"{where}.{key}: not documented" for key in value if key not in properties]
    problems += [
        f"{where}.{key}: documented as required, missing" for key in schema.get("required", []) if key not in value
    ]
    for key in set(value) & set(properties):
        problems += mismatches(document, properties[key], value[key], f"{where}.{key}")
    return problems


def assert_documented(document: dict, path: str, method: str, response) -> None:
    schema = documented_data(document, path, method, response.status_code)
    assert mismatches(document, schema, response.json()["data"]) == []


def metric_samples(client) -> dict[tuple[str, tuple], float]:
    """Every sample of the service's /metrics, read afresh: {(name, sorted label pairs): value}."""
    from common import business_metrics

    business_metrics.expire()
    reply = client.get("/metrics")
    assert reply.status_code == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(reply.content.decode())
        for sample in family.samples
    }
