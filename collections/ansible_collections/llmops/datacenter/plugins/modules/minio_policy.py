#!/usr/bin/python
# Copyright: llmops maintainers
# Apache License 2.0 (see galaxy.yml)

DOCUMENTATION = r"""
---
module: minio_policy
short_description: A MinIO policy (built-in or custom document) and the users and groups it is attached to
version_added: "0.1.0"
description:
  - Creates, updates or removes a named policy from an IAM policy document, and attaches it to
    the given users and groups. MinIO's built-in policies (consoleAdmin, diagnostics, readonly,
    readwrite, writeonly) can be attached but not rewritten or removed.
  - Documents are compared after normalising (single values as lists, statements in a stable
    order), so the server's own formatting of a stored policy is not a change.
  - With O(state=absent) the policy is first detached from the listed users and groups, then removed.
  - Uses MinIO's admin API.
author:
  - llmops maintainers
extends_documentation_fragment:
  - llmops.datacenter.minio
options:
  name:
    description: Policy name.
    type: str
    required: true
  policy:
    description:
      - The policy document (a mapping, or its JSON text). Required to create a custom policy;
        unset attaches an existing one without touching its document.
    type: raw
  state:
    description: V(present) or V(absent).
    type: str
    choices: [present, absent]
    default: present
  users:
    description: Users the policy must be attached to (other users' attachments are left alone).
    type: list
    elements: str
    default: []
  groups:
    description: Groups the policy must be attached to (they must exist).
    type: list
    elements: str
    default: []
attributes:
  check_mode:
    support: full
    details: The policy and the attachments are read and compared; nothing is written.
  diff_mode:
    support: full
    details: Shows the normalised document and the listed users and groups holding it, before and after.
"""

EXAMPLES = r"""
- name: Team-a may read and list its model bucket only
  llmops.datacenter.minio_policy:
    name: team-a-read
    policy:
      Version: "2012-10-17"
      Statement:
        - Effect: Allow
          Action: [s3:GetObject, s3:ListBucket, s3:GetBucketLocation]
          Resource: ["arn:aws:s3:::llmops-team-a", "arn:aws:s3:::llmops-team-a/*"]
    users: [team-a-read]
    endpoint_url: "https://minio1.example.net:9000"
    ca_cert: "{{ minio_tls_ca_dir }}/ca.pem"
    access_key: "{{ minio_root_user }}"
    secret_key: "{{ minio_root_password }}"
  delegate_to: localhost

- name: Publishers get the built-in readwrite policy
  llmops.datacenter.minio_policy:
    name: readwrite
    groups: [publishers]
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
  sample: [create policy, attach to user team-a-read]
policy:
  description: The policy's normalised document and the listed users and groups holding it, after the run.
  returned: always
  type: dict
  sample:
    name: team-a-read
    policy: {Version: "2012-10-17", Statement: [{Effect: Allow, Action: [s3:GetObject], Resource: ["arn:aws:s3:::llmops-team-a/*"]}]}
    users: [team-a-read]
    groups: []
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.llmops.datacenter.plugins.module_utils.minio_manage import (
    CONNECTION_OPTIONS,
    ensure_policy,
    run_module,
)


def main():
    module = AnsibleModule(
        argument_spec={
            **CONNECTION_OPTIONS,
            "name": {"type": "str", "required": True},
            "policy": {"type": "raw"},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            "users": {"type": "list", "elements": "str", "default": []},
            "groups": {"type": "list", "elements": "str", "default": []},
        },
        supports_check_mode=True,
    )
    run_module(module, lambda _s3, admin, params, check_mode: ensure_policy(admin, params, check_mode), "policy")


if __name__ == "__main__":
    main()
