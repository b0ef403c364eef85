#!/usr/bin/python
# Copyright: llmops contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
from __future__ import annotations

DOCUMENTATION = r"""
---
module: k8s_serving
short_description: Serve the placement plan's models on Kubernetes, every object rendered from the plan
version_added: "0.1.0"
description:
  - Renders the serving spec of a placement plan (the same spec the host-mode C(model_serving) role runs)
    into Kubernetes objects and rolls them out with server-side apply.
  - "Per tenant: a Namespace, a ResourceQuota (C(requests.nvidia.com/gpu), CPU, memory), a LimitRange and
    NetworkPolicies (default deny; allow the tenant's own pods, DNS, the model store, the gateway to the model
    servers and Prometheus to their metrics)."
  - "Per model and pool: a Deployment of pods that each hold one tensor-parallel group (C(nvidia.com/gpu: <tp>)),
    pinned to the pool's nodes by their C(llmops.io/pool), C(llmops.io/gpu-type) and C(llmops.io/zone) labels,
    tolerating the GPU taint, spread over zones and nodes, probed on C(/health), with a priority class and an
    init container that fetches and verifies the model into a cache volume; a LeaderWorkerSet when a replica
    needs more GPUs than its node has."
  - "Per model and pool a Service and an HPA (C(autoscaling/v2), or C(v2beta2) before Kubernetes 1.23) or a KEDA
    ScaledObject whose bounds and per-replica target are the plan's autoscaling range; per model a Service and a
    PodDisruptionBudget (C(policy/v1), or C(v1beta1) before 1.21) that keeps enough servers for the demand."
  - An object is applied only when the live one lacks a field or value we render, or still has a field our
    field manager set that we no longer render (read from its managedFields); server defaults are ignored.
    So a second run sends no write and reports C(changed=false). Objects labelled as ours (C(app.kubernetes.io/managed-by=llmops),
    C(llmops.io/plan=<plan_name>)) that the plan no longer needs are pruned; nothing else is ever deleted.
  - A workload scaled by an autoscaler keeps its live replica count; the plan's bounds are applied to the
    autoscaler. The plan's count is used when the workload is created.
  - "Invalid input fails the task with one line per problem naming the field and the accepted values, before
    any connection to the cluster."
author:
  - llmops contributors
requirements:
  - the C(llmops) Python package on the controller (C(pip install -e .) in the project)
  - the C(kubernetes) Python client on the controller (as for M(kubernetes.core.k8s))
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
attributes:
  check_mode:
    support: full
    description: Every change and prune is sent as a server-side dry run (the server validates and admits it);
      nothing is written. Objects in namespaces that do not exist yet are reported as created without a dry run.
  diff_mode:
    support: full
    description: Shows, per object that changes, the live object and the live object with the rendered fields
      laid over it (C(null) before a create or after a prune), without server bookkeeping fields and status.
  platform:
    platforms: posix
    description: "Runs on the controller (C(hosts: localhost), C(connection: local))."
options:
  plan:
    description:
      - The placement plan (the content of C(plan.json) written by M(llmops.datacenter.placement_plan)).
      - Mutually exclusive with O(plan_file); one of the two is required.
    type: dict
  plan_file:
    description: Path to C(plan.json) on the controller.
    type: path
  models:
    description:
      - The models document, with top-level keys C(models) and C(tenants) (the content of a models file).
      - Every placed model needs an C(artifact) (name, version) there.
      - Mutually exclusive with O(models_file); one of the two is required.
    type: dict
  models_file:
    description: Path to a models file (YAML) on the controller.
    type: path
  hf_config_dir:
    description: Folder that relative C(hf_config) paths in O(models) are resolved against.
    type: path
  device:
    description:
      - C(cuda) requests C(nvidia.com/gpu) per pod and runs the GPU engine arguments; C(cpu) (the lab) requests
        no GPUs and runs vLLM's CPU build (C(--enforce-eager), a KV cache in GiB).
    type: str
    choices: [cuda, cpu]
    default: cuda
  model_cache_root:
    description: Where the model cache volume is mounted in the pods; the model lies in C(<root>/<artifact>/<version>).
    type: str
    default: /var/lib/llmops/models
  kubernetes_version:
    description:
      - The cluster's Kubernetes version (for example C(1.33) or C(v1.20.2)); it chooses the API versions.
      - Without it the version is read from the cluster. Versions before 1.20 are refused.
    type: str
  image:
    description: The vLLM serving image (the CUDA build, or in the lab the CPU build pushed to the lab mirror).
    type: str
    required: true
  fetch_image:
    description: Image of the model-fetch init container; default O(image).
    type: str
  fetch_command:
    description:
      - The init container's command, before C(--name <artifact> --version <version> --cache-dir <root>).
      - It must exit 0 only when C(<root>/<artifact>/<version>) holds every file of the artifact's manifest with
        its sha256 (the contract in docs/kubernetes-serving.md).
    type: list
    elements: str
    default: [llmops, model, fetch]
  model_store_secret:
    description: Secret in each tenant namespace whose keys become the init container's environment (the
      object store's endpoint, bucket and read-only key). Empty string for none (for example with IRSA).
    type: str
    default: llmops-model-store
  service_account:
    description: Service account of the model server pods (on EKS C(model-server), bound to the model store's
      read-only role). Default the namespace's default account.
    type: str
  plan_name:
    description: Value of the C(llmops.io/plan) label on every object; pruning only touches objects with it.
    type: str
    default: default
  autoscaler:
    description: C(hpa) (custom metrics from prometheus-adapter), C(keda) (KEDA's Prometheus scaler) or C(none).
    type: str
    choices: [hpa, keda, none]
    default: hpa
  scaling_metric:
    description: Scale on requests in flight per server (C(in_flight)) or requests per second per server.
    type: str
    choices: [in_flight, requests_per_second]
    default: in_flight
  prometheus_url:
    description: Prometheus that KEDA queries (O(autoscaler=keda)).
    type: str
    default: http://prometheus.monitoring.svc:9090
  default_namespace:
    description: Namespace of models without a tenant.
    type: str
    default: llmops-serving
  render_namespaces:
    description: Create the tenant namespaces; C(false) where something else owns them (Pulumi's ClusterAddons on EKS).
    type: bool
    default: true
  gateway_namespace:
    description: Namespace of the gateway allowed to reach the model servers (on clusters before 1.21 label it
      C(llmops.io/namespace=<name>)).
    type: str
    default: llmops-gateway
  gateway_cidrs:
    description: Address ranges outside the cluster also allowed to reach the model servers (the lab's gateway).
    type: list
    elements: str
  dns_policy:
    description:
      - The pods' C(dnsPolicy). C(ClusterFirst) uses the cluster's DNS addon; C(Default) the node's
        C(resolv.conf), for a cluster without a DNS addon (the model fetch step must resolve the store's host name).
    type: str
    choices: [ClusterFirst, Default]
    default: ClusterFirst
  monitoring_namespace:
    description: Namespace of the Prometheus allowed to scrape the model servers.
    type: str
    default: monitoring
  monitoring_cidrs:
    description:
      - Address ranges outside the cluster also allowed to scrape the model servers (a Prometheus on a host
        that scrapes pod IPs, as the prometheus role's C(prometheus_kubernetes_pods) does).
    type: list
    elements: str
  model_store_egress:
    description: Where the init container may connect to fetch models; default any address on port 443.
    type: list
    elements: dict
    suboptions:
      cidr:
        description: Address range of the object store.
        type: str
        required: true
      ports:
        description: TCP ports.
        type: list
        elements: int
        required: true
  cpu_per_gpu:
    description: CPU cores a server pod requests per GPU (C(device=cuda)).
    type: float
    default: 4
  memory_gib_per_gpu:
    description: Memory (GiB) a server pod requests and is limited to per GPU (C(device=cuda)).
    type: int
    default: 32
  cpu_device_cores:
    description: CPU cores a server pod requests with C(device=cpu).
    type: float
    default: 2
  cpu_device_memory_gib:
    description: Memory (GiB) of a server pod with C(device=cpu).
    type: int
    default: 4
  model_cache_size_gib:
    description: Size limit of the model cache volume; default none.
    type: int
  field_manager:
    description: The server-side apply field manager.
    type: str
    default: llmops
  force_conflicts:
    description: Take over fields another field manager owns instead of failing.
    type: bool
    default: false
  prune:
    description: Delete objects with our labels that the plan no longer needs.
    type: bool
    default: true
  prune_namespaces:
    description: Also delete namespaces of tenants that are gone, with everything in them.
    type: bool
    default: false
  wait:
    description: Wait until every Deployment and LeaderWorkerSet reports all its replicas updated and available.
    type: bool
    default: true
  wait_timeout:
    description: Seconds to wait for the rollout.
    type: int
    default: 900
  return_objects:
    description: Return the rendered objects in RV(rendered).
    type: bool
    default: false
notes:
  - The HPA's metrics (C(vllm_requests_in_flight), C(vllm_requests_per_second)) come from a custom-metrics
    adapter over vLLM's own metrics; KEDA queries Prometheus directly. See docs/kubernetes-serving.md.
seealso:
  - module: llmops.datacenter.placement_plan
  - module: kubernetes.core.k8s
  - name: Serving on Kubernetes
    description: What is rendered, how API versions are chosen, and what was checked without a cluster.
    link: https://github.com/llmops/llmops/blob/main/collections/ansible_collections/llmops/datacenter/docs/kubernetes-serving.md
"""

