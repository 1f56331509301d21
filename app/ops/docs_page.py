"""``GET /docs``: the OpenAPI document as one self-contained HTML page.

Rendered on the server from the document itself (no JavaScript, no CDN: the
page must work where the service has no internet), so it cannot drift from
``/openapi.json``: every endpoint with its method, path, summary, parameters,
request and response schemas, and an example of each body. The markup lives
in the autoescaped template ``templates/docs.html``; this module prepares what
it shows.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlencode

from flask import render_template
from markupsafe import Markup, escape

REF_PREFIX = "#/components/schemas/"
METHODS = ("get", "post", "put", "patch", "delete")
EXAMPLE_TIME = "2025-11-25T10:00:00.000000Z"
CONSTRAINTS = (
    ("minLength", "min length"),
    ("maxLength", "max length"),
    ("minimum", "min"),
    ("maximum", "max"),
    ("pattern", "pattern"),
    ("default", "default"),
)
AUTH_LABELS = {"bearer": "Authorization: Bearer <key>", "basic": "HTTP Basic"}

STYLE = """
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2330;
background:#f6f7f9}
main{max-width:1100px;margin:0 auto;padding:24px 32px 64px}
h1{margin:0 0 4px}h2{margin-top:48px;border-bottom:2px solid #d8dce3;padding-bottom:4px}
h3{margin:0;font-size:17px;font-family:ui-monospace,Menlo,Consolas,monospace}
code,pre{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:13px}
pre{background:#1d2330;color:#e8ecf2;padding:12px;border-radius:6px;overflow-x:auto;
white-space:pre-wrap;word-break:break-word}
table{border-collapse:collapse;width:100%;margin:8px 0 16px;background:#fff}
th,td{border:1px solid #d8dce3;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#eef0f4;font-weight:600}
.op{background:#fff;border:1px solid #d8dce3;border-radius:8px;padding:16px 20px;margin:16px 0}
.method{display:inline-block;min-width:64px;text-align:center;border-radius:4px;color:#fff;
font-weight:700;padding:2px 8px;margin-right:8px;font-size:13px;text-transform:uppercase}
.get{background:#2f7d4f}.post{background:#2d5fa8}.delete{background:#a8322d}
.put,.patch{background:#8a5a12}
.muted{color:#5b6473}.req{color:#a8322d;font-weight:600}
nav ul{list-style:none;padding-left:0;columns:2}nav li{margin:2px 0}
nav a{text-decoration:none}a{color:#2d5fa8}
.status{font-weight:700;font-family:ui-monospace,Menlo,Consolas,monospace}
details{margin:6px 0}summary{cursor:pointer}
"""


def prose(text: str) -> Markup:
    """Escape text for HTML, showing `backticked` parts as code."""
    return Markup(re.sub(r"`([^`]+)`", r"<code>\1</code>", str(escape(text))))


def json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


class Page:
    """What the template needs to render one OpenAPI document."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.schemas: dict[str, Any] = spec.get("components", {}).get("schemas", {})
        self.security: dict[str, Any] = spec.get("components", {}).get("securitySchemes", {})
        # Request bodies already shown in full, by schema, and the operation showing them.
        self.bodies_shown: dict[str, str] = {}

    # -- schemas ---------------------------------------------------------------------

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        name = self.ref_name(schema)
        if name is not None:
            resolved: dict[str, Any] = self.schemas.get(name, {})
            return resolved
        return schema

    @staticmethod
    def ref_name(schema: dict[str, Any]) -> str | None:
        """The component a schema refers to, if it is a reference."""
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith(REF_PREFIX):
            return ref[len(REF_PREFIX) :]
        return None

    @staticmethod
    def variants(schema: dict[str, Any]) -> list[dict[str, Any]] | None:
        for key in ("anyOf", "oneOf"):
            if key in schema:
                options: list[dict[str, Any]] = schema[key]
                return options
        return None

    @staticmethod
    def kinds(schema: dict[str, Any]) -> list[str]:
        kinds = schema.get("type", "any")
        return [str(k) for k in kinds] if isinstance(kinds, list) else [str(kinds)]

    @staticmethod
    def constraints(schema: dict[str, Any]) -> list[tuple[str, Any]]:
        return [(label, schema[key]) for key, label in CONSTRAINTS if key in schema]

    def example(self, schema: dict[str, Any], depth: int = 0) -> Any:
        """An example value for a schema: its own example, else one built from its parts."""
        if depth > 24:  # no schema here is recursive; this only guards against one
            return None
        if "example" in schema:
            return schema["example"]
        if "$ref" in schema:
            return self.example(self.resolve(schema), depth + 1)
        for key in ("anyOf", "oneOf"):
            if key in schema:
                options = [s for s in schema[key] if s.get("type") != "null"]
                return self.example(options[0], depth + 1) if options else None
        if "enum" in schema:
            return next((v for v in schema["enum"] if v is not None), None)
        if "default" in schema and schema["default"] is not None:
            return schema["default"]
        kinds = schema.get("type", "object")
        kind = next((k for k in kinds if k != "null"), "null") if isinstance(kinds, list) else kinds
        if kind == "object":
            return {
                name: self.example(prop, depth + 1)
                for name, prop in schema.get("properties", {}).items()
            }
        if kind == "array":
            return [self.example(schema.get("items", {}), depth + 1)]
        if kind == "integer":
            return 0
        if kind == "number":
            return 0.0
        if kind == "boolean":
            return True
        if kind == "string":
            return EXAMPLE_TIME if schema.get("format") == "date-time" else "string"
        return None

    # -- operations ---------------------------------------------------------------

    @staticmethod
    def example_text(media_type: str, value: Any) -> str:
        """An example body as the sender would write it."""
        if media_type == "application/x-www-form-urlencoded" and isinstance(value, dict):
            return urlencode({k: "" if v is None else v for k, v in value.items()})
        if isinstance(value, str):
            return value
        return json.dumps(value, indent=2, ensure_ascii=False)

    def request_body(self, operation: dict[str, Any]) -> dict[str, Any]:
        """How to show a request body: in full, by its variants, or as "the same as above"."""
        content: dict[str, Any] = operation["requestBody"].get("content", {})
        first: dict[str, Any] = next(iter(content.values()), {})
        schema: dict[str, Any] = first.get("schema", {})
        resolved = self.resolve(schema)
        variants = resolved.get("anyOf") or resolved.get("oneOf")
        ref = str(schema.get("$ref", ""))
        shown: dict[str, Any] = {"schema": schema, "same_as": None, "variants": None}
        if variants and ref in self.bodies_shown:
            shown["same_as"] = self.bodies_shown[ref]
        elif variants:
            self.bodies_shown[ref] = operation.get("operationId", "")
            shown.update(
                variants=variants,
                description=resolved.get("description"),
                first_media=next(iter(content), "application/json"),
            )
        return shown

    def auth(self, operation: dict[str, Any]) -> list[tuple[str, str]]:
        """(label, description) of each credential the operation accepts."""
        requirements = operation.get("security", self.spec.get("security", []))
        # OpenAPI has no scheme for a secret in the path: the webhook's token is
        # a path parameter, and it is the credential all the same.
        in_path = [
            parameter
            for parameter in operation.get("parameters", [])
            if parameter.get("in") == "path" and parameter.get("name") == "token"
        ]
        if not requirements and in_path:
            return [("the token in the path", str(in_path[0].get("description", "")))]
        described = []
        for name in (name for requirement in requirements for name in requirement):
            scheme = self.security.get(name, {})
            label = AUTH_LABELS.get(scheme.get("scheme", ""), name)
            described.append((label, scheme.get("description", "")))
        return described

    @staticmethod
    def anchor(path: str, method: str, operation: dict[str, Any]) -> str:
        return str(operation.get("operationId", f"{method}-{path}"))

    def sections(self) -> list[tuple[str, list[tuple[str, str, dict[str, Any]]]]]:
        """(tag, [(path, method, operation)...]) in the document's tag order."""
        found: list[tuple[str, str, str, dict[str, Any]]] = []
        for path, item in self.spec.get("paths", {}).items():
            for method in METHODS:
                if method in item:
                    operation = item[method]
                    tag = (operation.get("tags") or ["other"])[0]
                    found.append((tag, path, method, operation))
        tags = [t["name"] for t in self.spec.get("tags", [])]
        tags += sorted({op[0] for op in found} - set(tags))
        grouped = [(tag, [op[1:] for op in found if op[0] == tag]) for tag in tags]
        return [(tag, ops) for tag, ops in grouped if ops]

    def render(self) -> str:
        return render_template(
            "docs.html",
            page=self,
            style=Markup(STYLE),
            info=self.spec.get("info", {}),
            openapi_version=str(self.spec.get("openapi", "")),
            sections=self.sections(),
            tag_docs={t["name"]: t.get("description", "") for t in self.spec.get("tags", [])},
            schemas=self.schemas,
        )


def render(spec: dict[str, Any]) -> str:
    """The HTML page of an OpenAPI document (needs a Flask app context)."""
    return Page(spec).render()
