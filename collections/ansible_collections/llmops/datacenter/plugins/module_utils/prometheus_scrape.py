# Copyright: llmops maintainers
# Apache-2.0 (see galaxy.yml)
"""Build prometheus.yml from structured scrape jobs, rejecting malformed targets by field name.

Runs on the target host: standard library only.
"""

from __future__ import annotations

import ipaddress
import re

from ansible_collections.llmops.datacenter.plugins.module_utils.prometheus_files import (
    PrometheusFileError,
    dump_yaml,
)

TARGET_FORMAT = "host:port (a DNS name, an IPv4 address or a [bracketed IPv6] address, and a port 1-65535)"
DURATION_FORMAT = "a Prometheus duration such as 15s, 1m or 1h30m"
LABEL_NAME_FORMAT = "a label name matching [a-zA-Z_][a-zA-Z0-9_]*"
SCHEMES = ("http", "https")

_HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)*$")
_DURATION = re.compile(r"^((\d+)(ms|s|m|h|d|w|y))+$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_JOB_OPTIONS = {
    "job_name",
    "targets",
    "target_groups",
    "labels",
    "metrics_path",
    "scheme",
    "scrape_interval",
    "scrape_timeout",
    "honor_labels",
    "basic_auth",
    "tls_config",
}


def validate_target(target, field):
    """Raise naming ``field`` unless ``target`` is host:port."""
    if not isinstance(target, str) or ":" not in target:
        raise PrometheusFileError(f"{field}: {target!r} is not a valid scrape target; accepted format: {TARGET_FORMAT}")
    host, _, port = target.rpartition(":")
    valid_port = port.isdigit() and 1 <= int(port) <= 65535
    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1])
            valid_host = True
        except ValueError:
            valid_host = False
    else:
        valid_host = bool(_HOSTNAME.match(host))
    if not (valid_port and valid_host):
        raise PrometheusFileError(f"{field}: {target!r} is not a valid scrape target; accepted format: {TARGET_FORMAT}")


def _validate_duration(value, field):
    if value is not None and not _DURATION.match(str(value)):
        raise PrometheusFileError(f"{field}: {value!r} is not {DURATION_FORMAT}")


def _validate_labels(labels, field):
    if labels is None:
        return {}
    if not isinstance(labels, dict):
        raise PrometheusFileError(f"{field}: expected a mapping of label names to values")
    for name, value in labels.items():
        if not _LABEL_NAME.match(str(name)) or str(name).startswith("__"):
            raise PrometheusFileError(f"{field}: {name!r} is not {LABEL_NAME_FORMAT} (and not reserved __*)")
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise PrometheusFileError(f"{field}.{name}: label values must be strings")
    return {str(name): str(value) for name, value in labels.items()}


def _target_group(targets, labels, field):
    if not isinstance(targets, list):
        raise PrometheusFileError(f"{field}.targets: expected a list of {TARGET_FORMAT}")
    for index, target in enumerate(targets):
        validate_target(target, f"{field}.targets[{index}]")
    group = {"targets": list(targets)}
    if labels:
        group["labels"] = labels
    return group


def _job_name_and_intervals(job, field):
    """The start of every scrape job: its name and the intervals it overrides, checked."""
    name = job.get("job_name")
    if not isinstance(name, str) or not name.strip():
        raise PrometheusFileError(f"{field}.job_name: a non-empty string is required")
    rendered = {"job_name": name}
    for option in ("scrape_interval", "scrape_timeout"):
        _validate_duration(job.get(option), f"{field}.{option}")
        if job.get(option) is not None:
            rendered[option] = str(job[option])
    return rendered


