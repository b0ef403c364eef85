# Copyright: llmops contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""Logic of the grafana_dashboard and grafana_datasource modules: Grafana file provisioning.

Grafana reads dashboards (JSON) and datasources (YAML) from its provisioning directories when it
starts. Writing those files, rather than calling Grafana's HTTP API, makes the result idempotent,
reviewable in diff mode and possible before Grafana is even installed.

Runs on the target host, so standard library only: YAML is emitted by module_utils.yaml_text, which
needs no PyYAML on the host. Nothing here imports
Ansible; the modules hand in plain parameters and get back a result dict.
"""

from __future__ import annotations

import copy
import json
import os
import re

from ansible_collections.llmops.datacenter.plugins.module_utils import yaml_text
from ansible_collections.llmops.datacenter.plugins.module_utils.managed_file import ensure_file

GRID_COLUMNS = 24
# The dashboard schema version Grafana 10.x/11.x writes; older versions migrate forward on load.
DASHBOARD_SCHEMA_VERSION = 39

PANEL_KINDS = ("timeseries", "stat", "gauge", "row")
DEFAULT_PANEL_SIZE = {"timeseries": (12, 8), "stat": (6, 4), "gauge": (6, 4), "row": (GRID_COLUMNS, 1)}

# Grafana unit identifiers the dashboards need; "suffix:<text>" covers units Grafana lacks (tok/s).
UNITS = (
    "none",
    "short",
    "percent",
    "percentunit",
    "bytes",
    "decbytes",
    "mbytes",
    "decmbytes",
    "celsius",
    "watt",
    "kwatt",
    "s",
    "ms",
    "reqps",
    "ops",
    "Bps",
    "binBps",
)
CUSTOM_UNIT_PREFIXES = ("suffix:", "prefix:")

# Variables Grafana defines itself; expressions may use them without declaring them.
BUILTIN_VARIABLES = ("__rate_interval", "__interval", "__interval_ms", "__range", "__range_s", "__range_ms")

_UID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
_VARIABLE_NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_VARIABLE_REFERENCE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)")
_URL_PATTERN = re.compile(r"^https?://[^\s/]+")

SECRET_MASK = "********"


class SpecError(ValueError):
    """An input field is invalid; `field` is its path, e.g. panels[2].unit."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


# --------------------------------------------------------------------------- dashboards


def slugify(text: str, limit: int = 40) -> str:
    """A Grafana uid from a title: lowercase, dashes, at most 40 characters (Grafana's limit)."""
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:limit].rstrip("-") or "dashboard"


