#!/usr/bin/python
# Copyright: llmops contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
from __future__ import annotations

DOCUMENTATION = r"""
---
module: placement_plan
short_description: Compute a cost-optimal placement of LLMs on a GPU fleet and write plan.json
version_added: "0.1.0"
description:
  - Runs the llmops placement planner on the controller. For every model it chooses the GPU type,
    weight precision, tensor-parallel degree and replica count, assigns every replica a node and GPU
    indices, picks how many nodes of each pool to run, and reports the hourly cost, a proven lower
    bound on the cost, and why any model could not be placed.
  - The same planner and the same inputs as C(llmops plan); the fleet and models documents have the
    shape of the fleet and models files (see docs/planner.md in the collection).
  - Every plan is checked by the independent validator before it is returned or written; a plan that
    breaks a constraint fails the task and is never written.
  - With O(dest) the plan is written as JSON, and rewritten only when its content other than
    C(solve_seconds) changes, so a second run with the same inputs reports C(changed=false).
  - Models that cannot be placed are reported in RV(plan.unplaced) and as warnings; the task does not fail.
  - "Invalid input fails the task listing every problem of both inputs at once, one line each naming
    the file (or the option, O(fleet) or O(models)), the field path and the accepted values (for example
    C(models.yml: models[2].traffic.requests_per_second: must be > 0)); nothing is written."
author:
  - llmops contributors
requirements:
  - the C(llmops) Python package on the controller (C(pip install -e .) in the project)
attributes:
  check_mode:
    support: full
    description: Computes and validates the plan and reports whether O(dest) would change, without writing it.
  diff_mode:
    support: full
    description: Shows a summary of the plan in O(dest) before and after (status, cost, nodes per pool, models).
  platform:
    platforms: posix
    description: "Runs on the controller (C(hosts: localhost), C(connection: local))."
options:
  fleet:
    description:
      - The fleet document, with top-level key C(pools) (the content of a fleet file).
      - Mutually exclusive with O(fleet_file); one of the two is required.
    type: dict
  fleet_file:
    description:
      - Path to a fleet file (YAML) on the controller.
      - Mutually exclusive with O(fleet).
    type: path
  models:
    description:
      - The models document, with top-level key C(models) (the content of a models file).
      - Mutually exclusive with O(models_file); one of the two is required.
    type: dict
  models_file:
    description:
      - Path to a models file (YAML) on the controller. Relative C(hf_config) paths in it are resolved
        against the file's folder.
      - Mutually exclusive with O(models).
    type: path
  hf_config_dir:
    description:
      - Folder that relative C(hf_config) paths in O(models) are resolved against, normally the folder
        the models document was read from (for group_vars, C(<inventory>/group_vars/all)).
      - Without it relative paths are resolved against the controller's working directory.
      - Ignored with O(models_file).
    type: path
  time_limit:
    description:
      - Solver time limit in seconds. The best plan found within it is returned with its lower bound.
    type: float
    default: 30
  dest:
    description:
      - Path on the controller to write the plan as JSON. Parent folders are created.
      - Rewritten only when the plan's content other than C(solve_seconds) differs from the file's.
      - Without it the plan is only returned.
    type: path
  current_plan:
    description:
      - Path on the controller to the running plan (JSON written by this module or C(llmops plan)). With it
        the module replans with minimal moves instead of planning afresh, as C(llmops replan) does.
      - Every replica of it that is still valid (model still listed, node still in the fleet and not failed,
        configuration still offered) stays on its node and GPUs unless stopping it is cheaper within
        O(cost_tolerance); the fewest replicas are started and stopped subject to a cost within O(cost_tolerance)
        of the optimiser's plan on the remaining fleet.
      - May be the same path as O(dest); a second run then finds nothing to move and reports C(changed=false).
      - A plan for another fleet (a node whose pool has another GPU type, or no node of the fleet at all) fails
        the task naming O(current_plan).
    type: path
  failed_nodes:
    description:
      - Nodes that are lost (names as in the fleet, C(<pool>-<i>) for cloud pools). Only with O(current_plan).
      - A name the fleet lacks fails the task naming O(failed_nodes).
    type: list
    elements: str
    default: []
  failed_zones:
    description:
      - Zones that are lost. Only with O(current_plan). A zone the fleet lacks fails the task, listing the zones.
    type: list
    elements: str
    default: []
  cost_tolerance:
    description:
      - With O(current_plan), how far above the optimiser's plan on the remaining fleet the repaired plan may cost,
        as a fraction (0.02 is 2%). Between 0 and 1.
    type: float
    default: 0.02
  gpu_facts:
    description:
      - Per-host GPU facts as gathered by M(llmops.datacenter.gpu_facts), keyed by host name; each value
        has C(gpu_count) and C(gpu_type) (a GPU catalog key), as in the EXAMPLES.
      - For every fleet node with facts, a warning is issued when the GPU count or type the host reports
        differs from what its pool declares. The plan is still computed from the declared fleet.
    type: dict
notes:
  - The planner uses OR-Tools (SCIP for the placement, GLOP for the lower bound) on the controller's CPU for up to O(time_limit) seconds.
  - The plan's cost and lower bound are per hour, in the currency of the fleet's C(node_hourly_cost)
    (USD for instance types from the catalog).
seealso:
  - name: Planner documentation
    description: Fleet and models file fields, plan.json, the validator's checks and exit codes of C(llmops plan).
    link: https://github.com/llmops/llmops/blob/main/collections/ansible_collections/llmops/datacenter/docs/planner.md
"""

