# Copyright: llmops maintainers
# Apache-2.0 (see galaxy.yml)
"""Build a Prometheus rule file from structured rule groups; errors name the group and rule.

Runs on the target host: standard library only.
"""

from __future__ import annotations

import re

from ansible_collections.llmops.datacenter.plugins.module_utils.monitoring_catalog import builtin_rule_groups
from ansible_collections.llmops.datacenter.plugins.module_utils.prometheus_files import (
    PrometheusFileError,
    dump_yaml,
)

_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_DURATION = re.compile(r"^((\d+)(ms|s|m|h|d|w|y))+$")
_RULE_KEYS = {"record", "alert", "expr", "for", "labels", "annotations"}
_GROUP_KEYS = {"name", "interval", "rules"}


def _rule_name(rule, index):
    name = rule.get("alert") or rule.get("record") if isinstance(rule, dict) else None
    return f"rule {index} ({name})" if name else f"rule {index}"


def validate_group(group, field):
    """Raise naming the group and rule when a group is structurally wrong.

    Structure is checked here so the message can name the field; whether each expression is valid
    PromQL is left to ``promtool check rules``, which knows the language.
    """
    if not isinstance(group, dict):
        raise PrometheusFileError(f"{field}: expected a mapping with name and rules")
    name = group.get("name")
    if not isinstance(name, str) or not name:
        raise PrometheusFileError(f"{field}.name: a non-empty group name is required")
    where = f"group {name!r}"
    unknown = sorted(set(group) - _GROUP_KEYS)
    if unknown:
        raise PrometheusFileError(f"{where}: unknown key(s) {', '.join(unknown)}; accepted: {', '.join(sorted(_GROUP_KEYS))}")
    if group.get("interval") is not None and not _DURATION.match(str(group["interval"])):
        raise PrometheusFileError(f"{where}.interval: {group['interval']!r} is not a Prometheus duration such as 30s or 1m")
    rules = group.get("rules")
    if not isinstance(rules, list) or not rules:
        raise PrometheusFileError(f"{where}.rules: a non-empty list of rules is required")
    for rule_index, rule in enumerate(rules):
        rule_where = f"{where}, {_rule_name(rule, rule_index)}"
        if not isinstance(rule, dict):
            raise PrometheusFileError(f"{rule_where}: expected a mapping with record or alert, and expr")
        unknown = sorted(set(rule) - _RULE_KEYS)
        if unknown:
            raise PrometheusFileError(f"{rule_where}: unknown key(s) {', '.join(unknown)}; accepted: {', '.join(sorted(_RULE_KEYS))}")
        if bool(rule.get("record")) == bool(rule.get("alert")):
            raise PrometheusFileError(f"{rule_where}: set exactly one of record or alert")
        if rule.get("record") and not _METRIC_NAME.match(str(rule["record"])):
            raise PrometheusFileError(f"{rule_where}.record: {rule['record']!r} is not a metric name matching [a-zA-Z_:][a-zA-Z0-9_:]*")
        if not isinstance(rule.get("expr"), (str, int, float)) or str(rule.get("expr")).strip() == "":
            raise PrometheusFileError(f"{rule_where}.expr: a PromQL expression is required")
        if rule.get("record") and (rule.get("for") or rule.get("annotations")):
            raise PrometheusFileError(f"{rule_where}: for and annotations apply to alerts only")
        if rule.get("for") is not None and not _DURATION.match(str(rule["for"])):
            raise PrometheusFileError(f"{rule_where}.for: {rule['for']!r} is not a Prometheus duration such as 5m")
        for key in ("labels", "annotations"):
            mapping = rule.get(key) or {}
            if not isinstance(mapping, dict):
                raise PrometheusFileError(f"{rule_where}.{key}: expected a mapping of names to strings")
            for label in mapping:
                if not _LABEL_NAME.match(str(label)):
                    raise PrometheusFileError(f"{rule_where}.{key}: {label!r} is not a name matching [a-zA-Z_][a-zA-Z0-9_]*")


def _render_rule(rule):
    rendered = {}
    for key in ("record", "alert"):
        if rule.get(key):
            rendered[key] = str(rule[key])
    rendered["expr"] = str(rule["expr"])
    if rule.get("for") is not None:
        rendered["for"] = str(rule["for"])
    for key in ("labels", "annotations"):
        if rule.get(key):
            rendered[key] = {str(name): str(value) for name, value in rule[key].items()}
    return rendered


def build_rules(groups, builtin_groups=(), thresholds=None, model_slos=None):
    """The rule file text: the selected built-in groups first, then the caller's groups."""
    try:
        builtin = builtin_rule_groups(builtin_groups, thresholds, model_slos)
    except ValueError as error:
        raise PrometheusFileError(str(error)) from error
    fields = [f"builtin_groups[{index}]" for index in range(len(builtin))]
    fields += [f"groups[{index}]" for index in range(len(groups or []))]
    seen = set()
    rendered = []
    for group, field in zip(builtin + list(groups or []), fields, strict=True):
        validate_group(group, field)
        if group["name"] in seen:
            raise PrometheusFileError(f"group {group['name']!r}: group names must be unique in a rule file")
        seen.add(group["name"])
        entry = {"name": group["name"]}
        if group.get("interval") is not None:
            entry["interval"] = str(group["interval"])
        entry["rules"] = [_render_rule(rule) for rule in group["rules"]]
        rendered.append(entry)
    return "# Managed by llmops.datacenter.prometheus_rules: local edits are overwritten.\n" + dump_yaml(
        {"groups": rendered}
    )
