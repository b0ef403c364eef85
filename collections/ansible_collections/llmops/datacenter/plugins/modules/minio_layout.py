#!/usr/bin/python
# Copyright: llmops maintainers
# Apache License 2.0 (see galaxy.yml)

DOCUMENTATION = r"""
---
module: minio_layout
short_description: Check a MinIO drive layout against MinIO's erasure rules and expand it
version_added: "0.1.0"
description:
  - Turns the inventory's pools (C(hosts) and C(drives) patterns in MinIO's C({a...b}) ellipsis
    syntax) into C(MINIO_VOLUMES) and the drive paths on this node, applying the rules MinIO's
    server applies at start-up; a layout MinIO would refuse fails here, naming the field and the
    accepted values, before anything is changed.
  - Rules - an erasure set has 2 to 16 drives and its size divides the pool's drive count; MinIO
    keeps sizes that spread symmetrically over the pool's hosts and picks the largest; several
    pools need ellipses in every pool; one drive without ellipses runs without erasure coding;
    parity C(EC:N) is at most half the set size.
  - Pure computation; the role runs it on the controller in its preflight.
author:
  - llmops maintainers
options:
  pools:
    description:
      - Server pools, each C({hosts, drives}). C(hosts) is a host name pattern (C(minio{1...4}.example.net))
        or empty for a single-node layout; C(drives) an absolute path pattern (C(/srv/minio/disk{1...4})).
    type: list
    elements: dict
    required: true
  node_name:
    description: This node's name as it appears in the pools' host patterns (distributed layouts).
    type: str
    default: ""
  tls:
    description: Whether the nodes talk HTTPS to each other (the scheme in C(MINIO_VOLUMES)).
    type: bool
    default: true
  port:
    description: The port every node listens on.
    type: int
    default: 9000
  erasure_set_drive_count:
    description: C(MINIO_ERASURE_SET_DRIVE_COUNT); V(0) lets MinIO choose.
    type: int
    default: 0
  storage_class_standard:
    description: C(MINIO_STORAGE_CLASS_STANDARD) (C(EC:N)); empty for MinIO's default parity.
    type: str
    default: ""
attributes:
  check_mode:
    support: full
    details: Changes nothing in any mode.
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Four nodes with four drives each, one pool
  llmops.datacenter.minio_layout:
    pools:
      - hosts: "minio{1...4}.example.net"
        drives: "/srv/minio/disk{1...4}"
    node_name: "{{ inventory_hostname }}"
  delegate_to: localhost
  register: layout
"""

RETURN = r"""
volumes:
  description: The value for C(MINIO_VOLUMES).
  returned: success
  type: str
  sample: "https://minio{1...4}.example.net:9000/srv/minio/disk{1...4}"
local_drives:
  description: Drive paths on this node.
  returned: success
  type: list
  elements: str
  sample: [/srv/minio/disk1, /srv/minio/disk2, /srv/minio/disk3, /srv/minio/disk4]
pools:
  description: Per pool, the erasure set size MinIO will choose, the number of sets and the parity.
  returned: success
  type: list
  elements: dict
  sample: [{argument: "https://minio{1...4}.example.net:9000/srv/minio/disk{1...4}", set_size: 16, sets: 1, parity: 4,
            drives_per_host: 4, hosts: [minio1.example.net], drives: [/srv/minio/disk1]}]
distributed:
  description: Whether the layout spans several hosts.
  returned: success
  type: bool
  sample: true
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.llmops.datacenter.plugins.module_utils.minio_layout import LayoutError, layout


def main():
    module = AnsibleModule(
        argument_spec={
            "pools": {"type": "list", "elements": "dict", "required": True},
            "node_name": {"type": "str", "default": ""},
            "tls": {"type": "bool", "default": True},
            "port": {"type": "int", "default": 9000},
            "erasure_set_drive_count": {"type": "int", "default": 0},
            "storage_class_standard": {"type": "str", "default": ""},
        },
        supports_check_mode=True,
    )
    p = module.params
    try:
        result = layout(p["pools"], p["node_name"], p["tls"], p["port"], p["erasure_set_drive_count"],
                        p["storage_class_standard"])
    except LayoutError as error:
        module.fail_json(msg=str(error), field=error.field)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