def build_scrape_job(job, field):
    """One scrape_configs entry from a job description; raises naming the bad field."""
    if not isinstance(job, dict):
        raise PrometheusFileError(f"{field}: expected a mapping with job_name and targets")
    unknown = sorted(set(job) - _JOB_OPTIONS)
    if unknown:
        raise PrometheusFileError(f"{field}: unknown option(s) {', '.join(unknown)}; accepted: {', '.join(sorted(_JOB_OPTIONS))}")
    rendered = _job_name_and_intervals(job, field)
    if job.get("metrics_path") is not None:
        if not str(job["metrics_path"]).startswith("/"):
            raise PrometheusFileError(f"{field}.metrics_path: {job['metrics_path']!r} must start with /")
        rendered["metrics_path"] = str(job["metrics_path"])
    if job.get("scheme") is not None:
        if job["scheme"] not in SCHEMES:
            raise PrometheusFileError(f"{field}.scheme: {job['scheme']!r} is not one of {', '.join(SCHEMES)}")
        rendered["scheme"] = job["scheme"]
    if job.get("honor_labels") is not None:
        rendered["honor_labels"] = bool(job["honor_labels"])
    if job.get("basic_auth"):
        auth = job["basic_auth"]
        if not auth.get("username") or not auth.get("password_file"):
            raise PrometheusFileError(f"{field}.basic_auth: username and password_file are both required")
        rendered["basic_auth"] = {"username": str(auth["username"]), "password_file": str(auth["password_file"])}
    if job.get("tls_config"):
        tls = {key: value for key, value in job["tls_config"].items() if value is not None}
        accepted = {"ca_file", "server_name", "insecure_skip_verify"}
        if set(tls) - accepted:
            raise PrometheusFileError(f"{field}.tls_config: accepted keys are {', '.join(sorted(accepted))}")
        rendered["tls_config"] = tls

    shared_labels = _validate_labels(job.get("labels"), f"{field}.labels")
    groups = []
    if job.get("targets"):
        groups.append(_target_group(job["targets"], shared_labels, field))
    for index, group in enumerate(job.get("target_groups") or []):
        group_field = f"{field}.target_groups[{index}]"
        labels = dict(shared_labels)
        labels.update(_validate_labels(group.get("labels"), f"{group_field}.labels"))
        groups.append(_target_group(group.get("targets"), labels, group_field))
    if groups:
        rendered["static_configs"] = groups
    return rendered


def model_server_job(model_server_targets, job_name, metrics_path, field="model_server_targets"):
    """A scrape job for model servers, shaped after what a placement plan produces.

    Each entry is ``{model, targets, labels}``; the model name becomes the ``model`` label so rules
    and dashboards select one model's replicas without knowing their addresses.
    """
    groups = []
    for index, entry in enumerate(model_server_targets):
        entry_field = f"{field}[{index}]"
        model = entry.get("model")
        if not isinstance(model, str) or not model:
            raise PrometheusFileError(f"{entry_field}.model: a non-empty model name is required")
        targets = entry.get("targets")
        if not isinstance(targets, list) or not targets:
            raise PrometheusFileError(f"{entry_field}.targets: a non-empty list of {TARGET_FORMAT} is required")
        for target_index, target in enumerate(targets):
            validate_target(target, f"{entry_field}.targets[{target_index}]")
        labels = _validate_labels(entry.get("labels"), f"{entry_field}.labels")
        labels["model"] = model
        groups.append({"targets": targets, "labels": labels})
    return {"job_name": job_name, "metrics_path": metrics_path, "target_groups": groups}


_POD_JOB_OPTIONS = ("job_name", "targets_file", "metrics_path", "scrape_interval", "scrape_timeout")


def _given_options(entry, accepted, field, expected):
    """The options set in a mapping (None means unset); raises naming unknown ones and the accepted."""
    if not isinstance(entry, dict):
        raise PrometheusFileError(f"{field}: expected a mapping with {expected}")
    entry = {key: value for key, value in entry.items() if value is not None}
    unknown = sorted(set(entry) - set(accepted))
    if unknown:
        raise PrometheusFileError(f"{field}: unknown option(s) {', '.join(unknown)}; accepted: {', '.join(accepted)}")
    return entry


def kubernetes_pod_job(job, field):
    """A scrape job for model-server pods, from the targets file kubernetes_pod_targets keeps.

    Prometheus as Debian builds it has no Kubernetes discovery; the pods reach it through file
    discovery instead, already filtered (serving pods, the model server's named port) and labelled
    model, tenant, pool, workload, plan, namespace, pod and node. Prometheus watches the file, so
    pods that come and go need no reload.
    """
    job = _given_options(job, _POD_JOB_OPTIONS, field, "job_name and targets_file")
    rendered = _job_name_and_intervals(job, field)
    targets_file = job.get("targets_file")
    if not isinstance(targets_file, str) or not targets_file.startswith("/") or not targets_file.endswith(".json"):
        raise PrometheusFileError(f"{field}.targets_file: {targets_file!r} must be an absolute path ending in .json")
    metrics_path = str(job.get("metrics_path", "/metrics"))
    if not metrics_path.startswith("/"):
        raise PrometheusFileError(f"{field}.metrics_path: {metrics_path!r} must start with /")
    rendered["metrics_path"] = metrics_path
    rendered["file_sd_configs"] = [{"files": [targets_file]}]
    return rendered