EXAMPLES = r"""
- name: Serve the plan on the cluster
  llmops.datacenter.k8s_serving:
    plan_file: "{{ playbook_dir }}/../out/plan.json"
    models:
      models: "{{ models }}"
      tenants: "{{ tenants | default([]) }}"
    image: registry.example.com/llmops/vllm:0.32.0
    kubeconfig: ~/.kube/config
    plan_name: prod
  register: serving

- name: Show what would change after a replan, without touching the cluster
  llmops.datacenter.k8s_serving:
    plan_file: out/plan.json
    models_file: inventories/example/group_vars/all/models.yml
    image: registry.example.com/llmops/vllm:0.32.0
    autoscaler: keda
    plan_name: prod
  check_mode: true
  diff: true

- name: The lab (CPU vLLM, Kubernetes 1.20)
  llmops.datacenter.k8s_serving:
    plan_file: out/plan.json
    models_file: inventories/lab/group_vars/all/models.yml
    device: cpu
    kubernetes_version: v1.20.2
    image: mirror.lab:5000/llmops/vllm-cpu:0.32.0
    gateway_cidrs: [10.89.0.0/24]
    model_store_egress:
      - {cidr: 10.89.0.0/24, ports: [8333]}
    plan_name: lab
"""

RETURN = r"""
changed:
  description: Whether any object was (or, in check mode, would be) created, updated or pruned.
  returned: always
  type: bool
created:
  description: Objects created, as C(Kind namespace/name).
  returned: success
  type: list
  elements: str
  sample: ["Deployment team-a/chat-l4-a"]
updated:
  description: Objects whose live state differed from the rendering.
  returned: success
  type: list
  elements: str
  sample: ["HorizontalPodAutoscaler team-a/chat-l4-a"]
unchanged:
  description: How many rendered objects already matched.
  returned: success
  type: int
  sample: 36
pruned:
  description: Objects with our labels that the plan no longer needs, deleted (dependents first).
  returned: success
  type: list
  elements: str
  sample: ["HorizontalPodAutoscaler team-a/retired-l4-a", "Deployment team-a/retired-l4-a"]
kept_namespaces:
  description: Namespaces of ours that no tenant needs any more, left in place (see O(prune_namespaces)).
  returned: success
  type: list
  elements: str
  sample: []
ready:
  description: Per Deployment or LeaderWorkerSet its rollout state when the wait ended.
  returned: success with O(wait)
  type: dict
  sample: {"Deployment team-a/chat-l4-a": "1/1 available, 1 updated"}
kubernetes_version:
  description: The version the objects were rendered for.
  returned: success
  type: str
  sample: v1.20.2
objects:
  description: Every rendered object's apiVersion, kind, namespace and name, in apply order.
  returned: success
  type: list
  elements: dict
  sample: [{"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "team-a", "name": "chat-l4-a"}]
rendered:
  description: The rendered objects themselves.
  returned: with O(return_objects)
  type: list
  elements: dict
problems:
  description: One line per invalid input or per object the rollout failed on, naming it.
  returned: failure
  type: list
  elements: str
  sample: ["tenants.team-a.gpu_quota: 1 GPUs, but the plan gives the tenant 2"]
"""

