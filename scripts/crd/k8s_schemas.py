#!/usr/bin/env python3
"""Embeds Kubernetes' own schemas into the CodexProxy CRD, so that the API server validates
scheduling fields (affinity, tolerations, topology spread) when a CodexProxy is applied, and
`kubectl explain` describes them.

In the CRD, a block between two comments is generated:

    affinity:
      description: …                                    (ours, kept)
      # BEGIN k8s-schema io.k8s.api.core.v1.Affinity
      …                                                 (generated)
      # END k8s-schema

`Type[]` makes an array of Type. The schemas come from an API server's OpenAPI v3 document
(`kubectl get --raw /openapi/v3/api/v1`), made structural for a CRD: references inlined,
quantities and int-or-strings as x-kubernetes-int-or-string, descriptions cut to their first
sentence, defaults and list-merge hints dropped.

  k8s_schemas.py CRD OPENAPI_JSON           rewrites CRD in place
  k8s_schemas.py --check CRD OPENAPI_JSON   exits 1 (naming the blocks) when CRD is not current
"""
import json
import re
import sys

import yaml

class Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data):  # each copy written out: no &id001 anchors in a CRD
        return True


BEGIN = re.compile(r"^(\s*)# BEGIN k8s-schema (\S+)\s*$")
END = re.compile(r"^\s*# END k8s-schema\s*$")
KEPT = ("type", "properties", "items", "required", "enum", "additionalProperties", "format")
INT_OR_STRING = {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]}


def first_sentence(text):
    sentence = re.split(r"(?<=\.)\s+(?=[A-Z])", text.strip(), maxsplit=1)[0]
    return sentence if len(sentence) <= 160 else sentence[:157] + "..."


def structural(schema, components, seen=()):
    """The schema with every reference inlined, in the subset a CRD accepts."""
    description = schema.get("description")
    if "$ref" in schema or "allOf" in schema:
        ref = schema["$ref"] if "$ref" in schema else schema["allOf"][0]["$ref"]
        name = ref.rsplit("/", 1)[1]
        if name in seen:
            raise SystemExit(f"recursive schema {name}: cannot be embedded")
        out = structural(components[name], components, seen + (name,))
    elif "oneOf" in schema:  # Quantity (string|number), IntOrString (integer|string)
        out = dict(INT_OR_STRING)
    else:
        out = {}
        for key in KEPT:
            if key not in schema:
                continue
            value = schema[key]
            if key == "properties":
                value = {k: structural(v, components, seen) for k, v in value.items()}
            elif key in ("items", "additionalProperties") and isinstance(value, dict):
                value = structural(value, components, seen)
            elif key == "format" and value not in ("int32", "int64"):
                continue
            out[key] = value
    if description:
        out = {"description": first_sentence(description), **{k: v for k, v in out.items() if k != "description"}}
    return out


def schema_for(spec, components):
    if spec.endswith("[]"):
        return {"type": "array", "items": structural({"$ref": "#/" + spec[:-2]}, components)}
    schema = structural({"$ref": "#/" + spec}, components)
    schema.pop("description", None)  # the CRD's own description of the field stays
    return schema


def render(lines, components):
    out, blocks, i = [], [], 0
    while i < len(lines):
        match = BEGIN.match(lines[i])
        out.append(lines[i])
        i += 1
        if not match:
            continue
        indent, spec = match.groups()
        blocks.append(spec)
        while i < len(lines) and not END.match(lines[i]):
            i += 1
        if i == len(lines):
            raise SystemExit(f"no '# END k8s-schema' after the block of {spec}")
        schema = schema_for(spec, components)
        text = yaml.dump(schema, Dumper=Dumper, default_flow_style=None, sort_keys=False, width=120)
        out.extend(indent + line + "\n" for line in text.splitlines())
        out.append(lines[i])
        i += 1
    return out, blocks


def main(argv):
    check = argv[:1] == ["--check"]
    if check:
        argv = argv[1:]
    if len(argv) != 2:
        raise SystemExit(__doc__)
    crd_path, openapi_path = argv
    with open(openapi_path) as f:
        components = json.load(f)["components"]["schemas"]
    with open(crd_path) as f:
        lines = f.readlines()
    new, blocks = render(lines, components)
    if check:
        if new != lines:
            print(f"{crd_path}: the embedded schemas of {', '.join(blocks)} differ from the API server's; "
                  f"run scripts/crd/k8s_schemas.py {crd_path} <openapi.json>", file=sys.stderr)
            return 1
        return 0
    with open(crd_path, "w") as f:
        f.writelines(new)
    print(f"{crd_path}: {len(blocks)} schema block(s) written: {', '.join(blocks)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
