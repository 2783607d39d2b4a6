"""The served OpenAPI document is versioned, and never changes in a breaking way without a new major version.

docs/openapi.json is the document as last released. When the served one
differs, the test names every breaking change (tests/openapi_compat.py) and
fails unless the major version went up; any other difference fails too, so
the committed copy follows the code: review it, then refresh it with

    LMS_UPDATE_OPENAPI=1 python3 manage_all.py test --only end-to-end -- tests/test_openapi_contract.py

and commit docs/openapi.json (docs/API.md, "Versions and breaking changes").
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from common.version import API_VERSION
from tests.openapi_compat import breaking_changes

ROOT = Path(__file__).resolve().parent.parent
SNAPSHOT = ROOT / "docs" / "openapi.json"


def canonical(document: dict) -> str:
    return json.dumps(document, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def major(version: str) -> int:
    return int(version.split(".")[0])


@pytest.fixture(scope="module")
def served(system) -> dict:
    reply = system.gateway.get("/api/openapi.json")
    assert reply.status == 200
    document = reply.json
    assert not document["info"].get("description", "").startswith("Unavailable"), document["info"]
    return document


def test_every_document_carries_the_project_version(system, served):
    assert served["info"]["version"] == API_VERSION
    for label in ("user", "loan", "notification"):
        reply = system.service(label).get("/openapi.json?format=json")
        assert reply.status == 200
        assert reply.json["info"]["version"] == API_VERSION, label


def test_the_common_package_has_the_project_version():
    text = (ROOT / "common" / "pyproject.toml").read_text()

    assert f'version = "{API_VERSION}"' in text


def test_the_document_changes_only_with_its_version(served):
    if os.environ.get("LMS_UPDATE_OPENAPI") == "1":
        SNAPSHOT.write_text(canonical(served))
    released = json.loads(SNAPSHOT.read_text())

    breaking = breaking_changes(released, served)

    if breaking:
        assert major(served["info"]["version"]) > major(released["info"]["version"]), (
            f"breaking changes without a new major version (common/common/version.py): {breaking}"
        )
    assert canonical(served) == canonical(released), (
        "the OpenAPI document changed (not in a breaking way): check the difference, then refresh docs/openapi.json "
        "as this module's docstring says (and raise the minor version for additions)"
    )
