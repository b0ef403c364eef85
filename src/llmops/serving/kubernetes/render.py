"""Kubernetes objects from the serving spec: a pure function, no cluster needed.

`render_objects(spec, kubernetes_version, options)` returns plain dicts (apiVersion, kind,
metadata, spec) in apply order. Nothing here re-derives a planner decision:

* one workload per model and pool (and precision/TP, should a pool mix them): a Deployment whose
  pods each hold one tensor-parallel group (`nvidia.com/gpu: <tp>`), pinned to the pool's nodes by
  the labels the Pulumi node pools set (`llmops.io/pool`, `llmops.io/gpu-type`, `llmops.io/zone`),
  or a LeaderWorkerSet when a replica needs more GPUs than its node has;
* replicas, autoscaling bounds and per-replica targets are the plan's (`ModelRoute.autoscaling`);
  a model's range is split over its pools in proportion to the planned replicas, as the planner
  scaled it;
* one PodDisruptionBudget per model keeps as many servers as serve its demand whichever remain
  (smallest planned capacities first), so a voluntary eviction never drops below the demand;
* one Service per model (all its servers) and one per workload (its pool), annotated with a
  server's planned capacity, so the gateway weights endpoints as the plan's traffic weights do.

Everything we render carries `app.kubernetes.io/managed-by: llmops` and `llmops.io/plan: <name>`,
the labels the rollout prunes by. No label or name depends on the replica count or the demand,
so a replan that only changes demand changes only replica counts.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from ..spec import VLLM_ENTRYPOINT, ReplicaSpec, ServingSpec, dns_label
from .versions import ApiVersions, api_versions

MANAGED_BY = {"app.kubernetes.io/managed-by": "llmops"}
PLAN_LABEL = "llmops.io/plan"
MODEL_LABEL = "llmops.io/model"
TENANT_LABEL = "llmops.io/tenant"
WORKLOAD_LABEL = "llmops.io/workload"
SERVES_LABEL = "llmops.io/serves"
NAMESPACE_LABEL = "llmops.io/namespace"
# The labels the Pulumi GPU node pools (pulumi/llmops_infra/gpu_node_pool.py) put on every GPU node.
POOL_LABEL = "llmops.io/pool"
GPU_TYPE_LABEL = "llmops.io/gpu-type"
ZONE_LABEL = "llmops.io/zone"
GPU_RESOURCE = "nvidia.com/gpu"
GPU_TAINT_KEY = "nvidia.com/gpu"
# Per-server capacity at the SLO: a gateway weighting each endpoint by it splits traffic as the plan's
# traffic weights do (they are capacity shares), however many servers the autoscaler runs.
CAPACITY_ANNOTATION = "llmops.io/replica-capacity-rps"
CONTAINER_PORT = 8000
PORT_NAME = "http"
LWS_LEADER_ADDRESS = "LWS_LEADER_ADDRESS"
RAY_PORT = 6379
QUOTA_NAME = "llmops-serving-quota"
LIMIT_RANGE_NAME = "llmops-serving-limits"
PRIORITY_BASE = 100_000
AUTOSCALERS = ("hpa", "keda", "none")
DNS_POLICIES = ("ClusterFirst", "Default")
SCALING_METRICS = ("in_flight", "requests_per_second")
# Kinds in the order they are applied: what others reference first.
KIND_ORDER = (
    "PriorityClass",
    "Namespace",
    "ResourceQuota",
    "LimitRange",
    "NetworkPolicy",
    "Service",
    "Deployment",
    "LeaderWorkerSet",
    "PodDisruptionBudget",
    "HorizontalPodAutoscaler",
    "ScaledObject",
)
# Fields that carry replica counts: the only ones a demand-only replan may change.
REPLICA_FIELDS = {
    "Deployment": ("spec", "replicas"),
    "LeaderWorkerSet": ("spec", "replicas"),
    "HorizontalPodAutoscaler": ("spec", "minReplicas", "maxReplicas"),
    "ScaledObject": ("spec", "minReplicaCount", "maxReplicaCount"),
    "PodDisruptionBudget": ("spec", "minAvailable"),
}


class KubernetesRenderError(ValueError):
    """Serving spec or options that cannot be rendered; `problems` holds one line each."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class EgressRule:
    cidr: str
    ports: tuple[int, ...]


