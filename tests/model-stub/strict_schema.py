"""What OpenAI's strict structured outputs accept, checked the way the real API checks a
`text.format {type: json_schema, strict: true}` before it answers: the stub refuses what a real
provider refuses, so that tests see what production would. Written from OpenAI's published rules
(platform.openai.com/docs/guides/structured-outputs, "Supported schemas"), independently of the
proxy's own check (proxy/api/output_format.cpp) so that each can catch the other.

Also: a value of a schema (the stub's answer) and a validator of that subset (a scripted answer
is used only when it is an instance). Standard library only.
"""

UNSUPPORTED = ("allOf", "not", "oneOf", "if", "then", "else", "dependentRequired", "dependentSchemas",
               "patternProperties", "unevaluatedProperties", "unevaluatedItems", "propertyNames",
               "minProperties", "maxProperties", "contains", "minContains", "maxContains")
TYPES = ("string", "number", "integer", "boolean", "object", "array", "null")
MAX_DEPTH = 10
MAX_PROPERTIES = 5000
MAX_ENUM_VALUES = 1000


class SchemaError(Exception):
    def __init__(self, context, message):
        super().__init__(message)
        self.context = tuple(context)
        self.message = message

    def openai_message(self, name):
        return f"Invalid schema for response_format '{name}': In context={self.context!r}, {self.message}"


def _types(node):
    t = node.get("type")
    return t if isinstance(t, list) else ([t] if t is not None else [])


def check_strict(schema):
    """Raises SchemaError (context path, message) when OpenAI's strict mode would refuse `schema`."""
    if not isinstance(schema, dict):
        raise SchemaError((), "schema must be a JSON Schema of 'type: \"object\"', got something else.")
    if "anyOf" in schema or _types(schema) != ["object"]:
        raise SchemaError((), "schema must be a JSON Schema of 'type: \"object\"', got 'type: "
                          f"\"{schema.get('type')}\"'.")
    counts = {"properties": 0, "enum": 0}

    def walk(node, context, depth):
        if not isinstance(node, dict):
            raise SchemaError(context, "schema must be an object.")
        if depth > MAX_DEPTH:
            raise SchemaError(context, f"nesting depth exceeds {MAX_DEPTH}.")
        for keyword in UNSUPPORTED:
            if keyword in node:
                raise SchemaError(context, f"'{keyword}' is not permitted.")
        ref = node.get("$ref")
        if ref is not None and (not isinstance(ref, str) or not ref.startswith("#")):
            raise SchemaError(context, "only local $ref (#...) are permitted.")
        for t in _types(node):
            if t not in TYPES:
                raise SchemaError(context, f"type '{t}' is not permitted.")
        if "enum" in node:
            counts["enum"] += len(node["enum"]) if isinstance(node["enum"], list) else 0
            if counts["enum"] > MAX_ENUM_VALUES:
                raise SchemaError(context, f"more than {MAX_ENUM_VALUES} enum values in all.")
        if "object" in _types(node) or "properties" in node:
            properties = node.get("properties", {})
            if not isinstance(properties, dict):
                raise SchemaError(context, "'properties' must be an object.")
            if node.get("additionalProperties") is not False:
                raise SchemaError(context, "'additionalProperties' is required to be supplied and to be false.")
            required = node.get("required", [])
            missing = [k for k in properties if k not in (required if isinstance(required, list) else [])]
            if missing:
                raise SchemaError(context, f"'required' is required to be supplied and to be an array including "
                                           f"every key in properties. Missing '{missing[0]}'.")
            counts["properties"] += len(properties)
            if counts["properties"] > MAX_PROPERTIES:
                raise SchemaError(context, f"more than {MAX_PROPERTIES} properties in all.")
            for key, sub in properties.items():
                walk(sub, context + ("properties", key), depth + 1)
        if "items" in node:
            walk(node["items"], context + ("items",), depth + 1)
        if "anyOf" in node:
            if not isinstance(node["anyOf"], list):
                raise SchemaError(context, "'anyOf' must be an array.")
            for n, sub in enumerate(node["anyOf"]):
                walk(sub, context + ("anyOf", n), depth)
        for defs in ("$defs", "definitions"):
            if isinstance(node.get(defs), dict):
                for key, sub in node[defs].items():
                    walk(sub, context + (defs, key), depth)

    walk(schema, (), 1)


def _resolve(ref, root):
    node = root
    for part in ref.lstrip("#").strip("/").split("/") if ref != "#" else []:
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def instance(schema, root=None, depth=0):
    """A value of `schema` (deterministic; recursion ends in its null or empty options)."""
    root = schema if root is None else root
    if "$ref" in schema:
        return instance(_resolve(schema["$ref"], root), root, depth + 1)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    if "anyOf" in schema:
        options = schema["anyOf"]
        if depth > 6:  # a recursive schema: take the option that ends it
            for option in options:
                if "null" in _types(option):
                    return None
        return instance(options[0], root, depth + 1)
    types = [t for t in _types(schema) if t != "null"] or ["null"]
    kind = types[0]
    if kind == "object" or "properties" in schema:
        return {k: instance(v, root, depth + 1) for k, v in schema.get("properties", {}).items()}
    if kind == "array":
        count = max(1, schema.get("minItems", 1))
        if schema.get("maxItems") == 0 or depth > 6:
            count = schema.get("minItems", 0)
        return [instance(schema.get("items", {}), root, depth + 1) for _ in range(count)]
    if kind == "string":
        return {"date-time": "2026-01-02T03:04:05Z", "date": "2026-01-02", "email": "a@example.com",
                "uuid": "00000000-0000-4000-8000-000000000000"}.get(schema.get("format"), "text")
    if kind == "integer":
        return int(schema.get("minimum", 1))
    if kind == "number":
        return schema.get("minimum", 1.5)
    if kind == "boolean":
        return True
    return None


def is_instance(value, schema, root=None):
    """True when `value` satisfies `schema` (the strict subset: types, properties, required,
    additionalProperties, items, enum, const, anyOf, $ref)."""
    root = schema if root is None else root
    if "$ref" in schema:
        return is_instance(value, _resolve(schema["$ref"], root), root)
    if "const" in schema and value != schema["const"]:
        return False
    if "enum" in schema and value not in schema["enum"]:
        return False
    if "anyOf" in schema and not any(is_instance(value, s, root) for s in schema["anyOf"]):
        return False
    types = _types(schema)
    checks = {"string": lambda v: isinstance(v, str),
              "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
              "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
              "boolean": lambda v: isinstance(v, bool), "null": lambda v: v is None,
              "object": lambda v: isinstance(v, dict), "array": lambda v: isinstance(v, list)}
    if types and not any(checks.get(t, lambda v: False)(value) for t in types):
        return False
    if isinstance(value, dict) and ("properties" in schema or "object" in types):
        properties = schema.get("properties", {})
        if any(k not in value for k in schema.get("required", [])):
            return False
        if schema.get("additionalProperties") is False and any(k not in properties for k in value):
            return False
        return all(is_instance(value[k], s, root) for k, s in properties.items() if k in value)
    if isinstance(value, list) and "items" in schema:
        return all(is_instance(v, schema["items"], root) for v in value)
    return True