import copy

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.kubernetes.core.plugins.module_utils.args_common import AUTH_ARG_SPEC
from ansible_collections.llmops.datacenter.plugins.module_utils import k8s_serving


def argument_spec() -> dict:
    spec = copy.deepcopy(AUTH_ARG_SPEC)
    spec.update(
        plan={"type": "dict"},
        plan_file={"type": "path"},
        models={"type": "dict"},
        models_file={"type": "path"},
        hf_config_dir={"type": "path"},
        device={"type": "str", "choices": ["cuda", "cpu"], "default": "cuda"},
        model_cache_root={"type": "str", "default": "/var/lib/llmops/models"},
        kubernetes_version={"type": "str"},
        image={"type": "str", "required": True},
        fetch_image={"type": "str"},
        fetch_command={"type": "list", "elements": "str", "default": ["llmops", "model", "fetch"]},
        model_store_secret={"type": "str", "default": "llmops-model-store"},
        service_account={"type": "str"},
        plan_name={"type": "str", "default": "default"},
        autoscaler={"type": "str", "choices": ["hpa", "keda", "none"], "default": "hpa"},
        dns_policy={"type": "str", "choices": ["ClusterFirst", "Default"], "default": "ClusterFirst"},
        scaling_metric={
            "type": "str",
            "choices": ["in_flight", "requests_per_second"],
            "default": "in_flight",
        },
        prometheus_url={"type": "str", "default": "http://prometheus.monitoring.svc:9090"},
        default_namespace={"type": "str", "default": "llmops-serving"},
        render_namespaces={"type": "bool", "default": True},
        gateway_namespace={"type": "str", "default": "llmops-gateway"},
        gateway_cidrs={"type": "list", "elements": "str"},
        monitoring_cidrs={"type": "list", "elements": "str"},
        monitoring_namespace={"type": "str", "default": "monitoring"},
        model_store_egress={
            "type": "list",
            "elements": "dict",
            "options": {
                "cidr": {"type": "str", "required": True},
                "ports": {"type": "list", "elements": "int", "required": True},
            },
        },
        cpu_per_gpu={"type": "float", "default": 4.0},
        memory_gib_per_gpu={"type": "int", "default": 32},
        cpu_device_cores={"type": "float", "default": 2.0},
        cpu_device_memory_gib={"type": "int", "default": 4},
        model_cache_size_gib={"type": "int"},
        field_manager={"type": "str", "default": "llmops"},
        force_conflicts={"type": "bool", "default": False},
        prune={"type": "bool", "default": True},
        prune_namespaces={"type": "bool", "default": False},
        wait={"type": "bool", "default": True},
        wait_timeout={"type": "int", "default": 900},
        return_objects={"type": "bool", "default": False},
    )
    return spec


