"""The breaking-change rules of tests/openapi_compat.py, each on a small pair of documents."""

from __future__ import annotations

import copy

import pytest

from tests.openapi_compat import breaking_changes

LOAN = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "status": {"type": "string", "enum": ["pending", "approved", "rejected"]},
        "note": {"type": "string", "nullable": True},
    },
    "required": ["id", "status"],
}
REQUEST = {
    "type": "object",
    "properties": {
        "amount": {"type": "string", "maxLength": 20},
        "months": {"type": "integer", "minimum": 1, "maximum": 360},
        "purpose": {"type": "string"},
    },
    "required": ["amount", "months"],
}
DOCUMENT = {
    "openapi": "3.0.3",
    "info": {"title": "t", "version": "1.0.0"},
    "paths": {
        "/api/loan/{id}": {
            "get": {
                "parameters": [
                    {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}},
                    {"name": "expand", "in": "query", "schema": {"type": "string", "enum": ["history", "schedule"]}},
                ],
                "responses": {
                    "200": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Loan"}}}}
                },
                "security": [{"bearerAuth": []}],
            },
            "put": {
                "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Req"}}}},
                "responses": {"204": {"description": "updated"}},
                "security": [{"bearerAuth": []}],
            },
        },
        "/api/user/login": {"post": {"responses": {"200": {"description": "ok"}}, "security": [{}]}},
    },
    "components": {"schemas": {"Loan": LOAN, "Req": REQUEST}},
}


def changed(edit) -> list[str]:
    new = copy.deepcopy(DOCUMENT)
    edit(new)
    return breaking_changes(DOCUMENT, new)


def schemas(document):
    return document["components"]["schemas"]


def test_the_same_document_has_no_breaking_change():
    assert breaking_changes(DOCUMENT, copy.deepcopy(DOCUMENT)) == []


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(lambda d: d["paths"].update({"/api/loan/new": {"get": {"responses": {}}}}), id="new operation"),
        pytest.param(
            lambda d: schemas(d)["Req"]["properties"].update(x={"type": "string"}), id="optional request field"
        ),
        pytest.param(lambda d: schemas(d)["Loan"]["properties"].update(x={"type": "string"}), id="new reply field"),
        pytest.param(lambda d: d["paths"]["/api/loan/{id}"]["get"]["responses"].update({"404": {}}), id="new error"),
        pytest.param(lambda d: schemas(d)["Req"]["properties"]["amount"].update(maxLength=40), id="looser length"),
        pytest.param(lambda d: schemas(d)["Req"]["required"].remove("months"), id="request field optional"),
        pytest.param(
            lambda d: schemas(d)["Loan"]["properties"]["status"]["enum"].remove("rejected"), id="fewer replies"
        ),
        pytest.param(lambda d: schemas(d)["Req"]["properties"]["months"].update(type="number"), id="integer to number"),
        pytest.param(lambda d: d["paths"]["/api/loan/{id}"]["get"].update(security=[{}]), id="now anonymous"),
    ],
)
def test_additions_and_loosenings_are_not_breaking(edit):
    assert changed(edit) == []


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda d: d["paths"]["/api/loan/{id}"].pop("put"), "PUT /api/loan/{id}: the operation is gone"),
        (lambda d: d["paths"]["/api/loan/{id}"]["get"]["responses"].pop("200"), "the 200 reply is gone"),
        (lambda d: schemas(d)["Req"]["required"].append("purpose"), "the field 'purpose' is newly required"),
        (lambda d: schemas(d)["Req"]["properties"]["amount"].update(maxLength=10), "maxLength is now 10 (was 20)"),
        (lambda d: schemas(d)["Req"]["properties"]["months"].update(minimum=6), "minimum is now 6 (was 1)"),
        (lambda d: schemas(d)["Req"]["properties"]["purpose"].update(maxLength=9), "maxLength is now 9 (was unset)"),
        (lambda d: schemas(d)["Req"]["properties"]["purpose"].update(pattern="^[a-z]+$"), "the pattern is now"),
        (lambda d: schemas(d)["Req"]["properties"]["purpose"].update(enum=["car"]), "now limited to ['car']"),
        (lambda d: schemas(d)["Req"]["properties"]["months"].update(type="string"), "no longer accepts integer"),
        (lambda d: schemas(d)["Loan"]["properties"].pop("note"), "the field 'note' is gone"),
        (lambda d: schemas(d)["Loan"]["required"].remove("status"), "the field 'status' is no longer always present"),
        (lambda d: schemas(d)["Loan"]["properties"]["status"]["enum"].append("paid"), "may now be ['paid']"),
        (lambda d: schemas(d)["Loan"]["properties"]["id"].update(nullable=True), ".id: may now be null"),
        (lambda d: d["paths"]["/api/user/login"]["post"].update(security=[{"bearerAuth": []}]), "newly needed"),
        (
            lambda d: d["paths"]["/api/loan/{id}"]["get"]["parameters"][1].update(required=True),
            "the query parameter 'expand' is newly required",
        ),
        (
            lambda d: d["paths"]["/api/loan/{id}"]["get"]["parameters"][1]["schema"]["enum"].remove("history"),
            "no longer accepts ['history']",
        ),
        (
            lambda d: d["paths"]["/api/loan/{id}"]["put"]["requestBody"].update(required=True),
            "a request body is newly required",
        ),
    ],
)
def test_each_breaking_change_is_named(edit, expected):
    found = changed(edit)

    assert len(found) == 1, found
    assert expected in found[0]


def test_a_change_inside_a_list_item_and_an_allof_is_found():
    old = copy.deepcopy(DOCUMENT)
    page = {"type": "object", "properties": {"data": {"type": "array", "items": {"$ref": "#/components/schemas/Loan"}}}}
    old["components"]["schemas"]["Page"] = {"allOf": [page]}
    old["paths"]["/api/loan/{id}"]["get"]["responses"]["200"]["content"]["application/json"]["schema"] = {
        "$ref": "#/components/schemas/Page"
    }
    new = copy.deepcopy(old)
    new["components"]["schemas"]["Loan"]["properties"].pop("id")

    found = breaking_changes(old, new)

    assert found == ["GET /api/loan/{id} 200.data[]: the field 'id' is gone"]


def test_a_self_referencing_schema_ends():
    old = copy.deepcopy(DOCUMENT)
    old["components"]["schemas"]["Loan"]["properties"]["parent"] = {"$ref": "#/components/schemas/Loan"}

    assert breaking_changes(old, copy.deepcopy(old)) == []
