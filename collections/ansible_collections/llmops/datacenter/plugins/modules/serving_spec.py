#!/usr/bin/python
# Copyright: llmops contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
from __future__ import annotations

DOCUMENTATION = r"""
---
module: serving_spec
short_description: Compute the serving spec of a placement plan and render each replica's systemd unit
version_added: "0.1.0"
description:
  - Runs on the controller. Turns C(plan.json), the models document and the inventory's hosts into the
    serving spec every rollout target reads; see docs/serving.md in the collection for its fields.
  - Per replica the spec holds its stable id, model, tenant, artifact and node cache path, node, address,
    port, GPU indices, GPU type, zone, pool, precision, tensor-parallel degree, traffic weight, labels,
    the full vLLM engine arguments and the environment; per model the replicas with their weights; per
    tenant the models it may call.
  - With O(unit.python) it also renders one systemd unit per replica, grouped by node, for
    M(llmops.datacenter.vllm_replicas).
  - Bad input fails the task before any host is touched, one line per problem naming the field and the
    accepted values, for example a model placed by the plan without an artifact, an unknown tenant, a node
    that is not in the inventory, or a port clash.
  - Computes only; it never changes anything, so it always reports C(changed=false).
author:
  - llmops contributors
requirements:
  - the C(llmops) Python package on the controller (C(pip install -e .) in the project)
attributes:
  check_mode:
    support: full
    description: Computes the same result; nothing is written in either mode.
  diff_mode:
    support: none
    description: Nothing changes, so there is nothing to diff.
  platform:
    platforms: posix
    description: "Runs on the controller (C(delegate_to: localhost) or C(hosts: localhost))."
options:
  plan:
    description:
      - The plan as a dict (the content of plan.json). Mutually exclusive with O(plan_file).
    type: dict
  plan_file:
    description:
      - Path to plan.json on the controller, as written by M(llmops.datacenter.placement_plan).
    type: path
  models:
    description:
      - The models document, with top-level keys C(models) and C(tenants). Mutually exclusive with O(models_file).
    type: dict
  models_file:
    description:
      - Path to a models file (YAML) on the controller.
    type: path
  hf_config_dir:
    description:
      - Folder that relative C(hf_config) paths in O(models) are resolved against (for group_vars,
        C(<inventory>/group_vars/all)).
    type: path
  inventory_hosts:
    description:
      - The hosts replicas may run on, as a mapping of inventory host name to the address the gateway and
        Prometheus reach it at. A replica on a node outside it fails the task.
      - Without it nodes are not checked and each replica is reached by its node name.
    type: dict
  device:
    description:
      - C(cuda) renders production engine arguments (dtype and quantization from the plan's precision,
        GPU memory fraction, C(CUDA_VISIBLE_DEVICES)); C(cpu) renders vLLM's CPU build (bf16,
        C(--enforce-eager), C(VLLM_CPU_KVCACHE_SPACE)). Nothing else differs.
    type: str
    choices: [cuda, cpu]
    default: cuda
  base_port:
    description:
      - Port of the replica whose first GPU is 0; a replica listens on C(base_port + first GPU index).
    type: int
    default: 8000
  port_overrides:
    description:
      - Replica id to port, for the few replicas that must listen elsewhere. Clashes fail the task.
    type: dict
  reserved_ports:
    description:
      - Ports other services hold on the nodes; a replica on one of them fails the task.
      - Defaults to the collection's own services (Grafana 3000, Prometheus 9090, Alertmanager 9093, node exporter 9100).
    type: list
    elements: int
  model_cache_root:
    description:
      - Node folder that holds C(<artifact>/<version>) model directories (where model_fetch delivers them).
    type: str
    default: /var/lib/llmops/models
  state_root:
    description:
      - Node folder under which each replica gets its working and cache directory.
    type: str
    default: /var/lib/llmops/serving
  cpu_kvcache_gib:
    description:
      - KV-cache size in GiB of each replica in C(cpu) mode (C(VLLM_CPU_KVCACHE_SPACE)).
    type: int
    default: 1
  unit:
    description:
      - How to render the systemd units. Without O(unit.python) no units are rendered.
    type: dict
    suboptions:
      python:
        description: The python of the vLLM virtualenv on the nodes.
        type: str
      user:
        description: The system user the replicas run as.
        type: str
        default: llmops-vllm
      group:
        description: Its group; the user's name when omitted.
        type: str
      memory_max:
        description: systemd C(MemoryMax=) of each replica (for example C(8G)); unlimited when omitted.
        type: str
      restart_sec:
        description: Seconds systemd waits before restarting a replica that died.
        type: int
        default: 5
      limit_nofile:
        description: systemd C(LimitNOFILE=) of each replica; at most the host's hard limit (containers often cap it at 1024).
        type: int
        default: 65536
seealso:
  - module: llmops.datacenter.placement_plan
  - module: llmops.datacenter.vllm_replicas
"""

