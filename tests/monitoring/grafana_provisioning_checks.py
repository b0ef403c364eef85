"""Checks on Grafana provisioning files, shared by the pytest suite and the grafana molecule verifier.

Grafana itself cannot run on these machines, so its provisioning files are checked at the nearest
real boundaries: JSON Schemas of the provisioning formats (schemas/), the dashboard layout, and
every PromQL expression run against a live Prometheus.
"""

from __future__ import annotations

import base64
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import jsonschema
import yaml

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
DASHBOARD_SPECS = PROJECT_ROOT / "collections/ansible_collections/llmops/datacenter/roles/grafana/files/dashboards"

# Concrete values for Grafana's own interval variables, as Grafana would fill them in.
BUILTIN_VALUES = {
    "__rate_interval": "1m",
    "__interval": "15s",
    "__interval_ms": "15000",
    "__range": "1h",
    "__range_s": "3600",
    "__range_ms": "3600000",
}
# A value for a single-choice variable: matches nothing in the lab, but the query must still parse.
EXAMPLE_VARIABLE_VALUE = "llmops-example"

# Metrics that Prometheus and node exporter themselves export: expressions made only of these
# must return data from a live Prometheus that scrapes itself and a node exporter.
HOST_METRIC_PREFIXES = ("node_", "prometheus_")
HOST_METRICS = ("up",)
_LABEL_VALUES = re.compile(r"^\s*label_values\((?P<expr>.+),\s*(?P<label>[A-Za-z_][A-Za-z0-9_]*)\s*\)\s*$", re.S)


def load_schema(name: str) -> dict:
    return json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text(encoding="utf-8"))


def schema_errors(document, schema_name: str) -> list[str]:
    """Every way document breaks the named schema, as 'path: message' lines (empty when valid)."""
    validator = jsonschema.Draft202012Validator(load_schema(schema_name))
    return [
        f"{'/'.join(str(part) for part in error.absolute_path) or '<root>'}: {error.message}"
        for error in sorted(validator.iter_errors(document), key=lambda error: list(error.absolute_path))
    ]


def layout_errors(dashboard: dict) -> list[str]:
    """Overlapping or out-of-grid panels and duplicate panel ids."""
    errors = []
    ids = [panel["id"] for panel in dashboard["panels"]]
    if len(ids) != len(set(ids)):
        errors.append(f"duplicate panel ids: {sorted(i for i in set(ids) if ids.count(i) > 1)}")
    cells = {}
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        if grid["x"] + grid["w"] > 24:
            errors.append(f"panel {panel['id']} ({panel['title']}) extends past column 24")
        for column in range(grid["x"], grid["x"] + grid["w"]):
            for row in range(grid["y"], grid["y"] + grid["h"]):
                if (column, row) in cells:
                    errors.append(f"panel {panel['id']} ({panel['title']}) overlaps panel {cells[(column, row)]}")
                    break
                cells[(column, row)] = panel["id"]
            else:
                continue
            break
    return errors


def variable_values(dashboard: dict) -> dict[str, str]:
    """A concrete value for every template variable: '.*' where Grafana would send a regex."""
    values = dict(BUILTIN_VALUES)
    for variable in dashboard["templating"]["list"]:
        multi = variable.get("multi") or variable.get("includeAll")
        values[variable["name"]] = ".*" if multi else EXAMPLE_VARIABLE_VALUE
    return values


def substitute(expr: str, values: dict[str, str]) -> str:
    """The expression Grafana would send: $name and ${name} replaced; unknown names left to fail."""

    def replace(match: re.Match) -> str:
        return values.get(match.group(1), match.group(0))

    return re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", replace, expr)


def variable_query_as_promql(query: str) -> str:
    """label_values(expr, label) is Grafana's, not PromQL: the equivalent query Grafana runs."""
    match = _LABEL_VALUES.match(query)
    if not match:
        raise ValueError(f"unsupported variable query {query!r}: expected label_values(<expr>, <label>)")
    return f"count by ({match['label']}) ({match['expr']})"


def dashboard_queries(dashboard: dict) -> list[tuple[str, str]]:
    """(where, concrete PromQL) for every panel target and variable query of a dashboard."""
    values = variable_values(dashboard)
    queries = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            queries.append((f"{panel['title']} [{target['refId']}]", substitute(target["expr"], values)))
    for variable in dashboard["templating"]["list"]:
        promql = variable_query_as_promql(variable["query"]["query"])
        queries.append((f"variable {variable['name']}", substitute(promql, values)))
    return queries


def metric_names(promql: str) -> set[str]:
    """Metric names a PromQL expression selects (function names and keywords excluded)."""
    without_strings = re.sub(r'"(?:[^"\\]|\\.)*"', '""', promql)
    without_labels = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", without_strings)
    without_groupings = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", without_labels)
    names = set()
    for token in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", without_groupings):
        name = token.group(0)
        following = without_groupings[token.end():].lstrip()
        if following.startswith("("):
            continue  # a function or aggregation
        if name in {"and", "or", "unless", "bool", "offset", "by", "without", "inf", "nan", "le"}:
            continue
        if re.fullmatch(r"\d+[smhdwy]", name):
            continue
        names.add(name)
    return names


def must_return_data(promql: str) -> bool:
    """True when every metric the expression reads comes from Prometheus or node exporter."""
    names = metric_names(promql)
    return bool(names) and all(name in HOST_METRICS or name.startswith(HOST_METRIC_PREFIXES) for name in names)


def query_prometheus(base_url: str, promql: str, auth: tuple[str, str] | None = None, timeout: float = 10) -> dict:
    """Prometheus' /api/v1/query answer as a dict; a 4xx answer (a parse error) is returned, not raised."""
    request = urllib.request.Request(f"{base_url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}")
    if auth:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.load(response)
    except urllib.error.HTTPError as error:
        if 400 <= error.code < 500 and error.code not in (401, 403):
            return json.load(error)
        raise


def load_dashboard_specs() -> dict[str, dict]:
    """The role's dashboard specs, by file stem."""
    return {
        path.stem: yaml.safe_load(path.read_text(encoding="utf-8")) for path in sorted(DASHBOARD_SPECS.glob("*.yml"))
    }
