#!/usr/bin/python
# Copyright: llmops contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
from __future__ import annotations

DOCUMENTATION = r"""
---
module: kubernetes_device_plugin
short_description: Render the NVIDIA device plugin (RuntimeClass and DaemonSet) for a Kubernetes version
version_added: "0.1.0"
description:
  - Renders, on the controller, the objects that make a cluster's GPUs schedulable as
    C(nvidia.com/gpu), namely a RuntimeClass (default C(nvidia), handler C(nvidia), the containerd runtime
    M(llmops.datacenter.container_runtime_nvidia) configures) and the device plugin's DaemonSet, in the
    API versions the target Kubernetes version serves.
  - The DaemonSet runs only on nodes carrying O(node_selector), tolerates the GPU taint O(gpu_taint_key),
    runs at C(system-node-critical) priority with the C(nvidia) runtime, and pulls O(image) from the site mirror.
  - The objects are checked against the API's schemas strictly before they are returned (C(kubernetes-validate)
    for current releases, the vendored 1.20.2 schemas for the lab's release); a rendering that fails
    fails the task. Apply them with C(kubernetes.core.k8s) (see EXAMPLES and C(playbooks/tasks/kubernetes_device_plugin.yml)).
  - Renders only; RV(changed) is always C(false).
author:
  - llmops contributors
requirements:
  - the C(llmops) Python package on the controller (C(pip install -e .) in the project)
attributes:
  check_mode:
    support: full
    description: Renders and validates the same way in check mode; it never changes anything.
  diff_mode:
    support: none
    description: Nothing is changed, so there is no diff (the k8s task that applies the objects has one).
  platform:
    platforms: posix
    description: "Runs on the controller (C(delegate_to: localhost))."
options:
  kubernetes_version:
    description: The cluster's release (C(v1.20.2), C(1.33)); chooses the API versions and the schemas.
    type: str
    required: true
  image:
    description:
      - The device plugin image in the site mirror, pinned by tag or digest, for example
        C(mirror.example:5000/nvidia/k8s-device-plugin:v0.17.1).
    type: str
    required: true
  namespace:
    description: Namespace of the DaemonSet.
    type: str
    default: kube-system
  node_selector:
    description: Labels a node must carry for the plugin (and pods of the RuntimeClass) to run there. Must not be empty.
    type: dict
    default: {"nvidia.com/gpu.present": "true"}
  runtime_class:
    description: Name of the RuntimeClass created and used by the plugin's pods.
    type: str
    default: nvidia
  runtime_handler:
    description: The container runtime's name for the NVIDIA runtime (the C(runtime_name) of M(llmops.datacenter.container_runtime_nvidia)).
    type: str
    default: nvidia
  gpu_taint_key:
    description: Key of the taint GPU nodes carry; the plugin tolerates it with effect C(NoSchedule).
    type: str
    default: nvidia.com/gpu
  image_pull_secret:
    description: Name of a Secret in O(namespace) with the mirror's credentials, when nodes' containerd has none.
    type: str
seealso:
  - name: Kubernetes layer documentation
    description: The device plugin, what the lab runs (no GPUs) and what production gets.
    link: https://github.com/llmops/llmops/blob/main/collections/ansible_collections/llmops/datacenter/docs/kubernetes.md
"""

EXAMPLES = r"""
- name: Render the device plugin for the cluster's version
  llmops.datacenter.kubernetes_device_plugin:
    kubernetes_version: v1.20.2
    image: lab-control:5000/nvidia/k8s-device-plugin:v0.17.1
  delegate_to: localhost
  register: device_plugin

- name: Apply it
  kubernetes.core.k8s:
    kubeconfig: "{{ playbook_dir }}/../out/lab/kubeconfig"
    definition: "{{ device_plugin.objects }}"
    apply: true
    server_side_apply:
      field_manager: llmops
  delegate_to: localhost
"""

RETURN = r"""
changed:
  description: Always C(false).
  returned: always
  type: bool
  sample: false
objects:
  description: The RuntimeClass and the DaemonSet, in that order, ready for C(kubernetes.core.k8s).
  returned: success
  type: list
  elements: dict
  sample: [{"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": "nvidia"}, "handler": "nvidia"}]
problems:
  description: Every problem with the options (naming the option and the accepted values) or with the rendering.
  returned: failure
  type: list
  elements: str
  sample: ["image: 'k8s-device-plugin' must be a full, pinned reference in the mirror (registry[:port]/path:tag or @sha256:digest)"]
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.llmops.datacenter.plugins.module_utils import kubernetes_cluster


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "kubernetes_version": {"type": "str", "required": True},
            "image": {"type": "str", "required": True},
            "namespace": {"type": "str", "default": "kube-system"},
            "node_selector": {"type": "dict", "default": {"nvidia.com/gpu.present": "true"}},
            "runtime_class": {"type": "str", "default": "nvidia"},
            "runtime_handler": {"type": "str", "default": "nvidia"},
            "gpu_taint_key": {"type": "str", "default": "nvidia.com/gpu"},
            "image_pull_secret": {"type": "str"},
        },
        supports_check_mode=True,
    )
    if not kubernetes_cluster.HAS_LLMOPS:
        module.fail_json(msg=missing_required_lib("llmops"), exception=kubernetes_cluster.LLMOPS_IMPORT_ERROR)
    try:
        result = kubernetes_cluster.run_device_plugin(module.params)
    except kubernetes_cluster.InputError as exc:
        module.fail_json(msg="\n".join(exc.problems), problems=exc.problems)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
