#!/usr/bin/python
# Copyright: llmops maintainers
# Apache-2.0 (see galaxy.yml)

DOCUMENTATION = r"""
module: prometheus_rules
short_description: Write a Prometheus rule file from structured rule groups, checked by promtool first
version_added: 0.1.0
description:
  - Renders recording and alerting rule groups, optionally starting with llmops' built-in groups for GPU
    health (NVIDIA DCGM exporter), model serving (vLLM TTFT/TPOT SLO burn, queue depth, KV-cache usage,
    aborts) and host health (node exporter).
  - Structural mistakes fail naming the group and rule; every expression is then checked by
    C(promtool check rules) on a candidate copy. A rejected file changes nothing on the host.
  - Writes only when the content differs; reload Prometheus from a handler when C(changed).
extends_documentation_fragment:
  - llmops.datacenter.prometheus_file
  - ansible.builtin.files
options:
  builtin_groups:
    description:
      - Built-in rule groups to include, before O(groups).
      - The metric names and thresholds live in the collection's C(monitoring_catalog) module_utils,
        which dashboards read too.
    type: list
    elements: str
    choices: [gpu_health, serving, host_health]
    default: []
  thresholds:
    description:
      - Overrides for the built-in groups' thresholds, by name (for example C(gpu_temperature_celsius),
        C(kv_cache_usage_ratio), C(requests_waiting), C(slo_fast_burn_rate), C(host_memory_available_ratio)).
      - An unknown name fails listing the accepted names.
    type: dict
    default: {}
  model_slos:
    description:
      - Per-model latency objectives for the built-in C(serving) group's burn-rate alerts.
      - Each entry is C({model, objective, ttft_seconds, tpot_seconds}); C(model) is vLLM's C(model_name) label,
        C(objective) the fraction of requests that must meet the latency (default 0.99), and each latency
        must be a bucket bound of vLLM's histogram (for example 0.5, 1.0, 2.5 for TTFT; 0.05, 0.1 for TPOT).
    type: list
    elements: dict
    default: []
  groups:
    description:
      - Further rule groups, each C({name, interval, rules}); each rule has C(record) or C(alert), C(expr),
        and for alerts optionally C(for), C(labels), C(annotations).
    type: list
    elements: dict
    default: []
author:
  - llmops maintainers
"""

EXAMPLES = r"""
- name: Alert on GPU faults, serving SLO burn and host health
  llmops.datacenter.prometheus_rules:
    path: /etc/prometheus/rules/llmops.rules.yml
    promtool: /usr/bin/promtool
    builtin_groups: [gpu_health, serving, host_health]
    thresholds:
      gpu_temperature_celsius: 83
    model_slos:
      - model: llama-3-8b
        objective: 0.99
        ttft_seconds: 1.0
        tpot_seconds: 0.1
    groups:
      - name: site
        rules:
          - alert: PrometheusConfigReloadFailed
            expr: prometheus_config_last_reload_successful == 0
            for: 5m
            labels:
              severity: warning
  notify: Reload prometheus
"""

RETURN = r"""
path:
  description: The rule file.
  returned: always
  type: str
  sample: /etc/prometheus/rules/llmops.rules.yml
diff:
  description: The file before and after, in diff mode.
  returned: when diff mode is on
  type: dict
  sample: {before: "", after: "groups: []\n"}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.llmops.datacenter.plugins.module_utils.monitoring_catalog import BUILTIN_GROUPS
from ansible_collections.llmops.datacenter.plugins.module_utils.prometheus_module import (
    FILE_OPTIONS,
    write_validated,
)
from ansible_collections.llmops.datacenter.plugins.module_utils.prometheus_rules import build_rules


def main():
    module = AnsibleModule(
        argument_spec={
            **FILE_OPTIONS,
            "builtin_groups": {"type": "list", "elements": "str", "choices": list(BUILTIN_GROUPS), "default": []},
            "thresholds": {"type": "dict", "default": {}},
            "model_slos": {"type": "list", "elements": "dict", "default": []},
            "groups": {"type": "list", "elements": "dict", "default": []},
        },
        add_file_common_args=True,
        supports_check_mode=True,
    )
    params = module.params

    def render():
        return build_rules(params["groups"], params["builtin_groups"], params["thresholds"], params["model_slos"])

    write_validated(module, render, ["check", "rules"])


if __name__ == "__main__":
    main()