EXAMPLES = r"""
- name: Serving spec and units for the lab (vLLM's CPU build)
  llmops.datacenter.serving_spec:
    plan_file: "{{ playbook_dir }}/../out/lab/plan.json"
    models:
      models: "{{ models }}"
      tenants: "{{ tenants | default([]) }}"
    hf_config_dir: "{{ inventory_dir }}/group_vars/all"
    inventory_hosts: "{{ dict(groups['gpu_workers'] | zip(groups['gpu_workers'])) }}"
    device: cpu
    unit:
      python: /opt/llmops/vllm/bin/python
      user: llmops-vllm
  delegate_to: localhost
  run_once: true
  register: serving

- name: Show where each replica of chat-70b runs
  ansible.builtin.debug:
    msg: "{{ serving.spec.models['chat-70b'].targets }}"
"""

RETURN = r"""
spec:
  description: The serving spec; docs/serving.md describes every field.
  returned: success
  type: dict
  contains:
    device:
      description: C(cuda) or C(cpu).
      type: str
      sample: cpu
    replicas:
      description: One entry per replica of the plan, in the plan's order.
      type: list
      elements: dict
      sample: [{"id": "smollm2-lab-gpu-1-0", "model": "smollm2", "tenant": "demo", "node": "lab-gpu-1",
                "address": "lab-gpu-1", "port": 8000, "gpu_indices": [0], "traffic_weight": 0.5,
                "base_url": "http://lab-gpu-1:8000",
                "engine_args": ["--model", "/var/lib/llmops/models/smollm2/v1", "--served-model-name", "smollm2"]}]
    models:
      description: Per model its tenant, whether it is served, and its targets (replica, address, port, weight).
      type: dict
    tenants:
      description: Per tenant the models it may call (its own and those shared with it).
      type: dict
    nodes:
      description: Node name to the ids of the replicas on it.
      type: dict
      sample: {"lab-gpu-1": ["smollm2-lab-gpu-1-0"]}
units:
  description: Per node the rendered systemd units (id, unit_name, content, port, model, state_dir, artifact).
  returned: success
  type: dict
problems:
  description: One line per invalid input, naming the field and the accepted values.
  returned: failure on invalid input
  type: list
  elements: str
  sample: ["models[0].artifact: model 'chat' is placed by the plan but names no artifact (name, version) in the object store"]
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.llmops.datacenter.plugins.module_utils import serving_spec


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "plan": {"type": "dict"},
            "plan_file": {"type": "path"},
            "models": {"type": "dict"},
            "models_file": {"type": "path"},
            "hf_config_dir": {"type": "path"},
            "inventory_hosts": {"type": "dict"},
            "device": {"type": "str", "choices": ["cuda", "cpu"], "default": "cuda"},
            "base_port": {"type": "int", "default": 8000},
            "port_overrides": {"type": "dict"},
            "reserved_ports": {"type": "list", "elements": "int"},
            "model_cache_root": {"type": "str", "default": "/var/lib/llmops/models"},
            "state_root": {"type": "str", "default": "/var/lib/llmops/serving"},
            "cpu_kvcache_gib": {"type": "int", "default": 1},
            "unit": {
                "type": "dict",
                "options": {
                    "python": {"type": "str"},
                    "user": {"type": "str", "default": "llmops-vllm"},
                    "group": {"type": "str"},
                    "memory_max": {"type": "str"},
                    "restart_sec": {"type": "int", "default": 5},
                    "limit_nofile": {"type": "int", "default": 65536},
                },
            },
        },
        mutually_exclusive=[("plan", "plan_file"), ("models", "models_file")],
        required_one_of=[("plan", "plan_file"), ("models", "models_file")],
        supports_check_mode=True,
    )
    if not serving_spec.HAS_LLMOPS:
        module.fail_json(msg=missing_required_lib("llmops"), exception=serving_spec.LLMOPS_IMPORT_ERROR)
    try:
        result = serving_spec.build(module.params)
    except serving_spec.ServingSpecError as exc:
        module.fail_json(msg="invalid serving input:\n" + "\n".join(exc.problems), problems=exc.problems)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