@dataclass(frozen=True)
class RenderOptions:
    """How the objects are rendered beyond what the serving spec says (cluster-side settings)."""

    image: str = field(
        metadata={"doc": "The vLLM serving image (CUDA in production, the CPU build in the lab)."}
    )
    plan_name: str = "default"
    fetch_image: str | None = None
    # The init step's contract (docs/kubernetes-serving.md): `<fetch_command> --name N --version V
    # --cache-dir D` exits 0 only when D/N/V holds every file of the manifest with its sha256.
    fetch_command: tuple[str, ...] = ("llmops", "model", "fetch")
    model_store_secret: str | None = "llmops-model-store"
    service_account: str | None = None
    python: str = "python3"
    autoscaler: str = "hpa"
    scaling_metric: str = "in_flight"
    prometheus_url: str = "http://prometheus.monitoring.svc:9090"
    prometheus_workload_label: str = "workload"
    default_namespace: str = "llmops-serving"
    render_namespaces: bool = True
    gateway_namespace: str = "llmops-gateway"
    gateway_cidrs: tuple[str, ...] = ()
    monitoring_namespace: str = "monitoring"
    # A Prometheus outside the cluster (on a host, scraping pod IPs) has no namespace to select.
    monitoring_cidrs: tuple[str, ...] = ()
    model_store_egress: tuple[EgressRule, ...] = (EgressRule("0.0.0.0/0", (443,)),)
    cpu_per_gpu: float = 4.0
    memory_gib_per_gpu: int = 32
    cpu_device_cores: float = 2.0
    cpu_device_memory_gib: int = 4
    shm_gib: int = 8
    model_cache_size_gib: int | None = None
    startup_timeout_s: int = 1200
    termination_grace_s: int = 30
    # Endpoint removal reaches the gateway before the server stops taking requests.
    pre_stop_sleep_s: int = 5
    # ClusterFirst (the cluster's DNS, e.g. CoreDNS) or Default (the node's resolv.conf): a cluster
    # without a DNS addon (the lab's) resolves the model store's host name only through the node.
    dns_policy: str = "ClusterFirst"


@dataclass
class Workload:
    """Replicas of one model in one pool with one configuration: one Deployment or LeaderWorkerSet."""

    name: str
    namespace: str
    model: str
    tenant: str | None
    pool: str
    zone: str
    gpu_type: str
    precision: str
    tensor_parallel: int
    node_gpus: int
    replicas: list[ReplicaSpec]
    priority: int
    pods_per_replica: int = 1
    min_replicas: int = 0
    max_replicas: int = 0
    target_per_replica: float | None = None

    @property
    def planned(self) -> int:
        return len(self.replicas)

    @property
    def gpus_per_pod(self) -> int:
        return self.tensor_parallel // self.pods_per_replica

    @property
    def kind(self) -> str:
        return "LeaderWorkerSet" if self.pods_per_replica > 1 else "Deployment"

    @property
    def autoscaled(self) -> bool:
        return self.max_replicas > self.min_replicas

    @property
    def replica_capacity(self) -> float:
        return round(min(r.capacity_requests_per_second for r in self.replicas), 4)


def label_value(text: str) -> str:
    """A label value ([A-Za-z0-9._-], at most 63), as the Pulumi node pools write GPU types."""
    cleaned = "".join(ch if ch.isalnum() or ch in "._-" else "-" for ch in text)
    return cleaned.strip("-._")[:63]


def _quantity(value: float) -> str:
    """A Kubernetes quantity: whole numbers plain, fractions in milli-units."""
    if float(value).is_integer():
        return str(int(value))
    return f"{round(value * 1000)}m"


def _check_options(options: RenderOptions) -> list[str]:
    problems = []
    if not options.image:
        problems.append("image: the serving image is required")
    if options.autoscaler not in AUTOSCALERS:
        problems.append(
            f"autoscaler: {options.autoscaler!r} is not accepted; accepted: {', '.join(AUTOSCALERS)}"
        )
    if options.dns_policy not in DNS_POLICIES:
        problems.append(
            f"dns_policy: {options.dns_policy!r} is not accepted; accepted: {', '.join(DNS_POLICIES)}"
        )
    if options.scaling_metric not in SCALING_METRICS:
        problems.append(
            f"scaling_metric: {options.scaling_metric!r} is not accepted; accepted: {', '.join(SCALING_METRICS)}"
        )
    for name in ("plan_name", "default_namespace", "gateway_namespace", "monitoring_namespace"):
        value = getattr(options, name)
        if dns_label(value) != value:
            problems.append(f"{name}: {value!r} must be a DNS label (lowercase letters, digits and '-')")
    for name in ("cpu_per_gpu", "memory_gib_per_gpu", "cpu_device_cores", "cpu_device_memory_gib", "shm_gib"):
        if not getattr(options, name) > 0:
            problems.append(f"{name}: must be > 0, got {getattr(options, name)}")
    return problems


