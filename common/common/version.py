"""The project's version: every service's OpenAPI document and the gateway's merged one carry it as `info.version`.

Semantic versioning of the public API (docs/API.md, "Versions and breaking
changes"): the major number goes up with any change a client written against
the previous document could break on (an operation or a reply field gone, a
request field newly required, a narrower accepted value, a reply value the
old document did not allow); the minor with additions; the patch with fixes
that leave the document as it was. tests/test_openapi_contract.py holds the
served document against docs/openapi.json and fails on a breaking change
without a new major version.
"""

API_VERSION = "1.0.0"
