#!/usr/bin/python
# Copyright: llmops maintainers
# Apache License 2.0 (see galaxy.yml)

DOCUMENTATION = r"""
---
module: gpu_facts
short_description: Report a host's NVIDIA GPUs, driver, topology and health as facts
version_added: "0.1.0"
description:
  - Runs C(nvidia-smi --query-gpu=index,name,uuid,pci.bus_id,memory.total,driver_version,compute_cap,
    mig.mode.current,persistence_mode,ecc.mode.current,ecc.errors.uncorrected.volatile.total,
    retired_pages.pending,temperature.gpu --format=csv,noheader,nounits),
    C(nvidia-smi --query-remapped-rows), plain C(nvidia-smi) (for the CUDA version) and
    C(nvidia-smi topo -m), and reads Xid events from the kernel log (best effort).
  - Returns C(ansible_facts.llmops_gpus) with each GPU mapped to the planner's GPU type name
    (for example C(H100-SXM-80GB)), so a placement plan can be checked against the real fleet.
  - A host without an NVIDIA driver or device reports zero GPUs and says why; it fails only
    when O(required=true) or O(expected_count) declares GPUs.
  - Runs on the target with the Python standard library only.
author:
  - llmops maintainers
options:
  nvidia_smi_path:
    description: Path to nvidia-smi. Looked up on PATH when not given.
    type: path
  required:
    description: Fail when the host has no usable NVIDIA GPU.
    type: bool
    default: false
  expected_count:
    description:
      - GPUs the inventory declares for this host. Zero GPUs found then fails; another count warns.
    type: int
  expected_type:
    description: Planner GPU type the inventory declares; other GPU types found are warned about.
    type: str
    choices: [H100-SXM-80GB, H200-SXM-141GB, B200-180GB, A100-SXM-80GB, A100-SXM-40GB, L40S-48GB, A10G-24GB, L4-24GB]
  collect_topology:
    description: Parse C(nvidia-smi topo -m) into the link matrix and CPU/NUMA affinity.
    type: bool
    default: true
  xid_source:
    description:
      - Where Xid events are read from. Best effort; the kernel ring buffer wraps and
        C(dmesg) may be restricted for unprivileged users, so no events is not proof of health.
    type: str
    choices: [dmesg, journal, none]
    default: dmesg
  simulate:
    description:
      - Report these GPUs instead of asking nvidia-smi, flagged C(simulated=true); for lab hosts
        without GPUs. Either a mapping C({count, type}) or a list of mappings with C(type) and
        optionally C(name), C(memory_mib), C(pci_bus_id), C(uuid), C(driver_version), C(mig_mode).
      - Usually fed from the inventory variable C(llmops_simulated_gpus).
    type: raw
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
    details: Reads only; there is nothing to diff.
  facts:
    support: full
notes:
  - Only read-only commands are run, so check mode returns the same facts.
"""

EXAMPLES = r"""
- name: Gather GPU facts, failing when a declared GPU host has none
  llmops.datacenter.gpu_facts:
    expected_count: 8
    expected_type: H100-SXM-80GB

- name: Simulate two L4 GPUs on a lab host
  llmops.datacenter.gpu_facts:
    simulate: "{{ llmops_simulated_gpus }}"
  when: llmops_simulated_gpus is defined

- name: Show what the host has
  ansible.builtin.debug:
    msg: "{{ ansible_facts.llmops_gpus.count }} x {{ ansible_facts.llmops_gpus.gpu_types }}"
"""

