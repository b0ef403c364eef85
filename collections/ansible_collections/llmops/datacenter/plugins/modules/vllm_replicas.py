#!/usr/bin/python
# Copyright: llmops contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
from __future__ import annotations

DOCUMENTATION = r"""
---
module: vllm_replicas
short_description: Run exactly the given vLLM replicas on a host, one systemd unit each, rolled out one at a time
version_added: "0.1.0"
description:
  - Owns the systemd units of the vLLM replicas on one host (those whose first line is O(owner_marker)),
    as rendered by M(llmops.datacenter.serving_spec).
  - "Replicas are handled one at a time, in the given order: a replica whose unit is unchanged and running
    is left alone; otherwise its unit is written, the service restarted, and the module waits until
    C(/health) answers 200 and a real completion (C(/v1/completions)) returns a choice."
  - A replica that does not get there within O(health_timeout), or whose process exits and is restarted by
    systemd meanwhile, is rolled back to the unit it had before (so to the model version that unit served),
    the previous unit is waited for in the same way, and the task fails naming the replica, the reason and
    the last journal lines; later replicas are not touched. A new replica that fails is removed.
  - After every wanted replica serves, owned units that are no longer wanted are drained (the module waits
    until C(vllm:num_requests_running) is 0, at most O(drain_timeout)) and then stopped, disabled and removed
    with their state folder. Units without the marker are never touched.
author:
  - llmops contributors
attributes:
  check_mode:
    support: full
    description: Reports which replicas would be created, updated, started or removed, and the unit diffs; changes nothing.
  diff_mode:
    support: full
    description: One before/after diff per unit file written or removed.
  platform:
    platforms: posix
    description: Target hosts with systemd.
options:
  replicas:
    description:
      - The replicas this host must run, in rollout order (the O(units) entries M(llmops.datacenter.serving_spec)
        returns for the host). An empty list removes every owned replica.
    type: list
    elements: dict
    required: true
    suboptions:
      id:
        description: Stable replica id (DNS label).
        type: str
        required: true
      unit_name:
        description: systemd unit name, for example C(llmops-vllm-<id>.service).
        type: str
        required: true
      content:
        description: The unit file's full text; must start with O(owner_marker) followed by the id.
        type: str
        required: true
      port:
        description: Port the replica's server listens on.
        type: int
        required: true
      model:
        description: The served model name the health completion is sent to.
        type: str
        required: true
      state_dir:
        description: The replica's working and cache folder; created owned by O(user).
        type: path
        required: true
      artifact:
        description: The model artifact (name, version, path) the unit serves; informational, not used here.
        type: dict
  user:
    description: System user the replicas run as; owns their state folders. Must exist.
    type: str
    default: llmops-vllm
  unit_dir:
    description: Where the unit files live.
    type: path
    default: /etc/systemd/system
  state_root:
    description: Folder holding the replicas' state folders; a removed replica's folder is deleted from it.
    type: path
    default: /var/lib/llmops/serving
  owner_marker:
    description: First-line prefix that marks a unit as owned by this module.
    type: str
    default: "# Managed by llmops.datacenter.model_serving: replica "
  health_timeout:
    description: Seconds a restarted replica has to answer C(/health) and a completion.
    type: int
    default: 600
  drain_timeout:
    description: Seconds to wait for a removed replica's running requests to finish before stopping it.
    type: int
    default: 120
  probe_host:
    description: Address the module reaches the replicas at on the host.
    type: str
    default: 127.0.0.1
notes:
  - Across hosts, run the role with C(serial) so that only one replica in the fleet restarts at a time.
seealso:
  - module: llmops.datacenter.serving_spec
"""

EXAMPLES = r"""
- name: Compute the units on the controller
  llmops.datacenter.serving_spec:
    plan_file: out/lab/plan.json
    models_file: inventories/lab/group_vars/all/models.yml
    device: cpu
    unit:
      python: /opt/llmops/vllm/bin/python
  delegate_to: localhost
  run_once: true
  register: serving

- name: Roll this host's replicas out
  llmops.datacenter.vllm_replicas:
    replicas: "{{ serving.units[inventory_hostname] | default([]) }}"
    health_timeout: 300
"""

RETURN = r"""
actions:
  description: >-
    Replica id to what happened: unchanged, created, updated, started, removed, removed_undrained,
    failed, rolled_back, rollback_failed.
  returned: always
  type: dict
  sample: {"smollm2-lab-gpu-1-0": "updated", "old-model-lab-gpu-1-1": "removed"}
rolled_back:
  description: Replicas rolled back to their previous unit.
  returned: always
  type: list
  elements: str
  sample: []
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.llmops.datacenter.plugins.module_utils import vllm_replicas


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "replicas": {
                "type": "list",
                "elements": "dict",
                "required": True,
                "options": {
                    "id": {"type": "str", "required": True},
                    "unit_name": {"type": "str", "required": True},
                    "content": {"type": "str", "required": True},
                    "port": {"type": "int", "required": True},
                    "model": {"type": "str", "required": True},
                    "state_dir": {"type": "path", "required": True},
                    "artifact": {"type": "dict"},
                },
            },
            "user": {"type": "str", "default": "llmops-vllm"},
            "unit_dir": {"type": "path", "default": "/etc/systemd/system"},
            "state_root": {"type": "path", "default": "/var/lib/llmops/serving"},
            "owner_marker": {"type": "str", "default": "# Managed by llmops.datacenter.model_serving: replica "},
            "health_timeout": {"type": "int", "default": 600},
            "drain_timeout": {"type": "int", "default": 120},
            "probe_host": {"type": "str", "default": "127.0.0.1"},
        },
        supports_check_mode=True,
    )
    ids = [replica["id"] for replica in module.params["replicas"]]
    repeated = sorted({rid for rid in ids if ids.count(rid) > 1})
    if repeated:
        module.fail_json(msg=f"replicas: ids must be unique; repeated: {', '.join(repeated)}")

    def run(argv):
        return module.run_command(argv)

    try:
        result = vllm_replicas.apply(module.params, run, module.check_mode)
    except vllm_replicas.RolloutError as exc:
        failed = exc.result
        failed.pop("diff", None)
        module.fail_json(msg=str(exc), **failed)
    diff = result.pop("diff")
    if module._diff:
        result["diff"] = diff
    module.exit_json(**result)


if __name__ == "__main__":
    main()
