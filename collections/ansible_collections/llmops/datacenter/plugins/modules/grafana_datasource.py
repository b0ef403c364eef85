#!/usr/bin/python
# Copyright: llmops contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
from __future__ import annotations

DOCUMENTATION = r"""
---
module: grafana_datasource
short_description: Write a Grafana datasource provisioning file
version_added: "0.1.0"
description:
  - Writes one datasource as a Grafana provisioning document (C(apiVersion 1), C(datasources[])) to
    O(dest), a file in Grafana's C(provisioning/datasources) directory, which Grafana applies at start.
  - Secrets (the basic-auth password and everything in O(secure_json_data)) go under
    C(secureJsonData), which Grafana encrypts into its database; they are never shown in the task
    output, and diff mode masks them (a change to a secret alone is reported in the diff header).
  - The file is replaced atomically and only when its content differs, so a second run reports
    C(changed=false).
  - With O(state=absent) the file holds a C(deleteDatasources) entry instead, because removing the
    file alone would leave the datasource in Grafana's database.
  - "Invalid input fails naming the field, for example C(basic_auth_password: is required when
    basic_auth_user is set), and writes nothing."
author:
  - llmops contributors
attributes:
  check_mode:
    support: full
    description: Builds and validates the document and reports whether the file would change, without writing it.
  diff_mode:
    support: full
    description: Returns the file's text before and after, with secret values masked.
  platform:
    platforms: posix
options:
  dest:
    description: The provisioning file, e.g. C(/etc/grafana/provisioning/datasources/prometheus.yaml); its directory must exist.
    type: path
    required: true
  name:
    description: Datasource name as shown in Grafana.
    type: str
    required: true
  uid:
    description:
      - Datasource uid (1-40 letters, digits, C(-), C(_)) that dashboards refer to.
      - Defaults to the name in lowercase with dashes.
    type: str
  type:
    description: Grafana datasource plugin id.
    type: str
    default: prometheus
  url:
    description: URL Grafana queries, C(http://) or C(https://). Required when O(state=present).
    type: str
  access:
    description: C(proxy) (Grafana's server queries the datasource) or C(direct) (the browser does).
    type: str
    choices: [proxy, direct]
    default: proxy
  is_default:
    description: Whether this is the organisation's default datasource.
    type: bool
    default: true
  basic_auth_user:
    description: User for HTTP basic authentication to the datasource; requires O(basic_auth_password).
    type: str
  basic_auth_password:
    description: Password for O(basic_auth_user); written under C(secureJsonData.basicAuthPassword).
    type: str
  json_data:
    description: "Settings written as C(jsonData), e.g. C({httpMethod: POST, timeInterval: 15s})."
    type: dict
    default: {}
  secure_json_data:
    description: "Secret settings written as C(secureJsonData), e.g. C({tlsCACert: ...})."
    type: dict
    default: {}
  state:
    description: C(present) provisions the datasource; C(absent) provisions its deletion.
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - ansible.builtin.files
notes:
  - The file holds secrets in clear text, as Grafana's provisioning format requires; keep O(mode)
    at C(0640) with O(group) set to Grafana's group.
seealso:
  - module: llmops.datacenter.grafana_dashboard
  - name: Grafana datasource provisioning
    description: The format of the file this module writes.
    link: https://grafana.com/docs/grafana/latest/administration/provisioning/#data-sources
"""

EXAMPLES = r"""
- name: Provision Prometheus behind basic auth as Grafana's default datasource
  llmops.datacenter.grafana_datasource:
    dest: /etc/grafana/provisioning/datasources/prometheus.yaml
    name: Prometheus
    uid: prometheus
    url: http://127.0.0.1:9090
    basic_auth_user: grafana
    basic_auth_password: "{{ vault_prometheus_grafana_password }}"
    json_data:
      httpMethod: POST
      timeInterval: 15s
    owner: root
    group: grafana
    mode: "0640"

- name: Delete the datasource from Grafana at its next start
  llmops.datacenter.grafana_datasource:
    dest: /etc/grafana/provisioning/datasources/prometheus.yaml
    name: Prometheus
    state: absent
"""

RETURN = r"""
path:
  description: The provisioning file.
  returned: always
  type: str
  sample: /etc/grafana/provisioning/datasources/prometheus.yaml
uid:
  description: The datasource uid dashboards refer to.
  returned: when state is present
  type: str
  sample: prometheus
diff:
  description: The file's text before and after (in diff mode), with secrets masked.
  returned: when diff mode is on
  type: dict
  sample: {before: "", after: "apiVersion: 1\ndatasources:\n  - name: \"Prometheus\"\n", before_header: "(absent)", after_header: "/etc/grafana/provisioning/datasources/prometheus.yaml"}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.llmops.datacenter.plugins.module_utils.file_module import exit_with_file_result
from ansible_collections.llmops.datacenter.plugins.module_utils.grafana import SpecError, provision_datasource


def main():
    module = AnsibleModule(
        argument_spec={
            "dest": {"type": "path", "required": True},
            "name": {"type": "str", "required": True},
            "uid": {"type": "str"},
            "type": {"type": "str", "default": "prometheus"},
            "url": {"type": "str"},
            "access": {"type": "str", "choices": ["proxy", "direct"], "default": "proxy"},
            "is_default": {"type": "bool", "default": True},
            "basic_auth_user": {"type": "str"},
            "basic_auth_password": {"type": "str", "no_log": True},
            "json_data": {"type": "dict", "default": {}},
            "secure_json_data": {"type": "dict", "default": {}, "no_log": True},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
        },
        required_if=[("state", "present", ("url",))],
        add_file_common_args=True,
        supports_check_mode=True,
    )
    try:
        result = provision_datasource(module.params, module.check_mode)
    except SpecError as error:
        module.fail_json(msg=str(error), field=error.field)
    except OSError as error:
        module.fail_json(msg=f"cannot write the datasource file: {error}")
    exit_with_file_result(module, result)


if __name__ == "__main__":
    main()