_ALERTMANAGER_OPTIONS = ("targets", "scheme", "path_prefix", "timeout", "basic_auth", "tls_config")


def build_alerting(alerting, field="alerting"):
    """The ``alerting`` section: where Prometheus sends firing alerts. Empty input, no section."""
    if not alerting:
        return {}
    if not isinstance(alerting, dict) or set(alerting) - {"alertmanagers"}:
        raise PrometheusFileError(f"{field}: expected a mapping with alertmanagers")
    alertmanagers = []
    for index, entry in enumerate(alerting.get("alertmanagers") or []):
        entry_field = f"{field}.alertmanagers[{index}]"
        entry = _given_options(entry, _ALERTMANAGER_OPTIONS, entry_field, "targets")
        targets = entry.get("targets")
        if not isinstance(targets, list) or not targets:
            raise PrometheusFileError(f"{entry_field}.targets: a non-empty list of {TARGET_FORMAT} is required")
        for target_index, target in enumerate(targets):
            validate_target(target, f"{entry_field}.targets[{target_index}]")
        # Reuse the scrape job checks for scheme, basic_auth and tls_config: the same Prometheus client settings.
        common = {key: entry[key] for key in ("scheme", "basic_auth", "tls_config") if key in entry}
        rendered = build_scrape_job({"job_name": "alertmanager", **common}, entry_field)
        del rendered["job_name"]
        if entry.get("path_prefix") is not None:
            if not str(entry["path_prefix"]).startswith("/"):
                raise PrometheusFileError(f"{entry_field}.path_prefix: {entry['path_prefix']!r} must start with /")
            rendered["path_prefix"] = str(entry["path_prefix"])
        _validate_duration(entry.get("timeout"), f"{entry_field}.timeout")
        if entry.get("timeout") is not None:
            rendered["timeout"] = str(entry["timeout"])
        rendered["static_configs"] = [{"targets": list(targets)}]
        alertmanagers.append(rendered)
    return {"alertmanagers": alertmanagers} if alertmanagers else {}


def build_config(
    global_config,
    rule_files,
    scrape_jobs,
    model_server_targets=None,
    model_server_job_name="model-servers",
    model_server_metrics_path="/metrics",
    alerting=None,
    kubernetes_pod_jobs=None,
):
    """The whole prometheus.yml text."""
    rendered_global = {}
    for option in ("scrape_interval", "scrape_timeout", "evaluation_interval"):
        value = (global_config or {}).get(option)
        _validate_duration(value, f"global_config.{option}")
        if value is not None:
            rendered_global[option] = str(value)
    external_labels = _validate_labels((global_config or {}).get("external_labels"), "global_config.external_labels")
    if external_labels:
        rendered_global["external_labels"] = external_labels

    jobs = list(scrape_jobs or [])
    fields = [f"scrape_jobs[{index}]" for index in range(len(jobs))]
    if model_server_targets:
        jobs.append(model_server_job(model_server_targets, model_server_job_name, model_server_metrics_path))
        fields.append("model_server_targets")
    built = [(build_scrape_job(job, field), field) for job, field in zip(jobs, fields, strict=True)]
    built += [
        (kubernetes_pod_job(job, f"kubernetes_pod_jobs[{index}]"), f"kubernetes_pod_jobs[{index}]")
        for index, job in enumerate(kubernetes_pod_jobs or [])
    ]
    rendered_jobs = []
    seen = {}
    for rendered, field in built:
        if rendered["job_name"] in seen:
            raise PrometheusFileError(
                f"{field}.job_name: {rendered['job_name']!r} is already used by {seen[rendered['job_name']]}; job names must be unique"
            )
        seen[rendered["job_name"]] = field
        rendered_jobs.append(rendered)

    config = {}
    if rendered_global:
        config["global"] = rendered_global
    rendered_alerting = build_alerting(alerting)
    if rendered_alerting:
        config["alerting"] = rendered_alerting
    if rule_files:
        config["rule_files"] = [str(path) for path in rule_files]
    config["scrape_configs"] = rendered_jobs
    return "# Managed by llmops.datacenter.prometheus_config: local edits are overwritten.\n" + dump_yaml(config)