def main() -> None:
    module = AnsibleModule(
        argument_spec=argument_spec(),
        mutually_exclusive=[("plan", "plan_file"), ("models", "models_file")],
        required_one_of=[("plan", "plan_file"), ("models", "models_file")],
        supports_check_mode=True,
    )
    if not k8s_serving.HAS_LLMOPS:
        module.fail_json(msg=missing_required_lib("llmops"), exception=k8s_serving.LLMOPS_IMPORT_ERROR)
    if not k8s_serving.HAS_KUBERNETES:
        module.fail_json(
            msg=missing_required_lib("kubernetes"), exception=k8s_serving.KUBERNETES_IMPORT_ERROR
        )
    params = dict(module.params)
    if params["model_store_secret"] == "":
        params["model_store_secret"] = None
    if params["wait_timeout"] <= 0:
        problem = f"wait_timeout: must be > 0, got {params['wait_timeout']}"
        module.fail_json(msg=problem, problems=[problem])

    try:
        result = k8s_serving.run(params, check_mode=module.check_mode)
    except k8s_serving.InvalidInput as error:
        module.fail_json(msg="invalid serving input:\n" + "\n".join(error.problems), problems=error.problems)
    except k8s_serving.RolloutError as error:
        module.fail_json(
            msg="rollout failed:\n" + "\n".join(error.problems), problems=error.problems, **error.result
        )

    diff = result.pop("diff")
    if result["rendered"] is None:
        result.pop("rendered")
    if module._diff:
        result["diff"] = diff
    module.exit_json(**result)


if __name__ == "__main__":
    main()