RETURN = r"""
ansible_facts:
  description: Facts set on the host.
  returned: always
  type: dict
  contains:
    llmops_gpus:
      description: The host's GPUs.
      type: dict
      contains:
        simulated: {description: True when the GPUs come from O(simulate)., type: bool}
        present: {description: At least one GPU was found., type: bool}
        count: {description: Number of GPUs., type: int, sample: 8}
        reason: {description: Why no GPU was found., type: str, sample: No devices were found}
        driver_version: {description: NVIDIA driver version., type: str, sample: 580.159.03}
        cuda_version: {description: Highest CUDA version the driver supports., type: str, sample: "13.0"}
        gpu_types: {description: Count per planner GPU type (C(unknown) for others)., type: dict, sample: {H100-SXM-80GB: 8}}
        unknown_gpu_names: {description: Product names the planner's catalog does not know., type: list, elements: str}
        gpus:
          description: One entry per GPU.
          type: list
          elements: dict
          sample:
            - index: 0
              name: NVIDIA H200
              planner_gpu_type: H200-SXM-141GB
              uuid: GPU-e0c3f0a2-7b5d-4c61-9a8e-3f2b1d0c9e87
              pci_bus_id: "00000000:19:00.0"
              memory_mib: 143771
              compute_capability: "9.0"
              mig_mode: Disabled
              persistence_mode: true
              ecc_mode: Enabled
              temperature_c: 31
              health: {ecc_uncorrected_volatile: 0, retired_pages_pending: null,
                       remapped_rows_pending: false, remapped_rows_failure: false}
        topology:
          description: Parsed C(nvidia-smi topo -m); null when not collected or no GPU.
          type: dict
          sample:
            gpus: [GPU0, GPU1]
            matrix: {GPU0: {GPU1: NV18}, GPU1: {GPU0: NV18}}
            affinity: {GPU0: {cpu_affinity: "0-55,112-167", numa_affinity: "0", gpu_numa_id: null}}
            nics: {NIC0: mlx5_0}
            nvlink: true
        health:
          description:
            - Problems to act on, and the Xid events read (flagged best effort).
            - An installed driver that does not answer (C(NVIDIA-SMI has failed because it couldn't
              communicate with the NVIDIA driver)) makes the host unhealthy, with that reason; a host
              without nvidia-smi or without devices is not unhealthy, it has no GPU.
          type: dict
          sample: {healthy: true, problems: [], xid: {source: dmesg, best_effort: true, available: true, events: []}}
fleet_mismatches:
  description: Differences between O(expected_count)/O(expected_type) and the host.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.llmops.datacenter.plugins.module_utils.gpu_facts import (
    PLANNER_GPU_TYPES,
    GpuFactsError,
    build_facts,
    collect,
    fleet_mismatches,
    simulated_gpus,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            nvidia_smi_path=dict(type="path"),
            required=dict(type="bool", default=False),
            expected_count=dict(type="int"),
            expected_type=dict(type="str", choices=sorted(PLANNER_GPU_TYPES)),
            collect_topology=dict(type="bool", default=True),
            xid_source=dict(type="str", default="dmesg", choices=["dmesg", "journal", "none"]),
            simulate=dict(type="raw"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    try:
        if params["simulate"] is not None:
            facts = build_facts(simulated_gpus(params["simulate"]), simulated=True)
        else:
            nvidia_smi = params["nvidia_smi_path"] or module.get_bin_path("nvidia-smi")
            facts = collect(
                lambda argv: module.run_command(argv),
                nvidia_smi,
                collect_topology=params["collect_topology"],
                xid_source=params["xid_source"],
            )
    except GpuFactsError as error:
        module.fail_json(msg=str(error))

    declared = params["required"] or bool(params["expected_count"])
    if declared and facts["count"] == 0:
        field = "required" if params["required"] else "expected_count"
        module.fail_json(
            msg=f"no NVIDIA GPU found ({facts['reason']}) but {field} declares this a GPU host",
            ansible_facts={"llmops_gpus": facts},
        )
    mismatches = fleet_mismatches(facts, params["expected_count"], params["expected_type"])
    for mismatch in mismatches:
        module.warn(mismatch)
    for problem in facts["health"]["problems"]:
        module.warn(problem)
    module.exit_json(changed=False, ansible_facts={"llmops_gpus": facts}, fleet_mismatches=mismatches)


if __name__ == "__main__":
    main()
