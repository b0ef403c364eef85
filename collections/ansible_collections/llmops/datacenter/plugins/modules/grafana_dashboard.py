#!/usr/bin/python
# Copyright: llmops contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
from __future__ import annotations

DOCUMENTATION = r"""
---
module: grafana_dashboard
short_description: Write a Grafana dashboard, built from a compact panel spec, into a provisioning directory
version_added: "0.1.0"
description:
  - Builds a complete Grafana dashboard JSON model from a short list of panels (title, PromQL
    expressions, unit, kind, thresholds) and writes it as C(<uid>.json) into O(dest_dir), the
    directory a Grafana file provider (C(provisioning/dashboards/*.yaml)) reads.
  - Panel ids follow the order of O(panels) and grid positions follow a fixed flow layout
    (left to right over 24 columns, wrapping; a row starts a new line), so the same spec always
    yields a byte-identical file. The file is replaced atomically and only when its content
    differs, so a second run reports C(changed=false).
  - File provisioning rather than Grafana's HTTP API, so the result is idempotent, works before
    Grafana is installed or started, and is picked up by Grafana at start and by its provider's
    periodic rescan.
  - "Invalid input fails naming the field and the accepted values, for example
    C(panels[3].kind: unknown panel kind 'graph'; accepted: timeseries, stat, gauge, row), and
    writes nothing."
author:
  - llmops contributors
attributes:
  check_mode:
    support: full
    description: Builds and validates the dashboard and reports whether the file would change, without writing it.
  diff_mode:
    support: full
    description: Returns the dashboard file's text before and after.
  platform:
    platforms: posix
options:
  dest_dir:
    description:
      - Directory the dashboard file is written to; it must exist.
      - Use the O(options.path) directory of a Grafana dashboard provider.
    type: path
    required: true
  title:
    description: Dashboard title.
    type: str
    required: true
  uid:
    description:
      - Dashboard uid (1-40 letters, digits, C(-), C(_)); also the file name, C(<uid>.json).
      - Defaults to the title in lowercase with dashes, cut to 40 characters.
    type: str
  panels:
    description:
      - The panels in display order. Required when O(state=present).
      - "Keys: C(title) (required); C(kind): one of C(timeseries) (default), C(stat), C(gauge), C(row)
        (a row takes only C(title) and C(kind)); C(expr) (one PromQL expression) and optional C(legend), or
        C(targets), a list of C({expr, legend, instant}); C(unit), a Grafana unit id (C(none), C(short), C(percent),
        C(percentunit), C(bytes), C(decbytes), C(mbytes), C(decmbytes), C(celsius), C(watt), C(kwatt),
        C(s), C(ms), C(reqps), C(ops)) or C(suffix:<text>) / C(prefix:<text>); C(thresholds), an
        ascending list of C({value, color}) (drawn as lines on time series, e.g. an SLO);
        C(width) (1-24) and C(height) (1-50) in grid units; C(min), C(max), C(decimals), C(description)."
      - Expressions may use the dashboard's O(variables) (C($model)) and Grafana's own
        (C($__rate_interval), C($__interval), C($__range)); any other C($name) is an error.
    type: list
    elements: dict
  variables:
    description:
      - Template variables filled from Prometheus, shown as drop-downs above the dashboard.
      - "Keys: C(name) (required), C(query) (required, e.g. C(label_values(vllm:num_requests_running, model_name))),
        C(label), C(multi) (bool), C(include_all) (bool; the C(All) value matches C(.*))."
    type: list
    elements: dict
    default: []
  tags:
    description: Dashboard tags.
    type: list
    elements: str
    default: []
  datasource_uid:
    description: Uid of the Prometheus datasource every panel and variable queries (see M(llmops.datacenter.grafana_datasource)).
    type: str
    default: prometheus
  refresh:
    description: Auto-refresh interval of the dashboard.
    type: str
    default: 30s
  time_from:
    description: Start of the default time range.
    type: str
    default: now-6h
  state:
    description: C(present) writes the dashboard file; C(absent) removes it (Grafana then drops the dashboard).
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - ansible.builtin.files
notes:
  - Grafana reads the file only through a dashboard provider whose C(options.path) is O(dest_dir);
    the M(llmops.datacenter.grafana_dashboard) module writes dashboards, not providers.
seealso:
  - module: llmops.datacenter.grafana_datasource
  - name: Grafana provisioning
    description: Grafana's documentation of datasource and dashboard provisioning files.
    link: https://grafana.com/docs/grafana/latest/administration/provisioning/
"""