def _group(spec: ServingSpec, options: RenderOptions) -> list[Workload]:
    problems: list[str] = []
    groups: dict[tuple, list[ReplicaSpec]] = defaultdict(list)
    for replica in spec.replicas:
        groups[
            (replica.model, replica.pool, replica.gpu_type, replica.precision, replica.tensor_parallel)
        ].append(replica)
    configs_per_pool = defaultdict(int)
    for model, pool, *_ in groups:
        configs_per_pool[(model, pool)] += 1

    workloads = []
    for (model, pool, gpu, precision, tp), replicas in sorted(groups.items()):
        route = spec.models.get(model)
        name = dns_label(
            f"{model}-{pool}"
            if configs_per_pool[(model, pool)] == 1
            else f"{model}-{pool}-{precision}-tp{tp}"
        )
        node_gpus = min((r.node_gpus for r in replicas), default=0) or tp
        pods = math.ceil(tp / node_gpus)
        if tp % pods:
            problems.append(
                f"{model} in pool {pool}: tensor_parallel {tp} cannot be split evenly over {pods} nodes of {node_gpus} GPUs"
            )
            continue
        zones = sorted({r.zone for r in replicas})
        tenant = replicas[0].tenant
        workloads.append(
            Workload(
                name=name,
                namespace=tenant or options.default_namespace,
                model=model,
                tenant=tenant,
                pool=pool,
                zone=zones[0],
                gpu_type=gpu,
                precision=precision,
                tensor_parallel=tp,
                node_gpus=node_gpus,
                replicas=sorted(replicas, key=lambda r: r.id),
                priority=route.priority if route else 0,
                pods_per_replica=pods,
            )
        )
        if len(zones) > 1:
            problems.append(
                f"pool {pool}: nodes in several zones ({', '.join(zones)}); a pool lies in one zone"
            )

    names = defaultdict(list)
    for workload in workloads:
        names[(workload.namespace, workload.name)].append(workload.model)
    for model, route in spec.models.items():
        if route.served:
            names[(route.tenant or options.default_namespace, dns_label(model))].append(
                f"{model} (its Service)"
            )
    problems += [
        f"namespace {namespace}: the name {name!r} is taken by {' and '.join(owners)}; rename a model or pool"
        for (namespace, name), owners in sorted(names.items())
        if len(owners) > 1
    ]
    if problems:
        raise KubernetesRenderError(problems)

    for workload in workloads:
        _size(workload, spec, options)
    return workloads


def _size(workload: Workload, spec: ServingSpec, options: RenderOptions) -> None:
    """Replica bounds and the per-replica autoscaling target, from the plan."""
    route = spec.models[workload.model]
    scaling = route.autoscaling
    workload.min_replicas = workload.planned
    workload.max_replicas = workload.planned
    if scaling is not None and scaling.min_replicas > 0:
        # The planner scales every pool by the same factor (peak / demand); so do we, per pool.
        factor = scaling.max_replicas / scaling.min_replicas
        workload.max_replicas = max(workload.planned, math.ceil(workload.planned * factor - 1e-9))
        workload.target_per_replica = (
            scaling.target_requests_in_flight
            if options.scaling_metric == "in_flight"
            else scaling.target_requests_per_second
        )
    if options.autoscaler == "none":
        workload.max_replicas = workload.planned


def _owned(options: RenderOptions, **extra: str) -> dict[str, str]:
    return {**MANAGED_BY, PLAN_LABEL: options.plan_name, **extra}


