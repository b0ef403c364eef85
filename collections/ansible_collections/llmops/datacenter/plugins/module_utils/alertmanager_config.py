# Copyright: llmops maintainers
# Apache-2.0 (see galaxy.yml)
"""Build alertmanager.yml from structured routes and receivers; write it only after amtool accepts it.

Runs on the target host: standard library only. Structure is checked here so that a message names
the field (``route.routes[1].receiver``, ``receivers[0].email_configs[0].to``) and the accepted
values; what only Alertmanager knows (regular expressions in matchers, a missing SMTP smarthost,
template syntax) is left to ``amtool check-config`` on a candidate copy next to the live file. The
contract with the calling module is a ``run_command(argv) -> (rc, stdout, stderr)`` callable and a
``check_mode`` flag, so this code is tested without Ansible.

Secrets never enter the file: SMTP and HTTP passwords are given as ``*_file`` paths that only
Alertmanager's user reads, as Prometheus' own scrape configs do.
"""

from __future__ import annotations

import os
import re
from urllib.parse import urlsplit

from ansible_collections.llmops.datacenter.plugins.module_utils import yaml_text
from ansible_collections.llmops.datacenter.plugins.module_utils.managed_file import ensure_file

HEADER = "# Managed by llmops.datacenter.alertmanager_config: local edits are overwritten.\n"
DURATION_FORMAT = "a duration such as 30s, 5m or 4h"
MATCHER_FORMAT = 'a matcher such as severity="critical" (label name, then =, !=, =~ or !~, then the value)'
LABEL_NAME_FORMAT = "a label name matching [a-zA-Z_][a-zA-Z0-9_]*"
WEBHOOK_SCHEMES = ("http", "https")

