"""``GET /docs``: the OpenAPI document as one self-contained HTML page.

Rendered on the server from the document itself (no JavaScript, no CDN: the
page must work where the service has no internet), so it cannot drift from
``/openapi.json``: every endpoint with its method, path, summary, parameters,
request and response schemas, and an example of each body.
"""

from __future__ import annotations

import json
import re
from html import escape
from typing import Any
from urllib.parse import urlencode

REF_PREFIX = "#/components/schemas/"
METHODS = ("get", "post", "put", "patch", "delete")
EXAMPLE_TIME = "2025-11-25T10:00:00.000000Z"

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


def prose(text: str) -> str:
    """Escape text for HTML, showing `backticked` parts as code."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", escape(text))


class Page:
    """Renders one OpenAPI document."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.schemas: dict[str, Any] = spec.get("components", {}).get("schemas", {})
        self.security: dict[str, Any] = spec.get("components", {}).get("securitySchemes", {})
        # Request bodies already shown in full, by schema, and the operation showing them.
        self.bodies_shown: dict[str, str] = {}

    # -- schemas ---------------------------------------------------------------------

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith(REF_PREFIX):
            resolved: dict[str, Any] = self.schemas.get(ref[len(REF_PREFIX) :], {})
            return resolved
        return schema

    def type_html(self, schema: dict[str, Any]) -> str:
        """A short, linked description of a schema's type."""
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith(REF_PREFIX):
            name = ref[len(REF_PREFIX) :]
            return f'<a href="#schema-{escape(name)}">{escape(name)}</a>'
        for key in ("anyOf", "oneOf"):
            if key in schema:
                return " | ".join(self.type_html(s) for s in schema[key])
        if "enum" in schema:
            return "one of " + ", ".join(
                f"<code>{escape(json.dumps(v, ensure_ascii=False))}</code>" for v in schema["enum"]
            )
        kinds = schema.get("type", "any")
        kinds = kinds if isinstance(kinds, list) else [kinds]
        parts = []
        for kind in kinds:
            if kind == "array":
                parts.append("array of " + self.type_html(schema.get("items", {})))
            elif kind == "object" and isinstance(schema.get("additionalProperties"), dict):
                values = schema["additionalProperties"]
                parts.append("object of " + (self.type_html(values) if values else "any"))
            else:
                parts.append(escape(str(kind)))
        text = " | ".join(parts)
        if schema.get("format"):
            text += f" <span class=muted>({escape(schema['format'])})</span>"
        return text

    def constraints(self, schema: dict[str, Any]) -> str:
        notes = []
        for key, label in (
            ("minLength", "min length"),
            ("maxLength", "max length"),
            ("minimum", "min"),
            ("maximum", "max"),
            ("pattern", "pattern"),
            ("default", "default"),
        ):
            if key in schema:
                notes.append(
                    f"{label} <code>{escape(json.dumps(schema[key], ensure_ascii=False))}</code>"
                )
        return "; ".join(notes)

    def properties_table(self, schema: dict[str, Any]) -> str:
        schema = self.resolve(schema)
        properties: dict[str, Any] = schema.get("properties", {})
        if not properties:
            return f"<p>{self.type_html(schema)}</p>"
        required = set(schema.get("required", []))
        rows = []
        for name, prop in properties.items():
            description = prose(prop.get("description", ""))
            extra = self.constraints(prop)
            if extra:
                description = f"{description}<br><span class=muted>{extra}</span>"
            mark = "<span class=req>required</span>" if name in required else ""
            rows.append(
                f"<tr><td><code>{escape(name)}</code></td><td>{self.type_html(prop)}</td>"
                f"<td>{mark}</td><td>{description}</td></tr>"
            )
        return (
            "<table><tr><th>field</th><th>type</th><th></th><th>meaning</th></tr>"
            + "".join(rows)
            + "</table>"
        )

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

    def parameters(self, operation: dict[str, Any]) -> str:
        parameters = operation.get("parameters", [])
        if not parameters:
            return ""
        rows = []
        for p in parameters:
            schema = p.get("schema", {})
            extra = self.constraints(schema)
            description = escape(p.get("description", ""))
            if extra:
                description = f"{description}<br><span class=muted>{extra}</span>"
            mark = "<span class=req>required</span>" if p.get("required") else ""
            rows.append(
                f"<tr><td><code>{escape(p['name'])}</code></td><td>{escape(p['in'])}</td>"
                f"<td>{self.type_html(schema)}</td><td>{mark}</td><td>{description}</td></tr>"
            )
        return (
            "<h4>Parameters</h4><table><tr><th>name</th><th>in</th><th>type</th><th></th>"
            "<th>meaning</th></tr>" + "".join(rows) + "</table>"
        )

    def body_example(self, media_type: str, value: Any) -> str:
        if media_type == "application/x-www-form-urlencoded" and isinstance(value, dict):
            text = urlencode({k: "" if v is None else v for k, v in value.items()})
        elif isinstance(value, str):
            text = value
        else:
            text = json.dumps(value, indent=2, ensure_ascii=False)
        return f"<pre>{escape(text)}</pre>"

    def request_body(self, operation: dict[str, Any]) -> str:
        body = operation.get("requestBody")
        if not body:
            return ""
        parts = ["<h4>Request body</h4>"]
        if body.get("description"):
            parts.append(f"<p>{escape(body['description'])}</p>")
        content: dict[str, Any] = body.get("content", {})
        first: dict[str, Any] = next(iter(content.values()), {})
        schema: dict[str, Any] = first.get("schema", {})
        resolved = self.resolve(schema)
        parts.append(
            "<p>Content types: "
            + ", ".join(f"<code>{escape(m)}</code>" for m in content)
            + f" — schema {self.type_html(schema)}</p>"
        )
        variants = resolved.get("anyOf") or resolved.get("oneOf")
        ref = str(schema.get("$ref", ""))
        if variants and ref in self.bodies_shown:
            anchor = self.bodies_shown[ref]
            parts.append(f"<p>The same bodies as <a href='#op-{anchor}'>above</a>.</p>")
        elif variants:
            self.bodies_shown[ref] = escape(operation.get("operationId", ""))
            if resolved.get("description"):
                parts.append(f"<p>{prose(resolved['description'])}</p>")
            for variant in variants:
                name = variant.get("$ref", "")[len(REF_PREFIX) :]
                target = self.resolve(variant)
                first_media = next(iter(content), "application/json")
                parts.append(
                    f"<details><summary><a href='#schema-{escape(name)}'>{escape(name)}</a>: "
                    f"{escape(target.get('description', ''))}</summary>"
                    + self.properties_table(variant)
                    + self.body_example(first_media, self.example(variant))
                    + "</details>"
                )
        else:
            parts.append(self.properties_table(schema))
            for media_type in content:
                parts.append(self.body_example(media_type, self.example(schema)))
        return "".join(parts)

    def responses(self, operation: dict[str, Any]) -> str:
        rows = []
        for status, response in operation.get("responses", {}).items():
            content: dict[str, Any] = response.get("content", {})
            cells = []
            for media_type, media in content.items():
                schema = media.get("schema", {})
                example = media.get("example", self.example(schema))
                cells.append(
                    f"<code>{escape(media_type)}</code> {self.type_html(schema)}"
                    + (
                        f"<details><summary>example</summary>"
                        f"{self.body_example(media_type, example)}</details>"
                        if example is not None and status.startswith("2")
                        else ""
                    )
                )
            rows.append(
                f"<tr><td class=status>{escape(status)}</td>"
                f"<td>{escape(response.get('description', ''))}</td>"
                f"<td>{'<br>'.join(cells) or '<span class=muted>no body</span>'}</td></tr>"
            )
        return (
            "<h4>Responses</h4><table><tr><th>status</th><th>meaning</th><th>body</th></tr>"
            + "".join(rows)
            + "</table>"
        )

    def auth(self, operation: dict[str, Any]) -> str:
        requirements = operation.get("security", self.spec.get("security", []))
        names = [name for requirement in requirements for name in requirement]
        if not names:
            return "<p class=muted>No credentials.</p>"
        described = []
        for name in names:
            scheme = self.security.get(name, {})
            label = {"bearer": "Authorization: Bearer &lt;key&gt;", "basic": "HTTP Basic"}.get(
                scheme.get("scheme", ""), escape(name)
            )
            described.append(f"{label} — {escape(scheme.get('description', ''))}")
        return "<p><b>Auth:</b> " + "; ".join(described) + "</p>"

    def operation(self, path: str, method: str, operation: dict[str, Any]) -> str:
        anchor = escape(operation.get("operationId", f"{method}-{path}"))
        description = operation.get("description")
        return (
            f"<section class=op id='op-{anchor}'>"
            f"<h3><span class='method {method}'>{method}</span>{escape(path)}</h3>"
            f"<p><b>{escape(operation.get('summary', ''))}</b></p>"
            + (f"<p>{prose(description)}</p>" if description else "")
            + self.auth(operation)
            + self.parameters(operation)
            + self.request_body(operation)
            + self.responses(operation)
            + "</section>"
        )

    def operations(self) -> list[tuple[str, str, str, dict[str, Any]]]:
        """(tag, path, method, operation) in document order."""
        found = []
        for path, item in self.spec.get("paths", {}).items():
            for method in METHODS:
                if method in item:
                    operation = item[method]
                    tag = (operation.get("tags") or ["other"])[0]
                    found.append((tag, path, method, operation))
        return found

    def render(self) -> str:
        info = self.spec.get("info", {})
        title = escape(info.get("title", "API"))
        operations = self.operations()
        tags = [t["name"] for t in self.spec.get("tags", [])]
        tags += sorted({op[0] for op in operations} - set(tags))
        tag_docs = {t["name"]: t.get("description", "") for t in self.spec.get("tags", [])}
        toc, sections = [], []
        for tag in tags:
            mine = [op for op in operations if op[0] == tag]
            if not mine:
                continue
            sections.append(f"<h2 id='tag-{escape(tag)}'>{escape(tag)}</h2>")
            if tag_docs.get(tag):
                sections.append(f"<p class=muted>{escape(tag_docs[tag])}</p>")
            for _, path, method, operation in mine:
                anchor = escape(operation.get("operationId", f"{method}-{path}"))
                toc.append(
                    f"<li><a href='#op-{anchor}'><span class='method {method}'>{method}</span>"
                    f"<code>{escape(path)}</code></a></li>"
                )
                sections.append(self.operation(path, method, operation))
        schema_sections = [
            f"<section class=op id='schema-{escape(name)}'><h3>{escape(name)}</h3>"
            + (f"<p>{escape(schema['description'])}</p>" if schema.get("description") else "")
            + self.properties_table(schema)
            + "</section>"
            for name, schema in self.schemas.items()
        ]
        return (
            "<!doctype html><html lang=en><head><meta charset=utf-8>"
            "<meta name=viewport content='width=device-width,initial-scale=1'>"
            f"<title>{title} API</title><style>{STYLE}</style></head><body><main>"
            f"<h1>{title} API <span class=muted>{escape(str(info.get('version', '')))}</span></h1>"
            f"<p>{prose(info.get('description', ''))}</p>"
            "<p>Machine-readable: <a href='/openapi.json'><code>/openapi.json</code></a> "
            f"(OpenAPI {escape(str(self.spec.get('openapi', '')))}).</p>"
            "<nav><h2>Endpoints</h2><ul>"
            + "".join(toc)
            + "</ul></nav>"
            + "".join(sections)
            + "<h2 id=schemas>Schemas</h2>"
            + "".join(schema_sections)
            + "</main></body></html>"
        )


def render(spec: dict[str, Any]) -> str:
    """The HTML page of an OpenAPI document."""
    return Page(spec).render()