def _meta(name: str, options: RenderOptions, namespace: str | None = None, **labels: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace is not None:
        meta["namespace"] = namespace
    meta["labels"] = _owned(options, **labels)
    return meta


def _model_labels(workload: Workload) -> dict[str, str]:
    labels = {MODEL_LABEL: workload.model}
    if workload.tenant:
        labels[TENANT_LABEL] = workload.tenant
    return labels


def priority_class_name(priority: int) -> str:
    return f"llmops-serving-p{priority}" if priority >= 0 else f"llmops-serving-m{-priority}"


def _priority_class(priority: int, options: RenderOptions) -> dict[str, Any]:
    return {
        "apiVersion": "scheduling.k8s.io/v1",
        "kind": "PriorityClass",
        "metadata": _meta(priority_class_name(priority), options),
        # User classes stay below 1e9 (system classes); Pulumi's llmops-serving class is 100000.
        "value": max(1, min(PRIORITY_BASE + priority, 999_999_999)),
        "globalDefault": False,
        "description": f"llmops model servers of models.yml priority {priority}: higher is scheduled first.",
    }


def _namespace_selector(namespace: str, versions: ApiVersions) -> dict[str, Any]:
    # 1.21+ labels every namespace with its name; older clusters need `llmops.io/namespace` set by hand.
    key = "kubernetes.io/metadata.name" if versions.namespace_name_label else NAMESPACE_LABEL
    return {"matchLabels": {key: namespace}}


def _network_policies(namespace: str, options: RenderOptions, versions: ApiVersions) -> list[dict[str, Any]]:
    servers = {"matchLabels": {SERVES_LABEL: "true"}}
    port = [{"protocol": "TCP", "port": PORT_NAME}]

    def policy(name: str, spec: dict[str, Any]) -> dict[str, Any]:
        return {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": _meta(name, options, namespace),
            "spec": spec,
        }

    gateway_peers: list[dict[str, Any]] = [
        {"namespaceSelector": _namespace_selector(options.gateway_namespace, versions)}
    ]
    gateway_peers += [{"ipBlock": {"cidr": cidr}} for cidr in options.gateway_cidrs]
    monitoring_peers: list[dict[str, Any]] = [
        {"namespaceSelector": _namespace_selector(options.monitoring_namespace, versions)}
    ]
    monitoring_peers += [{"ipBlock": {"cidr": cidr}} for cidr in options.monitoring_cidrs]
    policies = [
        # Nothing in, nothing out, unless a policy below allows it.
        policy("llmops-default-deny", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}),
        # A tenant's own pods talk to each other (leader and workers of a multi-node replica).
        policy(
            "llmops-allow-same-namespace",
            {
                "podSelector": {},
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [{"from": [{"podSelector": {}}]}],
                "egress": [{"to": [{"podSelector": {}}]}],
            },
        ),
        policy(
            "llmops-allow-dns",
            {
                "podSelector": {},
                "policyTypes": ["Egress"],
                "egress": [
                    {
                        "to": [{"namespaceSelector": {}}],
                        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
                    }
                ],
            },
        ),
        policy(
            "llmops-allow-gateway",
            {
                "podSelector": servers,
                "policyTypes": ["Ingress"],
                "ingress": [{"from": gateway_peers, "ports": port}],
            },
        ),
        # vLLM serves /metrics on its API port.
        policy(
            "llmops-allow-prometheus",
            {
                "podSelector": servers,
                "policyTypes": ["Ingress"],
                "ingress": [{"from": monitoring_peers, "ports": port}],
            },
        ),
    ]
    if options.model_store_egress:
        policies.append(
            policy(
                "llmops-allow-model-store",
                {
                    "podSelector": {},
                    "policyTypes": ["Egress"],
                    "egress": [
                        {
                            "to": [{"ipBlock": {"cidr": rule.cidr}}],
                            "ports": [{"protocol": "TCP", "port": p} for p in rule.ports],
                        }
                        for rule in options.model_store_egress
                    ],
                },
            )
        )
    return policies


def _pod_resources(workload: Workload, options: RenderOptions, device: str) -> tuple[float, int, int]:
    """(CPU cores, memory GiB, GPUs) one server pod requests."""
    if device == "cpu":
        return options.cpu_device_cores, options.cpu_device_memory_gib, 0
    gpus = workload.gpus_per_pod
    return options.cpu_per_gpu * gpus, options.memory_gib_per_gpu * gpus, gpus


def _peak_pods(workload: Workload) -> int:
    return workload.max_replicas * workload.pods_per_replica


def _replacement_pods(workload: Workload) -> int:
    """Pods the quota admits beyond the workload's maximum: one replica's worth.

    A deleted or evicted pod still counts against the quota until it has terminated (a model server
    drains for its grace period), so a quota sized to the planned pods refuses the ReplicaSet's
    replacement with `exceeded quota` and the controller retries with back-off. One replica's pods
    per workload lets a drain or a pod deletion be replaced at once; the scheduler still places the
    replacement only where the node has room.
    """
    return workload.pods_per_replica