def _require_text(value, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise SpecError(field, "must be a non-empty string")
    return value


def _check_unit(unit, field: str) -> str:
    if unit in UNITS:
        return unit
    if isinstance(unit, str) and unit.startswith(CUSTOM_UNIT_PREFIXES) and len(unit.split(":", 1)[1]) > 0:
        return unit
    accepted = ", ".join(UNITS)
    raise SpecError(field, f"unknown unit {unit!r}; accepted: {accepted}, or suffix:<text> / prefix:<text>")


def _check_number(value, field: str) -> float | int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        if isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                raise SpecError(field, f"must be a number, got {value!r}") from None
            return int(number) if number.is_integer() else number
        raise SpecError(field, f"must be a number, got {value!r}")
    return value


def _threshold_steps(thresholds, field: str) -> list[dict]:
    """Grafana's threshold steps: a base step (value null) and one step per threshold, ascending."""
    if thresholds is None:
        thresholds = []
    if not isinstance(thresholds, list):
        raise SpecError(field, "must be a list of {value, color}")
    steps = [{"color": "green", "value": None}]
    previous = None
    for index, threshold in enumerate(thresholds):
        item_field = f"{field}[{index}]"
        if not isinstance(threshold, dict):
            raise SpecError(item_field, "must be a mapping with value and color")
        unknown = sorted(set(threshold) - {"value", "color"})
        if unknown:
            raise SpecError(f"{item_field}.{unknown[0]}", "unknown key; accepted: value, color")
        value = _check_number(threshold.get("value"), f"{item_field}.value")
        color = _require_text(threshold.get("color"), f"{item_field}.color")
        if previous is not None and value <= previous:
            raise SpecError(f"{item_field}.value", f"thresholds must ascend; {value} follows {previous}")
        previous = value
        steps.append({"color": color, "value": value})
    return steps


def _targets(panel: dict, field: str, datasource: dict, variables: set[str]) -> list[dict]:
    if "expr" in panel and "targets" in panel:
        raise SpecError(f"{field}.expr", "give either expr or targets, not both")
    if "expr" in panel:
        raw_targets = [{"expr": panel["expr"], "legend": panel.get("legend", "")}]
        target_fields = [f"{field}.expr"]
    else:
        raw_targets = panel.get("targets")
        if not isinstance(raw_targets, list) or not raw_targets:
            raise SpecError(f"{field}.targets", "a panel needs expr or a non-empty targets list")
        target_fields = [f"{field}.targets[{index}].expr" for index in range(len(raw_targets))]
    targets = []
    for index, (target, expr_field) in enumerate(zip(raw_targets, target_fields, strict=True)):
        if not isinstance(target, dict):
            raise SpecError(expr_field.rsplit(".", 1)[0], "must be a mapping with expr and legend")
        unknown = sorted(set(target) - {"expr", "legend", "instant"})
        if unknown:
            raise SpecError(f"{field}.targets[{index}].{unknown[0]}", "unknown key; accepted: expr, legend, instant")
        expr = _require_text(target.get("expr"), expr_field)
        for name in _VARIABLE_REFERENCE.findall(expr):
            if name not in variables and name not in BUILTIN_VARIABLES:
                defined = ", ".join(sorted(variables) + list(BUILTIN_VARIABLES))
                raise SpecError(expr_field, f"uses undefined variable ${name}; defined: {defined}")
        legend = target.get("legend") or ""
        if not isinstance(legend, str):
            raise SpecError(f"{field}.targets[{index}].legend", "must be a string")
        instant = bool(target.get("instant", False))
        targets.append(
            {
                "datasource": dict(datasource),
                "expr": expr.strip(),
                "instant": instant,
                "legendFormat": legend,
                "range": not instant,
                "refId": chr(ord("A") + index) if index < 26 else f"Q{index}",
            }
        )
    return targets


PANEL_KEYS = ("title", "kind", "expr", "legend", "targets", "unit", "thresholds", "width", "height",
              "description", "min", "max", "decimals")


def _panel_size(panel: dict, kind: str, field: str) -> tuple[int, int]:
    width, height = DEFAULT_PANEL_SIZE[kind]
    if kind == "row":
        return width, height
    width = panel.get("width", width)
    height = panel.get("height", height)
    if isinstance(width, bool) or not isinstance(width, int) or not 1 <= width <= GRID_COLUMNS:
        raise SpecError(f"{field}.width", f"must be an integer from 1 to {GRID_COLUMNS}, got {width!r}")
    if isinstance(height, bool) or not isinstance(height, int) or not 1 <= height <= 50:
        raise SpecError(f"{field}.height", f"must be an integer from 1 to 50, got {height!r}")
    return width, height


def _field_config(panel: dict, kind: str, field: str) -> dict:
    defaults: dict = {
        "unit": _check_unit(panel.get("unit", "short"), f"{field}.unit"),
        "thresholds": {"mode": "absolute", "steps": _threshold_steps(panel.get("thresholds"), f"{field}.thresholds")},
        "color": {"mode": "thresholds" if kind in ("stat", "gauge") else "palette-classic"},
    }
    for bound in ("min", "max", "decimals"):
        if panel.get(bound) is not None:
            defaults[bound] = _check_number(panel[bound], f"{field}.{bound}")
    if kind == "timeseries":
        # A threshold on a time series is an SLO or a limit: draw it as a line.
        line = "line" if panel.get("thresholds") else "off"
        defaults["custom"] = {"drawStyle": "line", "fillOpacity": 10, "lineWidth": 1,
                              "showPoints": "never", "spanNulls": False,
                              "thresholdsStyle": {"mode": line}}
    return {"defaults": defaults, "overrides": []}


def _panel_options(kind: str) -> dict:
    if kind == "timeseries":
        return {"legend": {"calcs": [], "displayMode": "list", "placement": "bottom", "showLegend": True},
                "tooltip": {"mode": "multi", "sort": "desc"}}
    reduce = {"calcs": ["lastNotNull"], "fields": "", "values": False}
    if kind == "stat":
        return {"colorMode": "value", "graphMode": "area", "justifyMode": "auto", "orientation": "auto",
                "reduceOptions": reduce, "textMode": "auto"}
    return {"orientation": "auto", "reduceOptions": reduce, "showThresholdLabels": False,
            "showThresholdMarkers": True}


def _variable(spec, index: int, datasource: dict) -> dict:
    field = f"variables[{index}]"
    if not isinstance(spec, dict):
        raise SpecError(field, "must be a mapping with name and query")
    unknown = sorted(set(spec) - {"name", "label", "query", "multi", "include_all"})
    if unknown:
        raise SpecError(f"{field}.{unknown[0]}", "unknown key; accepted: name, label, query, multi, include_all")
    name = _require_text(spec.get("name"), f"{field}.name")
    if not _VARIABLE_NAME_PATTERN.fullmatch(name) or name.startswith("__"):
        raise SpecError(f"{field}.name", f"{name!r} is not a valid variable name (letters, digits, _; not __*)")
    query = _require_text(spec.get("query"), f"{field}.query")
    include_all = bool(spec.get("include_all", False))
    variable = {
        "current": {},
        "datasource": dict(datasource),
        "definition": query,
        "hide": 0,
        "includeAll": include_all,
        "label": spec.get("label") or name,
        "multi": bool(spec.get("multi", False)),
        "name": name,
        "options": [],
        "query": {"query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
        # 2: refresh the values when the time range changes, so new models and nodes appear.
        "refresh": 2,
        "regex": "",
        "sort": 1,
        "type": "query",
    }
    if include_all:
        variable["allValue"] = ".*"
    return variable


def build_dashboard(
    title: str,
    panels: list,
    uid: str | None = None,
    datasource_uid: str = "prometheus",
    variables: list | None = None,
    tags: list | None = None,
    refresh: str = "30s",
    time_from: str = "now-6h",
) -> dict:
    """A complete Grafana dashboard model from a compact panel spec.

    Panel ids follow the spec order and grid positions follow a fixed flow layout, so the same
    spec always yields the same dashboard: re-runs are byte-identical.
    """
    _require_text(title, "title")
    uid = uid or slugify(title)
    if not _UID_PATTERN.fullmatch(uid):
        raise SpecError("uid", f"{uid!r} must be 1-40 characters of letters, digits, '-' or '_'")
    _require_text(datasource_uid, "datasource_uid")
    datasource = {"type": "prometheus", "uid": datasource_uid}
    if not isinstance(panels, list) or not panels:
        raise SpecError("panels", "must be a non-empty list of panel specs")

    templating = [_variable(spec, index, datasource) for index, spec in enumerate(variables or [])]
    names = [variable["name"] for variable in templating]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise SpecError("variables", f"duplicate variable name {duplicates[0]!r}")

    built = []
    x = y = line_height = 0
    for index, panel in enumerate(panels):
        field = f"panels[{index}]"
        if not isinstance(panel, dict):
            raise SpecError(field, "must be a mapping")
        unknown = sorted(set(panel) - set(PANEL_KEYS))
        if unknown:
            raise SpecError(f"{field}.{unknown[0]}", f"unknown key; accepted: {', '.join(PANEL_KEYS)}")
        kind = panel.get("kind", "timeseries")
        if kind not in PANEL_KINDS:
            raise SpecError(f"{field}.kind", f"unknown panel kind {kind!r}; accepted: {', '.join(PANEL_KINDS)}")
        panel_title = _require_text(panel.get("title"), f"{field}.title")
        width, height = _panel_size(panel, kind, field)
        # Flow layout: left to right, wrapping at 24 columns; a row always starts a new line.
        if kind == "row" or x + width > GRID_COLUMNS:
            if x > 0:
                y += line_height
            x = line_height = 0
        grid = {"h": height, "w": width, "x": x, "y": y}
        x += width
        line_height = max(line_height, height)
        if kind == "row":
            if set(panel) - {"title", "kind"}:
                extra = sorted(set(panel) - {"title", "kind"})[0]
                raise SpecError(f"{field}.{extra}", "a row takes only title and kind")
            built.append({"collapsed": False, "gridPos": grid, "id": index + 1, "panels": [],
                          "title": panel_title, "type": "row"})
            y += height
            x = line_height = 0
            continue
        entry = {
            "datasource": dict(datasource),
            "fieldConfig": _field_config(panel, kind, field),
            "gridPos": grid,
            "id": index + 1,
            "options": _panel_options(kind),
            "targets": _targets(panel, field, datasource, set(names)),
            "title": panel_title,
            "type": kind,
        }
        if panel.get("description"):
            entry["description"] = _require_text(panel["description"], f"{field}.description")
        built.append(entry)

    if tags is not None and (not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags)):
        raise SpecError("tags", "must be a list of strings")
    return {
        "annotations": {"list": []},
        "editable": False,
        "graphTooltip": 1,
        "id": None,
        "links": [],
        "panels": built,
        "refresh": _require_text(refresh, "refresh"),
        "schemaVersion": DASHBOARD_SCHEMA_VERSION,
        "tags": list(tags or []),
        "templating": {"list": templating},
        "time": {"from": _require_text(time_from, "time_from"), "to": "now"},
        "timepicker": {},
        "timezone": "browser",
        "title": title,
        "uid": uid,
        "version": 1,
    }


def render_dashboard(dashboard: dict) -> str:
    """Canonical text of a dashboard: sorted keys, fixed indentation, trailing newline."""
    return json.dumps(dashboard, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def dashboard_expressions(dashboard: dict) -> list[str]:
    """Every PromQL expression a dashboard runs: panel targets, then variable queries."""
    expressions = [target["expr"] for panel in dashboard.get("panels", []) for target in panel.get("targets", [])]
    expressions += [variable["definition"] for variable in dashboard.get("templating", {}).get("list", [])]
    return expressions


# --------------------------------------------------------------------------- datasources


def build_datasource_document(
    name: str,
    url: str | None,
    uid: str | None = None,
    datasource_type: str = "prometheus",
    access: str = "proxy",
    is_default: bool = True,
    basic_auth_user: str | None = None,
    basic_auth_password: str | None = None,
    json_data: dict | None = None,
    secure_json_data: dict | None = None,
    state: str = "present",
    org_id: int = 1,
) -> dict:
    """Grafana's datasource provisioning document (apiVersion 1) for one datasource."""
    _require_text(name, "name")
    if state == "absent":
        # Removing the file would leave the datasource in Grafana's database; this deletes it.
        return {"apiVersion": 1, "deleteDatasources": [{"name": name, "orgId": org_id}]}
    if state != "present":
        raise SpecError("state", f"unknown state {state!r}; accepted: present, absent")
    if not isinstance(url, str) or not _URL_PATTERN.match(url):
        raise SpecError("url", f"must be an http:// or https:// URL, got {url!r}")
    if access not in ("proxy", "direct"):
        raise SpecError("access", f"unknown access {access!r}; accepted: proxy, direct")
    uid = uid or slugify(name)
    if not _UID_PATTERN.fullmatch(uid):
        raise SpecError("uid", f"{uid!r} must be 1-40 characters of letters, digits, '-' or '_'")
    secure = dict(secure_json_data or {})
    entry = {
        "name": name,
        "type": _require_text(datasource_type, "type"),
        "uid": uid,
        "orgId": org_id,
        "access": access,
        "url": url,
        "isDefault": bool(is_default),
        # Provisioned datasources are owned by this file; edits in the UI would be lost on restart.
        "editable": False,
        "version": 1,
    }
    if basic_auth_user:
        if not basic_auth_password:
            raise SpecError("basic_auth_password", "is required when basic_auth_user is set")
        entry["basicAuth"] = True
        entry["basicAuthUser"] = basic_auth_user
        secure["basicAuthPassword"] = basic_auth_password
    elif basic_auth_password:
        raise SpecError("basic_auth_user", "is required when basic_auth_password is set")
    entry["jsonData"] = dict(sorted((json_data or {}).items()))
    if secure:
        for key, value in secure.items():
            if not isinstance(value, str) or not value:
                raise SpecError(f"secure_json_data.{key}", "must be a non-empty string")
        entry["secureJsonData"] = dict(sorted(secure.items()))
    return {"apiVersion": 1, "datasources": [entry]}


def mask_secrets(text: str) -> str:
    """Datasource YAML with every value under secureJsonData (and any password key) masked."""
    masked = []
    secure_indent = None
    for line in text.splitlines():
        stripped = line.lstrip(" -")
        indent = len(line) - len(stripped)
        if secure_indent is not None and stripped and indent <= secure_indent:
            secure_indent = None
        key, separator, value = stripped.partition(":")
        if key.strip() == "secureJsonData" and not value.strip():
            secure_indent = indent
        elif separator and value.strip() and (secure_indent is not None or "password" in key.lower()):
            line = line[: len(line) - len(stripped)] + f"{key}: {yaml_text.quote(SECRET_MASK)}"
        masked.append(line)
    return "\n".join(masked) + ("\n" if text.endswith("\n") else "")


# --------------------------------------------------------------------------- files


def _ensure_provisioning_file(path: str, content: str | None, check_mode: bool, **options) -> dict:
    """managed_file.ensure_file, failing on a missing directory with the field that names it."""
    directory = os.path.dirname(os.path.abspath(path))
    # In check mode an earlier task may only have reported that it would create the directory.
    if content is not None and not os.path.isdir(directory) and not check_mode:
        raise SpecError("dest", f"directory {directory} does not exist")
    return ensure_file(path, content, check_mode, **options)


def provision_dashboard(params: dict, check_mode: bool) -> dict:
    """The grafana_dashboard module's work: build, compare, write; returns the module result."""
    dest_dir = _require_text(params.get("dest_dir"), "dest_dir")
    title = _require_text(params.get("title"), "title")
    uid = params.get("uid") or slugify(title)
    path = os.path.join(dest_dir, f"{uid}.json")
    if params.get("state", "present") == "absent":
        content = None
    else:
        dashboard = build_dashboard(
            title=title,
            panels=params.get("panels"),
            uid=uid,
            datasource_uid=params.get("datasource_uid") or "prometheus",
            variables=params.get("variables"),
            tags=params.get("tags"),
            refresh=params.get("refresh") or "30s",
            time_from=params.get("time_from") or "now-6h",
        )
        content = render_dashboard(dashboard)
    result = _ensure_provisioning_file(path, content, check_mode)
    result.update(path=path, uid=uid)
    if content is not None:
        result["panel_count"] = sum(1 for panel in dashboard["panels"] if panel["type"] != "row")
        result["expressions"] = dashboard_expressions(dashboard)
    return result


def provision_datasource(params: dict, check_mode: bool) -> dict:
    """The grafana_datasource module's work: build, compare, write; returns the module result."""
    dest = _require_text(params.get("dest"), "dest")
    document = build_datasource_document(
        name=params.get("name"),
        url=params.get("url"),
        uid=params.get("uid"),
        datasource_type=params.get("type") or "prometheus",
        access=params.get("access") or "proxy",
        is_default=params.get("is_default", True),
        basic_auth_user=params.get("basic_auth_user"),
        basic_auth_password=params.get("basic_auth_password"),
        json_data=copy.deepcopy(params.get("json_data")),
        secure_json_data=copy.deepcopy(params.get("secure_json_data")),
        state=params.get("state", "present"),
    )
    # 0640 until the module applies owner, group and mode: the file holds secrets.
    result = _ensure_provisioning_file(
        dest, yaml_text.dump(document, default=str), check_mode, diff_view=mask_secrets, new_file_mode=0o640
    )
    if result["changed"] and result["diff"]["before"] == result["diff"]["after"]:
        # Only a masked secret differs: say so rather than show an empty diff.
        result["diff"]["after_header"] = f"{dest} (a secret value changed)"
        result["diff"]["after"] += "# a secret value changed (values are not shown)\n"
    result["path"] = dest
    if "datasources" in document:
        result["uid"] = document["datasources"][0]["uid"]
    return result