_DURATION = re.compile(r"^((\d+)(ms|s|m|h|d|w|y))+$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_MATCHER = re.compile(r"^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*(.*)$", re.DOTALL)

GLOBAL_KEYS = (
    "resolve_timeout",
    "smtp_smarthost",
    "smtp_from",
    "smtp_hello",
    "smtp_auth_username",
    "smtp_auth_identity",
    "smtp_auth_password_file",
    "smtp_require_tls",
)
_GLOBAL_DURATIONS = ("resolve_timeout",)
_GLOBAL_BOOLS = ("smtp_require_tls",)
ROUTE_KEYS = ("receiver", "group_by", "group_wait", "group_interval", "repeat_interval", "matchers", "continue", "routes")
_ROUTE_DURATIONS = ("group_wait", "group_interval", "repeat_interval")
WEBHOOK_KEYS = ("url", "send_resolved", "max_alerts", "http_config")
EMAIL_KEYS = (
    "to",
    "from",
    "smarthost",
    "hello",
    "auth_username",
    "auth_identity",
    "auth_password_file",
    "require_tls",
    "send_resolved",
    "headers",
    "html",
    "text",
)
HTTP_CONFIG_KEYS = ("basic_auth", "authorization", "tls_config", "proxy_url", "follow_redirects", "enable_http2")
INHIBIT_KEYS = ("source_matchers", "target_matchers", "equal")
RECEIVER_KEYS = ("name", "webhook_configs", "email_configs")
# Inline secrets would land in a file many can read and in every diff; their *_file forms are accepted.
_INLINE_SECRETS = {
    "auth_password": "auth_password_file",
    "auth_secret": "auth_password_file",
    "smtp_auth_password": "smtp_auth_password_file",
    "smtp_auth_secret": "smtp_auth_password_file",
    "password": "password_file",
    "bearer_token": "bearer_token_file",
    "credentials": "credentials_file",
}


class AlertmanagerConfigError(Exception):
    """Bad input or a config amtool rejected; the message names the field or carries amtool's verdict."""


def _no_none(mapping):
    """Options an argument spec left unset arrive as None; they are simply not written."""
    return {key: value for key, value in mapping.items() if value is not None}


def _check_keys(mapping, accepted, field):
    if not isinstance(mapping, dict):
        raise AlertmanagerConfigError(f"{field}: expected a mapping with keys from: {', '.join(accepted)}")
    for key in mapping:
        if key in _INLINE_SECRETS:
            raise AlertmanagerConfigError(
                f"{field}.{key}: secrets are not written into alertmanager.yml; put it in a file only Alertmanager "
                f"reads and set {_INLINE_SECRETS[key]} instead"
            )
    unknown = sorted(str(key) for key in set(mapping) - set(accepted))
    if unknown:
        raise AlertmanagerConfigError(f"{field}: unknown key(s) {', '.join(unknown)}; accepted: {', '.join(accepted)}")


def _duration(value, field):
    if not _DURATION.match(str(value)):
        raise AlertmanagerConfigError(f"{field}: {value!r} is not {DURATION_FORMAT}")
    return str(value)


def _bool(value, field):
    if not isinstance(value, bool):
        raise AlertmanagerConfigError(f"{field}: {value!r} is not a boolean (true or false)")
    return value


def _string(value, field):
    if not isinstance(value, str) or not value.strip():
        raise AlertmanagerConfigError(f"{field}: a non-empty string is required")
    return value


def _string_list(value, field):
    if not isinstance(value, list):
        raise AlertmanagerConfigError(f"{field}: expected a list of strings")
    return [_string(item, f"{field}[{index}]") for index, item in enumerate(value)]


def _label_names(value, field, allow_all=False):
    names = _string_list(value, field)
    for index, name in enumerate(names):
        # "..." groups by every label, i.e. one notification per alert.
        if not (_LABEL_NAME.match(name) or (allow_all and name == "...")):
            accepted = f"{LABEL_NAME_FORMAT}{', or ...' if allow_all else ''}"
            raise AlertmanagerConfigError(f"{field}[{index}]: {name!r} is not {accepted}")
    return names


def _matchers(value, field, required=False):
    matchers = _string_list(value, field)
    if required and not matchers:
        raise AlertmanagerConfigError(f"{field}: at least one matcher is required")
    for index, matcher in enumerate(matchers):
        if not _MATCHER.match(matcher):
            raise AlertmanagerConfigError(f"{field}[{index}]: {matcher!r} is not {MATCHER_FORMAT}")
    return matchers


def _global(global_config):
    config = _no_none(global_config or {})
    _check_keys(config, GLOBAL_KEYS, "global_config")
    rendered = {}
    for key in GLOBAL_KEYS:
        if key not in config:
            continue
        field = f"global_config.{key}"
        if key in _GLOBAL_DURATIONS:
            rendered[key] = _duration(config[key], field)
        elif key in _GLOBAL_BOOLS:
            rendered[key] = _bool(config[key], field)
        else:
            rendered[key] = _string(config[key], field)
    return rendered


def _route(route, field, receivers, root):
    route = _no_none(route)
    _check_keys(route, ROUTE_KEYS, field)
    if root:
        if "receiver" not in route:
            raise AlertmanagerConfigError(f"{field}.receiver: the root route needs a receiver (the default for every alert)")
        for key in ("matchers", "continue"):
            if key in route:
                raise AlertmanagerConfigError(f"{field}.{key}: the root route matches every alert; set {key} on child routes")
    rendered = {}
    if "receiver" in route:
        name = _string(route["receiver"], f"{field}.receiver")
        if name not in receivers:
            raise AlertmanagerConfigError(
                f"{field}.receiver: {name!r} is not a defined receiver; defined: {', '.join(receivers) or 'none'}"
            )
        rendered["receiver"] = name
    if "matchers" in route:
        rendered["matchers"] = _matchers(route["matchers"], f"{field}.matchers")
    if "group_by" in route:
        rendered["group_by"] = _label_names(route["group_by"], f"{field}.group_by", allow_all=True)
    for key in _ROUTE_DURATIONS:
        if key in route:
            rendered[key] = _duration(route[key], f"{field}.{key}")
    if "continue" in route:
        rendered["continue"] = _bool(route["continue"], f"{field}.continue")
    if route.get("routes"):
        children = route["routes"]
        if not isinstance(children, list):
            raise AlertmanagerConfigError(f"{field}.routes: expected a list of routes")
        rendered["routes"] = [
            _route(child, f"{field}.routes[{index}]", receivers, root=False) for index, child in enumerate(children)
        ]
    return rendered


def _http_config(http_config, field):
    config = _no_none(http_config)
    _check_keys(config, HTTP_CONFIG_KEYS, field)
    for key in ("basic_auth", "authorization", "tls_config"):
        if key in config:
            if not isinstance(config[key], dict):
                raise AlertmanagerConfigError(f"{field}.{key}: expected a mapping")
            # Nested secrets too (basic_auth.password, authorization.credentials); amtool checks the rest.
            _check_keys(config[key], tuple(config[key]), f"{field}.{key}")
    return config


def _webhook(webhook, field):
    webhook = _no_none(webhook)
    _check_keys(webhook, WEBHOOK_KEYS, field)
    url = _string(webhook.get("url"), f"{field}.url")
    parts = urlsplit(url)
    if parts.scheme not in WEBHOOK_SCHEMES or not parts.netloc:
        raise AlertmanagerConfigError(f"{field}.url: {url!r} is not an absolute URL with scheme {' or '.join(WEBHOOK_SCHEMES)}")
    rendered = {"url": url}
    if "send_resolved" in webhook:
        rendered["send_resolved"] = _bool(webhook["send_resolved"], f"{field}.send_resolved")
    if "max_alerts" in webhook:
        value = webhook["max_alerts"]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise AlertmanagerConfigError(f"{field}.max_alerts: {value!r} must be a whole number >= 0 (0: no limit)")
        rendered["max_alerts"] = value
    if "http_config" in webhook:
        rendered["http_config"] = _http_config(webhook["http_config"], f"{field}.http_config")
    return rendered


def _email(email, field):
    email = _no_none(email)
    _check_keys(email, EMAIL_KEYS, field)
    rendered = {"to": _string(email.get("to"), f"{field}.to")}
    for key in EMAIL_KEYS[1:]:
        if key not in email:
            continue
        value, key_field = email[key], f"{field}.{key}"
        if key in ("require_tls", "send_resolved"):
            rendered[key] = _bool(value, key_field)
        elif key == "headers":
            if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
                raise AlertmanagerConfigError(f"{key_field}: expected a mapping of header names to strings")
            rendered[key] = {str(name): text for name, text in value.items()}
        else:
            rendered[key] = _string(value, key_field)
    return rendered


def _receivers(receivers):
    if not isinstance(receivers, list) or not receivers:
        raise AlertmanagerConfigError("receivers: at least one receiver is required (one with no configs discards alerts)")
    rendered, seen = [], {}
    for index, receiver in enumerate(receivers):
        field = f"receivers[{index}]"
        receiver = _no_none(receiver) if isinstance(receiver, dict) else receiver
        _check_keys(receiver, RECEIVER_KEYS, field)
        name = _string(receiver.get("name"), f"{field}.name")
        if name in seen:
            raise AlertmanagerConfigError(f"{field}.name: {name!r} is already used by {seen[name]}; receiver names must be unique")
        seen[name] = field
        entry = {"name": name}
        for key, build in (("webhook_configs", _webhook), ("email_configs", _email)):
            configs = receiver.get(key)
            if configs is None:
                continue
            if not isinstance(configs, list):
                raise AlertmanagerConfigError(f"{field}.{key}: expected a list")
            if configs:
                entry[key] = [build(config, f"{field}.{key}[{position}]") for position, config in enumerate(configs)]
        rendered.append(entry)
    return rendered


def _inhibit_rules(rules):
    if not isinstance(rules, list):
        raise AlertmanagerConfigError("inhibit_rules: expected a list")
    rendered = []
    for index, rule in enumerate(rules):
        field = f"inhibit_rules[{index}]"
        rule = _no_none(rule) if isinstance(rule, dict) else rule
        _check_keys(rule, INHIBIT_KEYS, field)
        entry = {
            "source_matchers": _matchers(rule.get("source_matchers", []), f"{field}.source_matchers", required=True),
            "target_matchers": _matchers(rule.get("target_matchers", []), f"{field}.target_matchers", required=True),
        }
        if rule.get("equal"):
            entry["equal"] = _label_names(rule["equal"], f"{field}.equal")
        rendered.append(entry)
    return rendered


def build_config(global_config, route, receivers, inhibit_rules=None, templates=None):
    """The whole alertmanager.yml text; raises AlertmanagerConfigError naming the first bad field."""
    rendered_receivers = _receivers(receivers)
    names = [receiver["name"] for receiver in rendered_receivers]
    config = {}
    rendered_global = _global(global_config)
    if rendered_global:
        config["global"] = rendered_global
    if templates:
        config["templates"] = _string_list(templates, "templates")
    if not isinstance(route, dict):
        raise AlertmanagerConfigError("route: expected a mapping with at least a receiver")
    config["route"] = _route(route, "route", names, root=True)
    inhibit = _inhibit_rules(inhibit_rules or [])
    if inhibit:
        config["inhibit_rules"] = inhibit
    config["receivers"] = rendered_receivers
    try:
        return HEADER + yaml_text.dump(config, ensure_ascii=True)
    except yaml_text.UnrepresentableValue as error:
        raise AlertmanagerConfigError(str(error)) from None


def apply_config(path, desired, run_command, check_mode, amtool=None):
    """Make ``path`` hold ``desired``, checked by ``amtool check-config`` first unless ``amtool`` is None.

    The candidate is written next to the live file, so relative template globs resolve the same way,
    and amtool runs in check mode too: a dry run reports a config that would be rejected. Returns
    ``{"changed", "diff", "path"}``; raises AlertmanagerConfigError when amtool rejects the candidate.
    """
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise AlertmanagerConfigError(f"path: directory {directory} does not exist; create it first")

    def validate(candidate):
        rc, stdout, stderr = run_command([amtool, "check-config", candidate])
        if rc != 0:
            verdict = "\n".join(text.strip() for text in (stdout, stderr) if text and text.strip())
            raise AlertmanagerConfigError(
                f"amtool check-config rejected the new {path}; the live file was not changed:\n"
                + verdict.replace(candidate, path)
            )

    result = ensure_file(path, desired, check_mode, validate=validate if amtool else None, new_file_mode=0o644)
    result["path"] = path
    return result