def _tenant_objects(
    namespace: str,
    tenant_quota: int | None,
    workloads: list[Workload],
    options: RenderOptions,
    versions: ApiVersions,
    device: str,
) -> list[dict[str, Any]]:
    problems = []
    planned_gpus = sum(w.planned * w.tensor_parallel for w in workloads)
    # Undeclared quotas follow the autoscaling maximum plus one replacement replica per workload.
    quota_gpus = sum((_peak_pods(w) + _replacement_pods(w)) * w.gpus_per_pod for w in workloads)
    if tenant_quota is not None and planned_gpus > tenant_quota:
        problems.append(
            f"tenants.{namespace}.gpu_quota: {tenant_quota} GPUs, but the plan gives the tenant {planned_gpus}"
        )
    if problems:
        raise KubernetesRenderError(problems)
    # The init container runs before the server, so a pod's request is the larger of the two (the server's).
    if tenant_quota is not None:
        # A declared GPU quota fixes the CPU and memory quota too: they stay put when the plan rescales.
        # On the CPU build every server still stands for at least one planned GPU, so the quota in
        # GPUs bounds the number of server pods.
        per_gpu = (
            (options.cpu_per_gpu, options.memory_gib_per_gpu)
            if device == "cuda"
            else (options.cpu_device_cores, options.cpu_device_memory_gib)
        )
        cpu, memory = tenant_quota * per_gpu[0], tenant_quota * per_gpu[1]
    else:
        cpu = math.fsum(_peak_pods(w) * _pod_resources(w, options, device)[0] for w in workloads)
        memory = sum(_peak_pods(w) * _pod_resources(w, options, device)[1] for w in workloads)
    # CPU and memory never hold back a replacement pod, declared GPU quota or not: a declared GPU
    # quota stays the tenant's limit on GPUs (on a GPU node the replacement waits for the old pod's
    # GPUs anyway, unless another node has room).
    cpu += math.fsum(_replacement_pods(w) * _pod_resources(w, options, device)[0] for w in workloads)
    memory += sum(_replacement_pods(w) * _pod_resources(w, options, device)[1] for w in workloads)
    objects: list[dict[str, Any]] = []
    if options.render_namespaces:
        labels = {NAMESPACE_LABEL: namespace}
        if namespace != options.default_namespace:
            labels[TENANT_LABEL] = namespace
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": _meta(namespace, options, **labels),
            }
        )
    objects.append(
        {
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": _meta(QUOTA_NAME, options, namespace),
            "spec": {
                "hard": {
                    # Extended resources are quota'd on requests only (they are never overcommitted).
                    f"requests.{GPU_RESOURCE}": str(tenant_quota if tenant_quota is not None else quota_gpus),
                    "requests.cpu": _quantity(cpu + 1),
                    "requests.memory": f"{memory + 2}Gi",
                }
            },
        }
    )
    container_limits: dict[str, Any] = {
        "type": "Container",
        # Containers that name no resources get these, so the quota can count them. No default CPU
        # limit: the model servers request CPU without a limit (no throttling), and a default limit
        # below their request makes the API server reject every pod.
        "default": {"memory": "1Gi"},
        "defaultRequest": {"cpu": "100m", "memory": "256Mi"},
    }
    if device == "cuda" and workloads:
        container_limits["max"] = {GPU_RESOURCE: str(max(w.node_gpus for w in workloads))}
    objects.append(
        {
            "apiVersion": "v1",
            "kind": "LimitRange",
            "metadata": _meta(LIMIT_RANGE_NAME, options, namespace),
            "spec": {"limits": [container_limits]},
        }
    )
    return objects + _network_policies(namespace, options, versions)


def _engine_args(workload: Workload) -> list[str]:
    """The spec's engine arguments, with the pod's port; split over nodes for a multi-node replica."""
    args = list(workload.replicas[0].engine_args)
    args[args.index("--port") + 1] = str(CONTAINER_PORT)
    if workload.pods_per_replica > 1:
        args[args.index("--tensor-parallel-size") + 1] = str(workload.gpus_per_pod)
        args += [
            "--pipeline-parallel-size",
            str(workload.pods_per_replica),
            "--distributed-executor-backend",
            "ray",
        ]
    return args


def _environment(workload: Workload, state_dir: str) -> list[dict[str, str]]:
    env = dict(workload.replicas[0].environment)
    # The device plugin assigns the GPUs; the node's indices from the plan mean nothing inside a pod.
    env.pop("CUDA_VISIBLE_DEVICES", None)
    env["VLLM_CACHE_ROOT"] = f"{state_dir}/cache"
    env["HOME"] = state_dir
    return [{"name": key, "value": value} for key, value in sorted(env.items())]


def _cache_root(replica: ReplicaSpec) -> str:
    return replica.artifact.cache_path.rsplit("/", 2)[0]


