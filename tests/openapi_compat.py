"""Which changes between two OpenAPI documents can break a client written against the older one.

A small, strict comparison of what generated clients rely on (in the spirit of
oasdiff's breaking-change rules), used by tests/test_openapi_contract.py:
  * an operation (path and method) or a success status is gone;
  * a request: a parameter or body field newly required, a type or value no
    longer accepted (enum values removed, an enum added, tighter lengths,
    bounds or item counts, a new or different pattern), a body newly required;
  * a reply: a field gone or no longer always present, a type or a value the
    old document did not allow (enum values added, nullable now);
  * an operation that needed no credentials now needs them.
Additions a client can ignore (a new operation, an optional field, a new
error status) are not breaking.
"""

from __future__ import annotations

from typing import Any

Document = dict[str, Any]
Schema = dict[str, Any]
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
TIGHTER_WHEN_LOWER = ("maxLength", "maximum", "exclusiveMaximum", "maxItems", "maxProperties")
TIGHTER_WHEN_HIGHER = ("minLength", "minimum", "exclusiveMinimum", "minItems", "minProperties")


def breaking_changes(old: Document, new: Document) -> list[str]:
    """Every change from `old` to `new` that can break a client of `old`, one sentence each (empty: none)."""
    found: list[str] = []
    for path, old_item in old.get("paths", {}).items():
        new_item = new.get("paths", {}).get(path, {})
        for method in METHODS:
            if method not in old_item:
                continue
            where = f"{method.upper()} {path}"
            if method not in new_item:
                found.append(f"{where}: the operation is gone")
                continue
            found += _operation(_Side(old), old_item[method], _Side(new), new_item[method], where, old_item, new_item)
    return found


class _Side:
    """One document, for resolving its `$ref`s."""

    def __init__(self, document: Document) -> None:
        self.document = document

    def resolve(self, schema: Any) -> Schema:
        seen = set()
        while isinstance(schema, dict) and "$ref" in schema and schema["$ref"] not in seen:
            seen.add(schema["$ref"])
            node: Any = self.document
            for part in schema["$ref"].removeprefix("#/").split("/"):
                node = node.get(part, {}) if isinstance(node, dict) else {}
            schema = node
        return _flatten(schema if isinstance(schema, dict) else {}, self)


def _flatten(schema: Schema, side: _Side) -> Schema:
    """An `allOf` folded into one schema (properties and required merged), a lone `oneOf`/`anyOf` unwrapped."""
    if "allOf" in schema:
        merged: Schema = {key: value for key, value in schema.items() if key != "allOf"}
        for part in schema["allOf"]:
            resolved = side.resolve(part)
            merged.setdefault("properties", {}).update(resolved.get("properties", {}))
            merged["required"] = sorted(set(merged.get("required", [])) | set(resolved.get("required", [])))
            for key, value in resolved.items():
                merged.setdefault(key, value)
        return merged
    for key in ("oneOf", "anyOf"):
        if len(schema.get(key, [])) == 1:
            return {**{k: v for k, v in schema.items() if k != key}, **side.resolve(schema[key][0])}
    return schema


def _operation(
    old: _Side, op: Schema, new: _Side, new_op: Schema, where: str, item: Schema, new_item: Schema
) -> list[str]:
    found = []
    old_params = _parameters(old, item, op)
    new_params = _parameters(new, new_item, new_op)
    for key, parameter in new_params.items():
        was = old_params.get(key)
        if parameter.get("required") and not (was and was.get("required")):
            found.append(f"{where}: the {key[1]} parameter {key[0]!r} is newly required")
        if was is not None:
            found += _schema(old, was.get("schema", {}), new, parameter.get("schema", {}), "request", f"{where} {key}")
    old_body, new_body = old.resolve(op.get("requestBody", {})), new.resolve(new_op.get("requestBody", {}))
    if new_body.get("required") and not old_body.get("required"):
        found.append(f"{where}: a request body is newly required")
    for media, content in _json_content(new_body).items():
        if media in _json_content(old_body):
            was = _json_content(old_body)[media]
            found += _schema(old, was, new, content, "request", f"{where} request")
    old_replies, new_replies = op.get("responses", {}), new_op.get("responses", {})
    for status, reply in old_replies.items():
        if not str(status).startswith("2"):
            continue
        if status not in new_replies:
            found.append(f"{where}: the {status} reply is gone")
            continue
        new_content = _json_content(new.resolve(new_replies[status]))
        for media, schema in _json_content(old.resolve(reply)).items():
            if media in new_content:
                found += _schema(old, schema, new, new_content[media], "reply", f"{where} {status}")
    if not _secured(op) and _secured(new_op):
        found.append(f"{where}: credentials are newly needed")
    return found