EXAMPLES = r"""
- name: Provision a GPU utilisation dashboard
  llmops.datacenter.grafana_dashboard:
    dest_dir: /var/lib/grafana/dashboards/llmops
    title: GPU fleet
    uid: llmops-gpu-fleet
    datasource_uid: prometheus
    tags: [llmops, gpu]
    variables:
      - name: node
        query: label_values(DCGM_FI_DEV_GPU_UTIL, Hostname)
        multi: true
        include_all: true
    panels:
      - title: GPUs
        kind: row
      - title: GPU utilisation
        expr: avg by (Hostname, gpu) (DCGM_FI_DEV_GPU_UTIL{Hostname=~"$node"})
        legend: "{{Hostname}} GPU {{gpu}}"
        unit: percent
        thresholds:
          - {value: 90, color: orange}
      - title: Xid errors
        kind: stat
        expr: sum(DCGM_FI_DEV_XID_ERRORS{Hostname=~"$node"} > 0) or vector(0)
        unit: none
        thresholds:
          - {value: 1, color: red}
    owner: root
    group: grafana
    mode: "0644"

- name: Remove a dashboard
  llmops.datacenter.grafana_dashboard:
    dest_dir: /var/lib/grafana/dashboards/llmops
    title: GPU fleet
    uid: llmops-gpu-fleet
    state: absent
"""

RETURN = r"""
path:
  description: The dashboard file.
  returned: always
  type: str
  sample: /var/lib/grafana/dashboards/llmops/llmops-gpu-fleet.json
uid:
  description: The dashboard uid.
  returned: always
  type: str
  sample: llmops-gpu-fleet
panel_count:
  description: Number of panels, rows not counted.
  returned: when state is present
  type: int
  sample: 12
expressions:
  description: Every PromQL expression the dashboard runs (panel targets, then variable queries), as written.
  returned: when state is present
  type: list
  elements: str
  sample: ['avg by (Hostname, gpu) (DCGM_FI_DEV_GPU_UTIL{Hostname=~"$node"})']
diff:
  description: The file's text before and after (in diff mode).
  returned: when diff mode is on
  type: dict
  sample: {before: "", after: "{\n  \"annotations\": ...", before_header: "(absent)", after_header: "/var/lib/grafana/dashboards/llmops/llmops-gpu-fleet.json"}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.llmops.datacenter.plugins.module_utils.file_module import exit_with_file_result
from ansible_collections.llmops.datacenter.plugins.module_utils.grafana import SpecError, provision_dashboard


def main():
    module = AnsibleModule(
        argument_spec={
            "dest_dir": {"type": "path", "required": True},
            "title": {"type": "str", "required": True},
            "uid": {"type": "str"},
            "panels": {"type": "list", "elements": "dict"},
            "variables": {"type": "list", "elements": "dict", "default": []},
            "tags": {"type": "list", "elements": "str", "default": []},
            "datasource_uid": {"type": "str", "default": "prometheus"},
            "refresh": {"type": "str", "default": "30s"},
            "time_from": {"type": "str", "default": "now-6h"},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
        },
        required_if=[("state", "present", ("panels",))],
        add_file_common_args=True,
        supports_check_mode=True,
    )
    try:
        result = provision_dashboard(module.params, module.check_mode)
    except SpecError as error:
        module.fail_json(msg=str(error), field=error.field)
    except OSError as error:
        module.fail_json(msg=f"cannot write the dashboard file: {error}")
    exit_with_file_result(module, result)


if __name__ == "__main__":
    main()
