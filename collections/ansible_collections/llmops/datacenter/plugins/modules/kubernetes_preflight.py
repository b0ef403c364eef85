#!/usr/bin/python
# Copyright: llmops contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
from __future__ import annotations

DOCUMENTATION = r"""
---
module: kubernetes_preflight
short_description: Check a Kubernetes cluster's declaration before any host changes and return it normalized
version_added: "0.1.0"
description:
  - Runs on the controller, before the C(kubernetes) role touches a host. Checks the topology, the
    control plane endpoint, the pod and service ranges against each other and the node network, the
    Kubernetes version against the site mirror's bundle and the versions kubeadm can be configured for,
    and (with O(upgrade_from)) the upgrade step.
  - "Every problem is reported in one run, one line each in RV(problems), naming the option (and the
    host) and the accepted values, for example
    C(control_plane_endpoint: required with 2 control planes (cp-1, cp-2): a load-balanced address ...)."
  - On success returns the normalized cluster with the API versions to render for its Kubernetes
    version (kubeadm configuration, PodDisruptionBudget, HorizontalPodAutoscaler, RuntimeClass).
  - Changes nothing anywhere; RV(changed) is always C(false).
author:
  - llmops contributors
requirements:
  - the C(llmops) Python package on the controller (C(pip install -e .) in the project)
attributes:
  check_mode:
    support: full
    description: Runs the same checks in check mode; it never changes anything.
  diff_mode:
    support: none
    description: Nothing is changed, so there is no diff.
  platform:
    platforms: posix
    description: "Runs on the controller (C(delegate_to: localhost), C(run_once: true))."
options:
  kubernetes_version:
    description:
      - The release to install or upgrade to, C(v1.20.2), C(1.33.1) or C(1.33).
      - Must lie in the range whose kubeadm configuration API is known (1.20 to 1.35).
      - With O(bundle), must be the release the bundle holds; a minor version alone (C(1.20)) is completed
        from the bundle.
    type: str
    required: true
  control_plane_hosts:
    description:
      - Node names of the control planes (normally C(groups['kube_control_plane'])). The first one runs C(kubeadm init).
      - Each must be a DNS-1123 subdomain (lowercase letters, digits, C(-) and C(.)).
    type: list
    elements: str
    required: true
  worker_hosts:
    description:
      - Node names of the workers (normally C(groups['kube_workers'])). Workers need at least one control plane.
    type: list
    elements: str
    default: []
  schedulable_control_planes:
    description:
      - Control planes that are also listed in O(worker_hosts) on purpose (they run workloads).
        Any other host in both lists is a problem.
    type: list
    elements: str
    default: []
  control_plane_endpoint:
    description:
      - The address in front of the control planes, C(host) or C(host:port) (port 6443 when omitted),
        a DNS name or an IP address. Required with two or more control planes.
    type: str
  pod_subnet:
    description:
      - The pod network, one CIDR (C(10.244.0.0/16)). Must not overlap O(service_subnet), O(node_networks)
        or any of O(node_addresses), and must hold a /24 (IPv6 /64) per node.
    type: str
    required: true
  service_subnet:
    description:
      - The Service IP range, one CIDR of the same family as O(pod_subnet), at most 20 host bits (C(10.96.0.0/12)).
    type: str
    required: true
  node_addresses:
    description:
      - Each node's address on the node network, keyed by node name (C(ansible_default_ipv4.address) or the
        inventory's address). Every key must be a declared node; no address may lie in O(pod_subnet) or O(service_subnet).
    type: dict
    default: {}
  node_networks:
    description:
      - The node networks as CIDRs, checked against O(pod_subnet) and O(service_subnet) like O(node_addresses).
    type: list
    elements: str
    default: []
  bundle:
    description:
      - Path on the controller to the site mirror's C(bundle.json) (written by C(scripts/kube-build.sh)). Its
        C(kubernetes_version) must match O(kubernetes_version); its binaries (with sha256) and images are returned.
    type: path
  upgrade_from:
    description:
      - The running release (C(v1.20.2)), for an upgrade. O(kubernetes_version) must then be a full release that
        is not older and at most one minor version newer; a downgrade or a skipped minor fails naming both versions.
    type: str
seealso:
  - name: Kubernetes layer documentation
    description: Inventory groups, variables, the mirror, versions, what the lab runs and what production gets.
    link: https://github.com/llmops/llmops/blob/main/collections/ansible_collections/llmops/datacenter/docs/kubernetes.md
"""

