"""Every alert names a runbook (file#anchor) that exists in docs/ and has that heading."""
import re
import sys

rules_path, root = sys.argv[1], sys.argv[2]
text = open(rules_path).read()
alerts = re.findall(r"- alert: (\w+)", text)
links = re.findall(r"runbook: (\S+)", text)
assert len(links) == len(alerts) > 0, f"{len(alerts)} alerts but {len(links)} runbook links"
for link in links:
    path, _, anchor = link.partition("#")
    with open(f"{root}/{path}") as doc:
        headings = {re.sub(r"[^a-z0-9 -]", "", h.strip("# ").lower()).replace(" ", "-")
                    for h in doc if h.startswith("#")}
    assert not anchor or anchor in headings, f"{link}: no heading for #{anchor} (have {sorted(headings)})"
print(f"{len(links)} runbook links resolve")
