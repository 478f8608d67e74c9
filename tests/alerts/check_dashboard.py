"""The Grafana dashboard is valid JSON; its links (dashboard and panel) point at files and headings
that exist in docs/ under the `runbook_base` variable Grafana substitutes; every query is scoped by
the namespace and codexproxy variables; every metric its queries use is one the proxy documents
(docs/metrics-and-alerts.md)."""
import json
import os
import re
import sys

dashboard_path, root = sys.argv[1], sys.argv[2]
dashboard = json.load(open(dashboard_path))
variables = {v["name"]: v for v in dashboard["templating"]["list"]}
for name in ("datasource", "runbook_base", "namespace", "codexproxy"):
    assert name in variables, f"dashboard variable {name} missing"
PREFIX = "${runbook_base}/"


def heading_anchors(path):
    with open(path) as doc:
        return {re.sub(r"[^a-z0-9 -]", "", h.strip("# \n").lower()).replace(" ", "-") for h in doc if h.startswith("#")}


links = list(dashboard["links"])
for panel in dashboard["panels"]:
    links += panel.get("links", [])
for link in links:
    url = link["url"]
    assert url.startswith(PREFIX), f"link {url} is not under {PREFIX} (Grafana cannot open a repository path)"
    path, _, anchor = url[len(PREFIX):].partition("#")
    target = os.path.join(root, path)
    assert os.path.isfile(target), f"dashboard link {url} does not resolve ({target})"
    assert not anchor or anchor in heading_anchors(target), f"dashboard link {url}: no heading #{anchor}"
documented = set(re.findall(r"`(codex_[a-z_]+)", open(os.path.join(root, "docs/metrics-and-alerts.md")).read()))
used = set()
for panel in dashboard["panels"]:
    assert panel.get("links"), f"panel {panel['title']} has no runbook link"
    for target in panel["targets"]:
        expr = target["expr"]
        for selector in re.findall(r"codex_[a-z_]+(\{[^}]*\})?", expr):
            assert 'namespace=~"$namespace"' in selector and 'codexproxy=~"$codexproxy"' in selector, \
                f"panel {panel['title']}: {expr} is not scoped by $namespace and $codexproxy"
        used |= {re.sub(r"_(bucket|sum|count)$", "", m) for m in re.findall(r"codex_[a-z_]+", expr)}
assert used and used <= documented, f"undocumented metrics in the dashboard: {sorted(used - documented)}"
print(f"{len(dashboard['panels'])} panels, {len(used)} metrics, {len(links)} links ok")