EXAMPLES = r"""
- name: Check the cluster before any host changes
  llmops.datacenter.kubernetes_preflight:
    kubernetes_version: v1.20.2
    control_plane_hosts: "{{ groups['kube_control_plane'] }}"
    worker_hosts: "{{ groups['kube_workers'] | default([]) }}"
    pod_subnet: 10.244.0.0/16
    service_subnet: 10.96.0.0/12
    node_addresses:
      lab-control: 10.89.0.2
      lab-gpu-1: 10.89.0.3
      lab-gpu-2: 10.89.0.4
    bundle: "{{ playbook_dir }}/../.cache/kubernetes-1.20.2/bundle.json"
  run_once: true
  delegate_to: localhost
  register: kubernetes_cluster

- name: Three control planes behind a load balancer
  llmops.datacenter.kubernetes_preflight:
    kubernetes_version: "1.33.1"
    control_plane_hosts: [cp-1, cp-2, cp-3]
    worker_hosts: [dgx-01, dgx-02]
    control_plane_endpoint: k8s-api.example.com:6443
    pod_subnet: 10.244.0.0/16
    service_subnet: 10.96.0.0/12
    node_networks: [192.168.10.0/24]
  delegate_to: localhost

- name: Refuse an upgrade that skips a minor version
  llmops.datacenter.kubernetes_preflight:
    kubernetes_version: v1.34.2
    upgrade_from: v1.33.1
    control_plane_hosts: [cp-1]
    pod_subnet: 10.244.0.0/16
    service_subnet: 10.96.0.0/12
  delegate_to: localhost
"""

RETURN = r"""
changed:
  description: Always C(false); nothing is changed.
  returned: always
  type: bool
  sample: false
cluster:
  description: The cluster, normalized.
  returned: success
  type: dict
  contains:
    kubernetes_version:
      description: The release, with a leading C(v) (completed from the bundle when only a minor was given).
      type: str
      sample: v1.20.2
    minor:
      description: Major and minor version.
      type: str
      sample: "1.20"
    kubeadm_api_version:
      description: The kubeadm configuration API to render (v1beta2 for 1.20-1.21, v1beta3 for 1.22-1.30, v1beta4 from 1.31).
      type: str
      sample: kubeadm.k8s.io/v1beta2
    api_versions:
      description: The API version to render per kind for this release.
      type: dict
      sample: {"kubeadm": "kubeadm.k8s.io/v1beta2", "PodDisruptionBudget": "policy/v1beta1",
               "HorizontalPodAutoscaler": "autoscaling/v2beta2", "RuntimeClass": "node.k8s.io/v1", "DaemonSet": "apps/v1"}
    control_plane_hosts:
      description: The control planes, in the given order.
      type: list
      elements: str
      sample: [lab-control]
    worker_hosts:
      description: The workers, in the given order.
      type: list
      elements: str
      sample: [lab-gpu-1, lab-gpu-2]
    first_control_plane:
      description: The control plane that runs C(kubeadm init) (and C(kubeadm upgrade apply)).
      type: str
      sample: lab-control
    control_plane_endpoint:
      description: C(host:port) of the endpoint, or null without one.
      type: str
      sample: k8s-api.example.com:6443
    pod_subnet:
      description: The pod network in canonical form.
      type: str
      sample: 10.244.0.0/16
    service_subnet:
      description: The Service range in canonical form.
      type: str
      sample: 10.96.0.0/12
    nodes:
      description: Every node once, with its roles and its address (null when not given).
      type: list
      elements: dict
      sample: [{"name": "lab-control", "roles": ["control-plane"], "address": "10.89.0.2"}]
    bundle:
      description: The bundle (path, kubernetes_version, etcd_image_tag, pause_image_tag, binaries by name with
        path and sha256, images), or null without O(bundle).
      type: dict
      sample: {"kubernetes_version": "v1.20.2", "etcd_image_tag": "3.4.23-0", "pause_image_tag": "3.2",
               "binaries": {"kubelet": {"path": "/srv/bundle/bin/kubelet", "sha256": "3b1f..."}}}
    upgrade:
      description: With O(upgrade_from), C(from), C(to) and C(step) (C(none), C(patch) or C(minor)); else null.
      type: dict
      sample: {"from": "v1.20.2", "to": "v1.21.14", "step": "minor"}
problems:
  description: Every problem, one line each naming the option (and host) and the accepted values.
  returned: failure on invalid input
  type: list
  elements: str
  sample: ["control_plane_endpoint: required with 2 control planes (cp-1, cp-2): a load-balanced address in
           front of all of them, host or host:port"]
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.llmops.datacenter.plugins.module_utils import kubernetes_cluster


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "kubernetes_version": {"type": "str", "required": True},
            "control_plane_hosts": {"type": "list", "elements": "str", "required": True},
            "worker_hosts": {"type": "list", "elements": "str", "default": []},
            "schedulable_control_planes": {"type": "list", "elements": "str", "default": []},
            "control_plane_endpoint": {"type": "str"},
            "pod_subnet": {"type": "str", "required": True},
            "service_subnet": {"type": "str", "required": True},
            "node_addresses": {"type": "dict", "default": {}},
            "node_networks": {"type": "list", "elements": "str", "default": []},
            "bundle": {"type": "path"},
            "upgrade_from": {"type": "str"},
        },
        supports_check_mode=True,
    )
    if not kubernetes_cluster.HAS_LLMOPS:
        module.fail_json(msg=missing_required_lib("llmops"), exception=kubernetes_cluster.LLMOPS_IMPORT_ERROR)
    try:
        result = kubernetes_cluster.run_preflight(module.params)
    except kubernetes_cluster.InputError as exc:
        module.fail_json(
            msg=f"the cluster declaration has {len(exc.problems)} problem(s):\n" + "\n".join(exc.problems),
            problems=exc.problems,
        )
    module.exit_json(**result)


if __name__ == "__main__":
    main()
