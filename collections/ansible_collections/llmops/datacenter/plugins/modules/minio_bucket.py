#!/usr/bin/python
# Copyright: llmops maintainers
# Apache License 2.0 (see galaxy.yml)

DOCUMENTATION = r"""
---
module: minio_bucket
short_description: A MinIO bucket with its versioning, object lock, quota and lifecycle rules
version_added: "0.1.0"
description:
  - Creates or removes a bucket and brings its versioning, lifecycle rules and quota to the
    given state. Options left unset are not managed, so one task may own only the quota.
  - Reads the current state first and sends only the requests that change something; a second
    run with the same input changes nothing.
  - Versioning, object lock and lifecycle rules use the S3 API (they work on any S3 store that
    implements them); the quota uses MinIO's admin API.
  - The bucket name is checked against S3's naming rules before any request is sent.
author:
  - llmops maintainers
extends_documentation_fragment:
  - llmops.datacenter.minio
options:
  name:
    description: Bucket name (3-63 lowercase letters, digits, '.' and '-', starting and ending with a letter or digit).
    type: str
    required: true
  state:
    description:
      - V(present) creates the bucket; V(absent) removes it (the server refuses when it still holds objects).
    type: str
    choices: [present, absent]
    default: present
  versioning:
    description: Bucket versioning. Unset leaves it as it is.
    type: str
    choices: [enabled, suspended]
  object_lock:
    description:
      - Create the bucket with object lock (which also enables versioning). S3 allows it only at
        creation; asking for another value than the bucket has fails naming this option.
    type: bool
  quota:
    description:
      - Hard quota in bytes (MinIO admin API); V(0) removes the quota. Unset leaves it as it is.
    type: int
  lifecycle_rules:
    description:
      - The bucket's complete set of lifecycle rules; V([]) removes them all. Unset leaves them as they are.
      - Rules are compared by O(lifecycle_rules[].id).
    type: list
    elements: dict
    suboptions:
      id:
        description: Unique rule id.
        type: str
        required: true
      prefix:
        description: Object key prefix the rule applies to (empty for the whole bucket).
        type: str
        default: ""
      status:
        description: Whether the rule is applied.
        type: str
        choices: [Enabled, Disabled]
        default: Enabled
      expiration_days:
        description: Days after which current objects expire.
        type: int
      noncurrent_expiration_days:
        description: Days after which noncurrent versions are removed.
        type: int
      abort_incomplete_multipart_days:
        description: Days after which incomplete multipart uploads are aborted.
        type: int
attributes:
  check_mode:
    support: full
    details: The current state is read and compared; nothing is written.
  diff_mode:
    support: full
    details: Shows the bucket's managed settings before and after.
"""

EXAMPLES = r"""
- name: Model bucket for team-a, versioned, old versions kept a week, 500 GiB hard quota
  llmops.datacenter.minio_bucket:
    name: llmops-team-a
    versioning: enabled
    quota: 536870912000
    lifecycle_rules:
      - id: noncurrent-7d
        noncurrent_expiration_days: 7
      - id: abort-uploads
        abort_incomplete_multipart_days: 2
    endpoint_url: "https://minio1.example.net:9000"
    ca_cert: "{{ minio_tls_ca_dir }}/ca.pem"
    access_key: "{{ minio_root_user }}"
    secret_key: "{{ minio_root_password }}"
  delegate_to: localhost

- name: A write-once audit bucket
  llmops.datacenter.minio_bucket:
    name: llmops-audit
    object_lock: true
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
  sample: [create bucket, set versioning enabled, set lifecycle rules, set quota 536870912000]
bucket:
  description: The managed settings after the run (empty when absent).
  returned: always
  type: dict
  sample: {name: llmops-team-a, versioning: enabled, quota: 536870912000}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.llmops.datacenter.plugins.module_utils.minio_manage import (
    CONNECTION_OPTIONS,
    ensure_bucket,
    run_module,
)


def main():
    module = AnsibleModule(
        argument_spec={
            **CONNECTION_OPTIONS,
            "name": {"type": "str", "required": True},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            "versioning": {"type": "str", "choices": ["enabled", "suspended"]},
            "object_lock": {"type": "bool"},
            "quota": {"type": "int"},
            "lifecycle_rules": {"type": "list", "elements": "dict", "options": {
                "id": {"type": "str", "required": True},
                "prefix": {"type": "str", "default": ""},
                "status": {"type": "str", "choices": ["Enabled", "Disabled"], "default": "Enabled"},
                "expiration_days": {"type": "int"},
                "noncurrent_expiration_days": {"type": "int"},
                "abort_incomplete_multipart_days": {"type": "int"},
            }},
        },
        supports_check_mode=True,
    )
    run_module(module, ensure_bucket, "bucket")


if __name__ == "__main__":
    main()
