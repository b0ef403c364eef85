#!/usr/bin/python
# Copyright: llmops maintainers
# Apache-2.0 (see galaxy.yml)

DOCUMENTATION = r"""
module: prometheus_web_config
short_description: Write Prometheus' web config (basic auth, optional TLS), checked by promtool first
version_added: 0.1.0
description:
  - Writes the file passed to C(prometheus --web.config.file) with bcrypt-hashed basic auth users and,
    optionally, TLS.
  - There is no default password. A stored hash is kept while it still matches the password, so
    re-running with the same password reports no change; a new password is hashed with a fresh salt.
  - The candidate is checked with C(promtool check web-config) before it replaces the live file.
    Prometheus re-reads this file on every request, so no restart or reload is needed.
extends_documentation_fragment:
  - llmops.datacenter.prometheus_file
  - ansible.builtin.files
options:
  users:
    description: User names and their plain-text passwords; only bcrypt hashes are written.
    type: dict
    required: true
  bcrypt_rounds:
    description: bcrypt cost factor; each step doubles the time a login takes to check.
    type: int
    default: 10
  tls_cert_file:
    description: Server certificate (PEM). Set with O(tls_key_file) to serve HTTPS.
    type: path
  tls_key_file:
    description: Private key (PEM) for O(tls_cert_file).
    type: path
requirements:
  - bcrypt (Debian package C(python3-bcrypt)) on the target
author:
  - llmops maintainers
"""

EXAMPLES = r"""
- name: Require a password for the Prometheus UI and API
  llmops.datacenter.prometheus_web_config:
    path: /etc/prometheus/web.yml
    promtool: /usr/bin/promtool
    users:
      admin: "{{ prometheus_web_admin_password }}"
    owner: root
    group: prometheus
    mode: "0640"
  no_log: true
"""

RETURN = r"""
path:
  description: The web config file.
  returned: always
  type: str
  sample: /etc/prometheus/web.yml
diff:
  description: The file before and after, in diff mode (hashes only, never passwords).
  returned: when diff mode is on
  type: dict
"""

import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.llmops.datacenter.plugins.module_utils.managed_file import read_text
from ansible_collections.llmops.datacenter.plugins.module_utils.prometheus_module import (
    FILE_OPTIONS,
    write_validated,
)
from ansible_collections.llmops.datacenter.plugins.module_utils.prometheus_web import build_web_config

try:
    import bcrypt
except ImportError:
    bcrypt = None
    BCRYPT_IMPORT_ERROR = traceback.format_exc()


def main():
    module = AnsibleModule(
        argument_spec={
            **FILE_OPTIONS,
            "users": {"type": "dict", "required": True, "no_log": True},
            "bcrypt_rounds": {"type": "int", "default": 10},
            "tls_cert_file": {"type": "path"},
            "tls_key_file": {"type": "path"},
        },
        add_file_common_args=True,
        supports_check_mode=True,
    )
    if bcrypt is None:
        module.fail_json(msg=missing_required_lib("bcrypt"), exception=BCRYPT_IMPORT_ERROR)
    params = module.params
    rounds = params["bcrypt_rounds"]

    def hash_password(password):
        return bcrypt.hashpw(password.encode("utf-8"), bcrypt.gensalt(rounds)).decode("ascii")

    def check_password(password, hashed):
        try:
            return bcrypt.checkpw(password.encode("utf-8"), hashed.encode("ascii"))
        except ValueError:
            return False

    def render():
        return build_web_config(
            params["users"],
            read_text(params["path"]),
            hash_password,
            check_password,
            params["tls_cert_file"],
            params["tls_key_file"],
        )

    write_validated(module, render, ["check", "web-config"])


if __name__ == "__main__":
    main()
