"""The Grafana dashboard is valid JSON, its links resolve to files in docs/, and every metric its
queries use is one the proxy documents (docs/metrics-and-alerts.md)."""
import json
import os
import re
import sys

dashboard_path, root = sys.argv[1], sys.argv[2]
dashboard = json.load(open(dashboard_path))
base = os.path.dirname(dashboard_path)
for link in dashboard["links"]:
    target = os.path.normpath(os.path.join(base, link["url"].split("#")[0]))
    assert os.path.isfile(target), f"dashboard link {link['url']} does not resolve ({target})"
documented = set(re.findall(r"`(codex_[a-z_]+)", open(os.path.join(root, "docs/metrics-and-alerts.md")).read()))
used = set()
for panel in dashboard["panels"]:
    for target in panel["targets"]:
        used |= {re.sub(r"_(bucket|sum|count)$", "", m) for m in re.findall(r"codex_[a-z_]+", target["expr"])}
assert used and used <= documented, f"undocumented metrics in the dashboard: {sorted(used - documented)}"
print(f"{len(dashboard['panels'])} panels, {len(used)} metrics, {len(dashboard['links'])} links ok")
