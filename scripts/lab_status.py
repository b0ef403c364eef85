#!/usr/bin/env python3
"""Print what the lab's Prometheus sees: every scrape target's health and the rule groups loaded.

Exits non-zero when Prometheus does not answer or a node exporter target is not up.
Usage: scripts/lab_status.py URL USER PASSWORD
"""

import base64
import json
import sys
import urllib.request


def api(url: str, path: str, user: str, password: str) -> dict:
    request = urllib.request.Request(url + path)
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    request.add_header("Authorization", f"Basic {token}")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)["data"]


def main(url: str, user: str, password: str) -> int:
    try:
        targets = api(url, "/api/v1/targets?state=active", user, password)["activeTargets"]
        groups = api(url, "/api/v1/rules", user, password)["groups"]
    except OSError as exc:
        print(f"Prometheus did not answer at {url}: {exc}")
        return 1
    for target in sorted(targets, key=lambda t: (t["labels"]["job"], t["labels"]["instance"])):
        print(f"  target {target['labels']['job']:<16} {target['labels']['instance']:<24} {target['health']}")
    rules = sum(len(group["rules"]) for group in groups)
    print(f"  rules: {len(groups)} groups, {rules} rules loaded")
    down = [t["labels"]["instance"] for t in targets if t["labels"]["job"] == "node" and t["health"] != "up"]
    if down:
        print(f"  node exporter targets not up yet: {', '.join(down)}")
    return 1 if down or not groups else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