def _pod_template(
    workload: Workload, options: RenderOptions, device: str, role: str, labels: dict[str, str]
) -> dict[str, Any]:
    """The pod of one server: role `server` (Deployment), `leader` or `worker` (LeaderWorkerSet)."""
    replica = workload.replicas[0]
    cpu, memory_gib, gpus = _pod_resources(workload, options, device)
    state_dir = "/var/lib/llmops/serving"
    cache_root = _cache_root(replica)
    requests: dict[str, str] = {"cpu": _quantity(cpu), "memory": f"{memory_gib}Gi"}
    limits: dict[str, str] = {"memory": f"{memory_gib}Gi"}
    if gpus:
        requests[GPU_RESOURCE] = limits[GPU_RESOURCE] = str(gpus)
    mounts = [
        {"name": "model-cache", "mountPath": cache_root, "readOnly": True},
        {"name": "state", "mountPath": state_dir},
        {"name": "shm", "mountPath": "/dev/shm"},
    ]
    vllm = [options.python, "-m", VLLM_ENTRYPOINT, *_engine_args(workload)]
    if role == "leader":
        command = ["/bin/sh", "-c", f'ray start --head --port={RAY_PORT} && exec "$@"', "vllm", *vllm]
    elif role == "worker":
        command = ["/bin/sh", "-c", f"exec ray start --address=${LWS_LEADER_ADDRESS}:{RAY_PORT} --block"]
    else:
        command = vllm
    container: dict[str, Any] = {
        "name": "vllm",
        "image": options.image,
        "command": command,
        "env": _environment(workload, state_dir),
        "resources": {"requests": requests, "limits": limits},
        "volumeMounts": mounts,
        "securityContext": {"allowPrivilegeEscalation": False},
    }
    if role != "worker":
        probe = {"httpGet": {"path": "/health", "port": PORT_NAME}}
        container["ports"] = [{"name": PORT_NAME, "containerPort": CONTAINER_PORT, "protocol": "TCP"}]
        container["startupProbe"] = {
            **probe,
            "periodSeconds": 10,
            "failureThreshold": max(1, math.ceil(options.startup_timeout_s / 10)),
        }
        container["readinessProbe"] = {**probe, "periodSeconds": 5, "failureThreshold": 2}
        container["livenessProbe"] = {
            **probe,
            "periodSeconds": 10,
            "failureThreshold": 6,
            "timeoutSeconds": 5,
        }
        container["lifecycle"] = {"preStop": {"exec": {"command": ["sleep", str(options.pre_stop_sleep_s)]}}}

    fetch: dict[str, Any] = {
        "name": "model-fetch",
        "image": options.fetch_image or options.image,
        "command": [
            *options.fetch_command,
            "--name",
            replica.artifact.name,
            "--version",
            replica.artifact.version,
            "--cache-dir",
            cache_root,
        ],
        "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "1Gi"}},
        "volumeMounts": [{"name": "model-cache", "mountPath": cache_root}],
        "securityContext": {"allowPrivilegeEscalation": False},
    }
    if options.model_store_secret:
        fetch["envFrom"] = [{"secretRef": {"name": options.model_store_secret}}]

    cache: dict[str, Any] = {}
    if options.model_cache_size_gib:
        cache["sizeLimit"] = f"{options.model_cache_size_gib}Gi"
    model_selector = {MODEL_LABEL: workload.model, SERVES_LABEL: "true"}
    spec: dict[str, Any] = {
        "priorityClassName": priority_class_name(workload.priority),
        "enableServiceLinks": False,
        **({"dnsPolicy": options.dns_policy} if options.dns_policy != "ClusterFirst" else {}),
        "terminationGracePeriodSeconds": options.termination_grace_s,
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {"key": POOL_LABEL, "operator": "In", "values": [workload.pool]},
                                {
                                    "key": GPU_TYPE_LABEL,
                                    "operator": "In",
                                    "values": [label_value(workload.gpu_type)],
                                },
                                {"key": ZONE_LABEL, "operator": "In", "values": [workload.zone]},
                            ]
                        }
                    ]
                }
            }
        },
        "tolerations": [{"key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}],
        "topologySpreadConstraints": [
            # The model's servers over zones (its pools lie in different zones as the plan spread them) ...
            {
                "maxSkew": 1,
                "topologyKey": ZONE_LABEL,
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": model_selector},
            },
            # ... and one pool's servers over its nodes, so a node drain takes as few as possible.
            {
                "maxSkew": 1,
                "topologyKey": "kubernetes.io/hostname",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": {WORKLOAD_LABEL: workload.name}},
            },
        ],
        "initContainers": [fetch],
        "containers": [container],
        "volumes": [
            {"name": "model-cache", "emptyDir": cache},
            {"name": "state", "emptyDir": {}},
            {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": f"{options.shm_gib}Gi"}},
        ],
    }
    if options.service_account:
        spec["serviceAccountName"] = options.service_account
    return {"metadata": {"labels": labels}, "spec": spec}


def _pod_labels(workload: Workload, options: RenderOptions, serves: bool) -> dict[str, str]:
    labels = {
        **_owned(options, **_model_labels(workload)),
        "app.kubernetes.io/name": "vllm",
        "app.kubernetes.io/component": "model-server",
        WORKLOAD_LABEL: workload.name,
        POOL_LABEL: workload.pool,
    }
    if serves:
        labels[SERVES_LABEL] = "true"
    return labels


def _workload_object(workload: Workload, options: RenderOptions, device: str) -> dict[str, Any]:
    meta = _meta(
        workload.name, options, workload.namespace, **_model_labels(workload), **{POOL_LABEL: workload.pool}
    )
    if workload.kind == "Deployment":
        return {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": meta,
            "spec": {
                "replicas": workload.planned,
                "selector": {"matchLabels": {WORKLOAD_LABEL: workload.name}},
                "revisionHistoryLimit": 3,
                # GPUs have no slack for a surge pod: replace one server at a time.
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}},
                "template": _pod_template(
                    workload, options, device, "server", _pod_labels(workload, options, True)
                ),
            },
        }
    return {
        "apiVersion": "leaderworkerset.x-k8s.io/v1",
        "kind": "LeaderWorkerSet",
        "metadata": meta,
        "spec": {
            "replicas": workload.planned,
            "startupPolicy": "LeaderReady",
            "rolloutStrategy": {
                "type": "RollingUpdate",
                "rollingUpdateConfiguration": {"maxSurge": 0, "maxUnavailable": 1},
            },
            "leaderWorkerTemplate": {
                "size": workload.pods_per_replica,
                "restartPolicy": "RecreateGroupOnPodRestart",
                "leaderTemplate": _pod_template(
                    workload, options, device, "leader", _pod_labels(workload, options, True)
                ),
                "workerTemplate": _pod_template(
                    workload, options, device, "worker", _pod_labels(workload, options, False)
                ),
            },
        },
    }