EXAMPLES = r"""
- name: Plan the placement from the inventory's group_vars (pools, models)
  llmops.datacenter.placement_plan:
    fleet:
      pools: "{{ pools }}"
    models:
      models: "{{ models }}"
    hf_config_dir: "{{ inventory_dir }}/group_vars/all"
    time_limit: 20
    dest: "{{ playbook_dir }}/../out/plan.json"
  register: placement

- name: Show what was decided
  ansible.builtin.debug:
    var: placement.summary

- name: Replan in place after losing one node, moving as few replicas as possible
  llmops.datacenter.placement_plan:
    fleet_file: inventories/example/group_vars/all/fleet.yml
    models_file: inventories/example/group_vars/all/models.yml
    current_plan: "{{ playbook_dir }}/../out/plan.json"
    failed_nodes: [dgx-02]
    cost_tolerance: 0.02
    dest: "{{ playbook_dir }}/../out/plan.json"
  register: replanned

- name: Show the moves the rollout applies (starts, then stops)
  ansible.builtin.debug:
    var: replanned.moves

- name: Plan from files and compare the declared fleet with the hosts' real GPUs
  llmops.datacenter.placement_plan:
    fleet_file: inventories/example/group_vars/all/fleet.yml
    models_file: inventories/example/group_vars/all/models.yml
    gpu_facts:
      dgx-01: {gpu_count: 8, gpu_type: A100-SXM-80GB}
      dgx-02: {gpu_count: 7, gpu_type: A100-SXM-80GB}   # one GPU fell off the bus: warns
"""

