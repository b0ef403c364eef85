#!/usr/bin/python
# Copyright: llmops maintainers
# Apache-2.0 (see galaxy.yml)

DOCUMENTATION = r"""
module: prometheus_config
short_description: Write prometheus.yml from structured scrape jobs, checked by promtool first
version_added: 0.1.0
description:
  - Renders a Prometheus configuration from scrape jobs with static targets, and from model-server
    targets shaped like a placement plan's output.
  - Every target must be C(host:port); a malformed target fails naming the field and the accepted format.
  - The rendered file is checked with C(promtool check config) on a candidate copy next to the live file,
    so rule files referenced by C(rule_files) are checked too, and only an accepted file replaces the live one.
  - Writes only when the content differs; reload Prometheus from a handler when C(changed).
extends_documentation_fragment:
  - llmops.datacenter.prometheus_file
  - ansible.builtin.files
options:
  global_config:
    description: The C(global) section.
    type: dict
    default: {}
    suboptions:
      scrape_interval:
        description: How often targets are scraped, a Prometheus duration.
        type: str
      scrape_timeout:
        description: Scrape timeout, a Prometheus duration.
        type: str
      evaluation_interval:
        description: How often rules are evaluated, a Prometheus duration.
        type: str
      external_labels:
        description: Labels added to every series and alert leaving this Prometheus.
        type: dict
  alerting:
    description:
      - The C(alerting) section, where Prometheus sends firing alerts. Empty, no section (alerts are only
        evaluated).
    type: dict
    default: {}
    suboptions:
      alertmanagers:
        description: Alertmanager groups; Prometheus sends every alert to every target.
        type: list
        elements: dict
        suboptions:
          targets:
            description: Alertmanagers as C(host:port).
            type: list
            elements: str
            required: true
          scheme:
            description: C(http) or C(https).
            type: str
          path_prefix:
            description: Path prefix of Alertmanager's API (its C(--web.route-prefix)), starting with C(/).
            type: str
          timeout:
            description: Timeout for sending alerts, a Prometheus duration.
            type: str
          basic_auth:
            description: C({username, password_file}); the password stays in a file, never in the config.
            type: dict
          tls_config:
            description: C({ca_file, server_name, insecure_skip_verify}).
            type: dict
  rule_files:
    description: Rule file paths or globs, relative to the config file's directory or absolute.
    type: list
    elements: str
    default: []
  scrape_jobs:
    description: Scrape jobs with static targets.
    type: list
    elements: dict
    default: []
    suboptions:
      job_name:
        description: Unique job name; becomes the C(job) label.
        type: str
        required: true
      targets:
        description: Targets as C(host:port).
        type: list
        elements: str
      target_groups:
        description: Further targets with their own labels, each C({targets, labels}).
        type: list
        elements: dict
      labels:
        description: Labels added to every target of the job.
        type: dict
      metrics_path:
        description: HTTP path of the metrics endpoint.
        type: str
      scheme:
        description: C(http) or C(https).
        type: str
      scrape_interval:
        description: Overrides the global scrape interval.
        type: str
      scrape_timeout:
        description: Overrides the global scrape timeout.
        type: str
      honor_labels:
        description: Keep the target's own labels on conflict.
        type: bool
      basic_auth:
        description: C({username, password_file}); the password stays in a file, never in the config.
        type: dict
      tls_config:
        description: C({ca_file, server_name, insecure_skip_verify}).
        type: dict
  model_server_targets:
    description:
      - Model-server replicas, one entry per model, as the placement plan lists them.
      - Each entry is C({model, targets, labels}); the model becomes the C(model) label of its targets.
    type: list
    elements: dict
    default: []
  model_server_job_name:
    description: Job name for the model-server targets.
    type: str
    default: model-servers
  model_server_metrics_path:
    description: Metrics path of the model servers (vLLM serves C(/metrics)).
    type: str
    default: /metrics
  kubernetes_pod_jobs:
    description:
      - Scrape jobs for model-server pods of a Kubernetes cluster, scraped at their pod IPs (the Prometheus
        host needs a route to the pod network).
      - The targets come from a file discovery file (C(file_sd_configs)) that the collection's
        C(kubernetes_pod_targets) program keeps from the API server, already filtered to serving pods and
        their model server port and labelled C(model), C(tenant), C(pool), C(workload), C(plan),
        C(namespace), C(pod) and C(node); the prometheus role installs it (see docs/monitoring.md).
        Debian's Prometheus is built without Kubernetes discovery, so this works with every build.
      - Give a job the model servers' job name so the built-in serving rules (which select on C(model)) cover
        the pods as they cover host units.
    type: list
    elements: dict
    default: []
    suboptions:
      job_name:
        description: Unique job name; becomes the C(job) label.
        type: str
        required: true
      targets_file:
        description: The discovery file, an absolute path ending in C(.json); Prometheus watches it for changes.
        type: path
        required: true
      metrics_path:
        description: Metrics path of the model servers (vLLM serves C(/metrics) on its API port).
        type: str
        default: /metrics
      scrape_interval:
        description: Overrides the global scrape interval.
        type: str
      scrape_timeout:
        description: Overrides the global scrape timeout.
        type: str
author:
  - llmops maintainers
"""