def _service(
    name: str, namespace: str, selector: dict[str, str], options: RenderOptions, **extra
) -> dict[str, Any]:
    meta = _meta(name, options, namespace, **extra.pop("labels", {}))
    if extra.get("annotations"):
        meta["annotations"] = extra["annotations"]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta,
        "spec": {
            "type": "ClusterIP",
            "selector": selector,
            # protocol spelled out: server-side apply of a port without it fails on 1.20.
            "ports": [
                {"name": PORT_NAME, "port": CONTAINER_PORT, "targetPort": PORT_NAME, "protocol": "TCP"}
            ],
        },
    }


def replicas_needed(capacities: list[float], demand: float) -> int:
    """Fewest replicas that serve `demand` whichever of them remain: the smallest capacities first."""
    total = 0.0
    for count, capacity in enumerate(sorted(capacities), start=1):
        total += capacity
        if total >= demand - 1e-9:
            return count
    return len(capacities)


def disruption_budget_pods(model_workloads: list[Workload], demand: float) -> int:
    """minAvailable (pods) that keeps the model's planned capacity for its demand.

    The gateway sends a model's traffic to its ready servers in every pool, so the model, not the
    pool, must keep `replicas_needed` replicas. Pods of a multi-node replica fail together: each
    eviction may take a whole replica, so at most (planned - needed) pods may go, whichever they are.
    """
    planned = sum(w.planned for w in model_workloads)
    pods = sum(w.planned * w.pods_per_replica for w in model_workloads)
    capacities = [r.capacity_requests_per_second for w in model_workloads for r in w.replicas]
    return pods - (planned - max(1, replicas_needed(capacities, demand)))


def _disruption_budget(
    model_workloads: list[Workload], demand: float, options: RenderOptions, versions: ApiVersions
) -> dict[str, Any]:
    first = model_workloads[0]
    return {
        "apiVersion": versions.pod_disruption_budget,
        "kind": "PodDisruptionBudget",
        "metadata": _meta(dns_label(first.model), options, first.namespace, **_model_labels(first)),
        "spec": {
            "minAvailable": disruption_budget_pods(model_workloads, demand),
            "selector": {
                "matchLabels": {MODEL_LABEL: first.model, "app.kubernetes.io/component": "model-server"}
            },
        },
    }


def _target_ref(workload: Workload, versions: ApiVersions) -> dict[str, str]:
    return {"apiVersion": versions.of(workload.kind), "kind": workload.kind, "name": workload.name}