def _parameters(side: _Side, item: Schema, operation: Schema) -> dict[tuple[str, str], Schema]:
    parameters = [side.resolve(parameter) for parameter in item.get("parameters", []) + operation.get("parameters", [])]
    return {(parameter.get("name", ""), parameter.get("in", "")): parameter for parameter in parameters}


def _json_content(body: Schema) -> dict[str, Schema]:
    return {media: value.get("schema", {}) for media, value in body.get("content", {}).items() if "json" in media}


def _secured(operation: Schema) -> bool:
    """Whether every way to call the operation needs credentials (an empty requirement `{}` is anonymous)."""
    security = operation.get("security")
    return bool(security) and all(requirement for requirement in security)


def _types(schema: Schema) -> set[str]:
    kind = schema.get("type")
    kinds = set(kind) if isinstance(kind, list) else {kind} if kind else set()
    if schema.get("nullable"):
        kinds.add("null")
    return kinds


def _schema(old: _Side, was: Schema, new: _Side, now: Schema, direction: str, where: str, depth: int = 0) -> list[str]:
    """What makes `now` refuse a value `was` allowed (request), or allow a value `was` did not (reply)."""
    if depth > 12:  # a self-referencing schema: deep enough for anything real
        return []
    was, now = old.resolve(was), new.resolve(now)
    found = []
    before, after = _types(was), _types(now)
    if before and after:
        lost = before - after if direction == "request" else after - before
        if direction == "request" and lost == {"integer"} and "number" in after:
            lost = set()  # a number field still takes integers
        if lost:
            verb = "no longer accepts" if direction == "request" else "may now be"
            found.append(f"{where}: {verb} {', '.join(sorted(lost))}")
    found += _enum(was, now, direction, where)
    if direction == "request":
        found += _constraints(was, now, where)
    old_properties, new_properties = was.get("properties", {}), now.get("properties", {})
    old_required, new_required = set(was.get("required", [])), set(now.get("required", []))
    if direction == "request":
        found += [f"{where}: the field {name!r} is newly required" for name in sorted(new_required - old_required)]
    else:
        for name in sorted(old_properties):
            if name not in new_properties:
                found.append(f"{where}: the field {name!r} is gone")
            elif name in old_required and name not in new_required:
                found.append(f"{where}: the field {name!r} is no longer always present")
    for name in sorted(set(old_properties) & set(new_properties)):
        found += _schema(old, old_properties[name], new, new_properties[name], direction, f"{where}.{name}", depth + 1)
    if "items" in was and "items" in now:
        found += _schema(old, was["items"], new, now["items"], direction, f"{where}[]", depth + 1)
    return found


def _enum(was: Schema, now: Schema, direction: str, where: str) -> list[str]:
    before, after = was.get("enum"), now.get("enum")
    if direction == "request":
        if after is not None and before is None:
            return [f"{where}: now limited to {sorted(map(str, after))}"]
        removed = [value for value in before or [] if after is not None and value not in after]
        return [f"{where}: no longer accepts {sorted(map(str, removed))}"] if removed else []
    if before is not None and after is None:
        return [f"{where}: no longer limited to {sorted(map(str, before))}"]
    added = [value for value in after or [] if before is not None and value not in before]
    return [f"{where}: may now be {sorted(map(str, added))}"] if added else []


def _constraints(was: Schema, now: Schema, where: str) -> list[str]:
    found = []
    for key in TIGHTER_WHEN_LOWER + TIGHTER_WHEN_HIGHER:
        if not isinstance(now.get(key), int | float) or isinstance(now.get(key), bool):
            continue
        before = was.get(key)
        tighter = before is None or (now[key] < before if key in TIGHTER_WHEN_LOWER else now[key] > before)
        if tighter:
            found.append(f"{where}: {key} is now {now[key]} (was {before if before is not None else 'unset'})")
    if now.get("pattern") and now.get("pattern") != was.get("pattern"):
        found.append(f"{where}: the pattern is now {now['pattern']!r}")
    return found