RETURN = r"""
changed:
  description: Whether O(dest) was (or, in check mode, would be) written.
  returned: always
  type: bool
  sample: true
plan:
  description:
    - The plan, exactly as written to O(dest); see docs/planner.md for every field.
  returned: success
  type: dict
  contains:
    status:
      description: C(optimal) (proven), C(feasible) (time limit hit; see the gap), or C(partial) (something unplaced).
      type: str
      sample: optimal
    cost_per_hour:
      description: Sum of the hourly cost of the nodes the plan uses.
      type: float
      sample: 152.53
    lower_bound_per_hour:
      description: No plan for these inputs costs less than this.
      type: float
      sample: 150.1
    solve_seconds:
      description: Wall-clock time the planner took.
      type: float
      sample: 1.42
    nodes:
      description: The nodes the plan uses (name, pool, zone, gpu_type, gpus, hourly_cost).
      type: list
      elements: dict
      sample: [{"name": "h100-use1a-0", "pool": "h100-use1a", "zone": "us-east-1a", "gpu_type": "H100-SXM-80GB",
                "gpus": 8, "hourly_cost": 55.04}]
    replicas:
      description: Every replica with its node, GPU indices, GPU type, precision, tensor-parallel degree,
        memory per GPU and sustainable request rate.
      type: list
      elements: dict
      sample: [{"model": "chat-70b", "node": "h100-use1a-0", "gpu_indices": [0, 1, 2, 3],
                "gpu_type": "H100-SXM-80GB", "precision": "fp8", "tensor_parallel": 4,
                "memory_per_gpu_gib": 68.1, "capacity_requests_per_second": 9.8}]
    models:
      description: Per model the demand, capacity, worst TTFT and TPOT, replica count and whether it is served.
      type: list
      elements: dict
    unplaced:
      description: Models left out, each with the binding reason.
      type: list
      elements: dict
      sample: [{"model": "giant-405b", "reason": "no pool holds llama-3.1-405b within its SLO"}]
summary:
  description: A short account of the plan for run logs.
  returned: success
  type: dict
  contains:
    status:
      description: The plan's status.
      type: str
      sample: optimal
    cost_per_hour:
      description: Hourly cost, rounded to cents.
      type: float
      sample: 152.53
    lower_bound_per_hour:
      description: Lower bound on the hourly cost, rounded to cents.
      type: float
      sample: 150.1
    gap_percent:
      description: How far the cost may be above the optimum, in percent of the cost.
      type: float
      sample: 1.59
    nodes_per_pool:
      description: Nodes used in each pool that contributes any.
      type: dict
      sample: {"h100-use1a": 2, "dgx-rack1": 2}
    models:
      description: Per served model its replica configurations and capacity against demand.
      type: dict
      sample: {"chat-70b": "2 x H100-SXM-80GB fp8 TP4 (19.60 rps for 4 rps demand)"}
    unplaced:
      description: Unplaced model names and the reason for each.
      type: dict
      sample: {}
moves:
  description:
    - With O(current_plan), the replicas to start, then to stop, then those kept and those lost with their nodes,
      in the order the serving rollout applies them (every start before any stop).
  returned: success with O(current_plan)
  type: list
  elements: dict
  sample: [{"action": "start", "model": "chat-70b", "node": "h100-use1a-1", "gpu_indices": [0, 1],
            "precision": "fp8", "tensor_parallel": 2}]
replan:
  description: With O(current_plan), counts of kept, started, stopped and lost replicas, the cost, the cost of the
    optimiser's plan on the remaining fleet and the tolerance.
  returned: success with O(current_plan)
  type: dict
  sample: {"kept": 9, "started": 7, "stopped": 0, "lost": 7, "cost_per_hour": 97.23,
           "reference_cost_per_hour": 97.23, "cost_tolerance": 0.02}
problems:
  description: One line per problem of either input, naming the file or option, the path and the accepted values.
  returned: failure on invalid input
  type: list
  elements: str
  sample: ["models: models[2].traffic.requests_per_second: must be > 0"]
violations:
  description: Constraints the computed plan broke (a planner defect); the plan was not written.
  returned: failure when the computed plan fails validation
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.llmops.datacenter.plugins.module_utils import placement


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "fleet": {"type": "dict"},
            "fleet_file": {"type": "path"},
            "models": {"type": "dict"},
            "models_file": {"type": "path"},
            "hf_config_dir": {"type": "path"},
            "time_limit": {"type": "float", "default": 30.0},
            "dest": {"type": "path"},
            "gpu_facts": {"type": "dict"},
            "current_plan": {"type": "path"},
            "failed_nodes": {"type": "list", "elements": "str", "default": []},
            "failed_zones": {"type": "list", "elements": "str", "default": []},
            "cost_tolerance": {"type": "float", "default": 0.02},
        },
        mutually_exclusive=[("fleet", "fleet_file"), ("models", "models_file")],
        required_one_of=[("fleet", "fleet_file"), ("models", "models_file")],
        supports_check_mode=True,
    )
    if not placement.HAS_LLMOPS:
        module.fail_json(msg=missing_required_lib("llmops"), exception=placement.LLMOPS_IMPORT_ERROR)
    if not module.params["time_limit"] > 0:
        module.fail_json(
            msg=f"time_limit: must be > 0, got {module.params['time_limit']}",
            problems=[f"time_limit: must be > 0, got {module.params['time_limit']}"],
        )

    if not 0 <= module.params["cost_tolerance"] <= 1:
        message = f"cost_tolerance: must be between 0 and 1, got {module.params['cost_tolerance']}"
        module.fail_json(msg=message, problems=[message])
    if (module.params["failed_nodes"] or module.params["failed_zones"]) and not module.params["current_plan"]:
        message = "failed_nodes/failed_zones: need current_plan, the running plan to repair"
        module.fail_json(msg=message, problems=[message])
    try:
        result = placement.run_placement(module.params, check_mode=module.check_mode)
    except placement.InputError as exc:
        module.fail_json(msg="invalid placement input:\n" + "\n".join(exc.problems), problems=exc.problems)
    except placement.PlanValidationError as exc:
        module.fail_json(
            msg="the computed plan failed validation; nothing written:\n" + "\n".join(exc.violations),
            violations=exc.violations,
        )

    for warning in result.pop("warnings"):
        module.warn(warning)
    diff = result.pop("diff")
    if module._diff:
        result["diff"] = diff
    module.exit_json(**result)


if __name__ == "__main__":
    main()