def _autoscaler(workload: Workload, options: RenderOptions, versions: ApiVersions) -> dict[str, Any] | None:
    if options.autoscaler == "none" or not workload.autoscaled or workload.target_per_replica is None:
        return None
    meta = _meta(workload.name, options, workload.namespace, **_model_labels(workload))
    target = workload.target_per_replica
    if options.autoscaler == "hpa":
        # Served by a custom-metrics adapter (prometheus-adapter) from vLLM's own metrics; see the docs.
        metric = (
            "vllm_requests_in_flight" if options.scaling_metric == "in_flight" else "vllm_requests_per_second"
        )
        return {
            "apiVersion": versions.horizontal_pod_autoscaler,
            "kind": "HorizontalPodAutoscaler",
            "metadata": meta,
            "spec": {
                "scaleTargetRef": _target_ref(workload, versions),
                "minReplicas": workload.min_replicas,
                "maxReplicas": workload.max_replicas,
                "metrics": [
                    {
                        "type": "Pods",
                        "pods": {
                            "metric": {"name": metric},
                            "target": {"type": "AverageValue", "averageValue": _quantity(round(target, 3))},
                        },
                    }
                ],
                # A server takes minutes to load its model: scale down slowly.
                "behavior": {"scaleDown": {"stabilizationWindowSeconds": 600}},
            },
        }
    selector = f'namespace="{workload.namespace}",{options.prometheus_workload_label}="{workload.name}"'
    if options.scaling_metric == "in_flight":
        query = f"sum(vllm:num_requests_running{{{selector}}}) + sum(vllm:num_requests_waiting{{{selector}}})"
    else:
        query = f"sum(rate(vllm:request_success_total{{{selector}}}[1m]))"
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": meta,
        "spec": {
            "scaleTargetRef": _target_ref(workload, versions),
            "minReplicaCount": workload.min_replicas,
            "maxReplicaCount": workload.max_replicas,
            "cooldownPeriod": 600,
            "triggers": [
                {
                    "type": "prometheus",
                    # AverageValue: KEDA divides the query by the replica count, as the target is per replica.
                    "metricType": "AverageValue",
                    "metadata": {
                        "serverAddress": options.prometheus_url,
                        "query": query,
                        "threshold": f"{round(target, 3):g}",
                    },
                }
            ],
        },
    }


def workloads(spec: ServingSpec, options: RenderOptions) -> list[Workload]:
    """The per-pool workloads the objects are rendered from (exposed for checks and reports)."""
    problems = _check_options(options)
    if problems:
        raise KubernetesRenderError(problems)
    return _group(spec, options)


def render_objects(
    spec: ServingSpec, kubernetes_version: str, options: RenderOptions
) -> list[dict[str, Any]]:
    """Every object that serves `spec` on a cluster of `kubernetes_version`, in apply order."""
    versions = api_versions(kubernetes_version)
    problems = _check_options(options)
    if problems:
        raise KubernetesRenderError(problems)
    placed = _group(spec, options)
    by_namespace: dict[str, list[Workload]] = defaultdict(list)
    for workload in placed:
        by_namespace[workload.namespace].append(workload)
    quotas: dict[str, int | None] = {name: access.gpu_quota for name, access in spec.tenants.items()}
    for namespace in by_namespace:
        quotas.setdefault(namespace, None)

    objects: list[dict[str, Any]] = [
        _priority_class(priority, options) for priority in sorted({w.priority for w in placed})
    ]
    problems = []
    for namespace in sorted(quotas):
        try:
            objects += _tenant_objects(
                namespace, quotas[namespace], by_namespace.get(namespace, []), options, versions, spec.device
            )
        except KubernetesRenderError as exc:
            problems += exc.problems
    if problems:
        raise KubernetesRenderError(problems)

    for model in sorted({w.model for w in placed}):
        model_workloads = [w for w in placed if w.model == model]
        first = model_workloads[0]
        objects.append(
            _disruption_budget(
                model_workloads, spec.models[model].demand_requests_per_second, options, versions
            )
        )
        objects.append(
            _service(
                dns_label(model),
                first.namespace,
                {MODEL_LABEL: model, SERVES_LABEL: "true"},
                options,
                labels=_model_labels(first),
            )
        )
        for workload in model_workloads:
            objects.append(
                _service(
                    workload.name,
                    workload.namespace,
                    {WORKLOAD_LABEL: workload.name, SERVES_LABEL: "true"},
                    options,
                    labels={**_model_labels(workload), POOL_LABEL: workload.pool},
                    annotations={CAPACITY_ANNOTATION: f"{workload.replica_capacity:g}"},
                )
            )
            objects.append(_workload_object(workload, options, spec.device))
            scaler = _autoscaler(workload, options, versions)
            if scaler is not None:
                objects.append(scaler)

    order = {kind: index for index, kind in enumerate(KIND_ORDER)}
    return sorted(
        objects,
        key=lambda o: (order[o["kind"]], o["metadata"].get("namespace", ""), o["metadata"]["name"]),
    )


def object_key(obj: dict[str, Any]) -> tuple[str, str, str, str]:
    """(apiVersion, kind, namespace, name): how an object is told apart from the others."""
    meta = obj["metadata"]
    return obj["apiVersion"], obj["kind"], meta.get("namespace", ""), meta["name"]