EXAMPLES = r"""
- name: Scrape node exporters, DCGM exporters and the planned model servers
  llmops.datacenter.prometheus_config:
    path: /etc/prometheus/prometheus.yml
    promtool: /usr/bin/promtool
    owner: root
    group: prometheus
    mode: "0640"
    global_config:
      scrape_interval: 15s
      evaluation_interval: 15s
    rule_files:
      - /etc/prometheus/rules/*.rules.yml
    alerting:
      alertmanagers:
        - targets: [monitor-1.example.net:9093]
    scrape_jobs:
      - job_name: node
        targets: [gpu-1.example.net:9100, gpu-2.example.net:9100]
      - job_name: dcgm
        targets: [gpu-1.example.net:9400]
    model_server_targets:
      - model: llama-3-8b
        targets: [10.0.0.11:8000, 10.0.0.12:8000]
        labels:
          gpu_type: h100
  notify: Reload prometheus

- name: Scrape the model-server pods of a Kubernetes cluster, under the model servers' rules
  llmops.datacenter.prometheus_config:
    path: /etc/prometheus/prometheus.yml
    promtool: /usr/bin/promtool
    owner: root
    group: prometheus
    mode: "0640"
    rule_files:
      - /etc/prometheus/rules/*.rules.yml
    kubernetes_pod_jobs:
      - job_name: model-servers
        targets_file: /var/lib/prometheus/kubernetes-pods/model-servers.json
  notify: Reload prometheus
"""

RETURN = r"""
path:
  description: The configuration file.
  returned: always
  type: str
  sample: /etc/prometheus/prometheus.yml
diff:
  description: The file before and after, in diff mode.
  returned: when diff mode is on
  type: dict
  sample: {before: "", after: "scrape_configs: []\n"}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.llmops.datacenter.plugins.module_utils.prometheus_module import (
    FILE_OPTIONS,
    write_validated,
)
from ansible_collections.llmops.datacenter.plugins.module_utils.prometheus_scrape import build_config


def main():
    module = AnsibleModule(
        argument_spec={
            **FILE_OPTIONS,
            "global_config": {
                "type": "dict",
                "default": {},
                "options": {
                    "scrape_interval": {"type": "str"},
                    "scrape_timeout": {"type": "str"},
                    "evaluation_interval": {"type": "str"},
                    "external_labels": {"type": "dict"},
                },
            },
            "alerting": {
                "type": "dict",
                "default": {},
                "options": {
                    "alertmanagers": {
                        "type": "list",
                        "elements": "dict",
                        "options": {
                            "targets": {"type": "list", "elements": "str", "required": True},
                            "scheme": {"type": "str"},
                            "path_prefix": {"type": "str"},
                            "timeout": {"type": "str"},
                            "basic_auth": {"type": "dict"},
                            "tls_config": {"type": "dict"},
                        },
                    },
                },
            },
            "rule_files": {"type": "list", "elements": "str", "default": []},
            "scrape_jobs": {
                "type": "list",
                "elements": "dict",
                "default": [],
                "options": {
                    "job_name": {"type": "str", "required": True},
                    "targets": {"type": "list", "elements": "str"},
                    "target_groups": {"type": "list", "elements": "dict"},
                    "labels": {"type": "dict"},
                    "metrics_path": {"type": "str"},
                    "scheme": {"type": "str"},
                    "scrape_interval": {"type": "str"},
                    "scrape_timeout": {"type": "str"},
                    "honor_labels": {"type": "bool"},
                    "basic_auth": {"type": "dict"},
                    "tls_config": {"type": "dict"},
                },
            },
            "model_server_targets": {"type": "list", "elements": "dict", "default": []},
            "model_server_job_name": {"type": "str", "default": "model-servers"},
            "model_server_metrics_path": {"type": "str", "default": "/metrics"},
            "kubernetes_pod_jobs": {
                "type": "list",
                "elements": "dict",
                "default": [],
                "options": {
                    "job_name": {"type": "str", "required": True},
                    "targets_file": {"type": "path", "required": True},
                    "metrics_path": {"type": "str", "default": "/metrics"},
                    "scrape_interval": {"type": "str"},
                    "scrape_timeout": {"type": "str"},
                },
            },
        },
        add_file_common_args=True,
        supports_check_mode=True,
    )
    params = module.params
    # Options left unset arrive as None from the argument spec; the renderer skips those.
    jobs = [{key: value for key, value in job.items() if value is not None} for job in params["scrape_jobs"]]

    def render():
        return build_config(
            params["global_config"],
            params["rule_files"],
            jobs,
            params["model_server_targets"],
            params["model_server_job_name"],
            params["model_server_metrics_path"],
            params["alerting"],
            params["kubernetes_pod_jobs"],
        )

    write_validated(module, render, ["check", "config"])


if __name__ == "__main__":
    main()
