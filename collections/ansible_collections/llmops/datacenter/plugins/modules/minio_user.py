#!/usr/bin/python
# Copyright: llmops maintainers
# Apache License 2.0 (see galaxy.yml)

DOCUMENTATION = r"""
---
module: minio_user
short_description: A MinIO user with its status and attached policies
version_added: "0.1.0"
description:
  - Creates or removes a user of MinIO's built-in identity store, enables or disables it and
    makes its directly attached policies exactly O(policies).
  - Uses MinIO's admin API; the new user's secret is sent encrypted with the caller's secret key,
    as MinIO requires.
  - MinIO never returns a user's secret, so an existing user's secret is only rewritten with
    O(update_secret=always) (then the task always reports a change).
author:
  - llmops maintainers
extends_documentation_fragment:
  - llmops.datacenter.minio
options:
  name:
    description: The user's access key (3-128 characters).
    type: str
    required: true
  secret:
    description: The user's secret key (8-40 characters); required to create the user. Never logged.
    type: str
  state:
    description: V(present) or V(absent).
    type: str
    choices: [present, absent]
    default: present
  status:
    description: Whether the user may sign requests.
    type: str
    choices: [enabled, disabled]
    default: enabled
  policies:
    description:
      - The complete list of policies attached to the user directly (policies inherited from groups
        are not counted); V([]) detaches them all. Unset leaves them as they are.
    type: list
    elements: str
  update_secret:
    description: V(on_create) sets the secret only when the user is created; V(always) rewrites it on every run.
    type: str
    choices: [on_create, always]
    default: on_create
attributes:
  check_mode:
    support: full
    details: The user is read and compared; nothing is written.
  diff_mode:
    support: full
    details: Shows status and policies before and after (never the secret).
"""

EXAMPLES = r"""
- name: Read-only key for team-a's model fetches
  llmops.datacenter.minio_user:
    name: team-a-read
    secret: "{{ vault_team_a_read_secret }}"
    policies: [team-a-read]
    endpoint_url: "https://minio1.example.net:9000"
    ca_cert: "{{ minio_tls_ca_dir }}/ca.pem"
    access_key: "{{ minio_root_user }}"
    secret_key: "{{ minio_root_password }}"
  delegate_to: localhost

- name: Suspend a publisher without deleting it
  llmops.datacenter.minio_user:
    name: publisher
    status: disabled
    endpoint_url: "https://minio1.example.net:9000"
    access_key: "{{ minio_root_user }}"
    secret_key: "{{ minio_root_password }}"
  delegate_to: localhost
"""

RETURN = r"""
actions:
  description: What was done (or would be, in check mode), in order.
  returned: always
  type: list
  elements: str
  sample: [create user, attach team-a-read]
user:
  description: The user's status and policies after the run (empty when absent).
  returned: always
  type: dict
  sample: {access_key: team-a-read, status: enabled, policies: [team-a-read]}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.llmops.datacenter.plugins.module_utils.minio_manage import (
    CONNECTION_OPTIONS,
    ensure_user,
    run_module,
)


def main():
    module = AnsibleModule(
        argument_spec={
            **CONNECTION_OPTIONS,
            "name": {"type": "str", "required": True},
            "secret": {"type": "str", "no_log": True},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            "status": {"type": "str", "choices": ["enabled", "disabled"], "default": "enabled"},
            "policies": {"type": "list", "elements": "str"},
            "update_secret": {"type": "str", "choices": ["on_create", "always"], "default": "on_create"},
        },
        supports_check_mode=True,
    )
    run_module(module, lambda _s3, admin, params, check_mode: ensure_user(admin, params, check_mode), "user")


if __name__ == "__main__":
    main()
