"""ClusterAddons: what the GPU cluster needs before the serving stacks arrive.

- PriorityClasses, so serving outranks batch work when GPUs are short;
- the NVIDIA device plugin, which advertises `nvidia.com/gpu` on nodes and must tolerate the GPU taint
  (AL2023 NVIDIA AMIs ship the driver but not the plugin);
- one namespace per tenant with a ResourceQuota on GPUs, CPU and memory, a `model-server` service
  account bound to the model store's read-only role, and the Hugging Face token as a Secret.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi_kubernetes as k8s

import pulumi

from .config import Tenant
from .gpu_node_pool import GPU_TAINT_KEY, POOL_LABEL

MODEL_SERVER_SERVICE_ACCOUNT = "model-server"
HUGGINGFACE_SECRET = "huggingface-token"
DEVICE_PLUGIN_NAME = "nvidia-device-plugin"
DEVICE_PLUGIN_SOCKETS = "/var/lib/kubelet/device-plugins"
# name -> (value, description, preempts lower priorities)
PRIORITY_CLASSES = {
    "llmops-serving-critical": (1_000_000, "Models whose SLO is a production commitment.", True),
    "llmops-serving": (100_000, "Model servers placed by the plan.", True),
    "llmops-batch": (1_000, "Batch inference and evaluation: runs on spare GPUs, never evicts.", False),
}


def reader_service_accounts(tenants: list[Tenant]) -> list[str]:
    """namespace/name of every service account the model store's read-only role trusts."""
    return [f"{tenant.name}/{MODEL_SERVER_SERVICE_ACCOUNT}" for tenant in tenants]


@dataclass
class ClusterAddonsArgs:
    provider: k8s.Provider
    tenants: list[Tenant]
    device_plugin_image: str
    model_reader_role_arn: pulumi.Input[str]
    huggingface_token: pulumi.Input[str]
    labels: dict[str, str] = field(default_factory=dict)


class ClusterAddons(pulumi.ComponentResource):
    namespaces: list[str]

    def __init__(self, name: str, args: ClusterAddonsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llmops:index:ClusterAddons", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, provider=args.provider)
        labels = dict(args.labels)

        for class_name, (value, description, preempts) in PRIORITY_CLASSES.items():
            k8s.scheduling.v1.PriorityClass(
                f"{name}-{class_name}",
                metadata={"name": class_name, "labels": labels},
                value=value,
                description=description,
                global_default=False,
                preemption_policy="PreemptLowerPriority" if preempts else "Never",
                opts=child,
            )

        self._device_plugin(name, args, labels, child)

        self.namespaces = []
        for tenant in args.tenants:
            namespace = k8s.core.v1.Namespace(
                f"{name}-{tenant.name}",
                metadata={
                    "name": tenant.name,
                    "labels": {
                        **labels,
                        "llmops.io/tenant": tenant.name,
                        # Model servers need no host access; refuse privileged and host-path pods.
                        "pod-security.kubernetes.io/enforce": "baseline",
                    },
                },
                opts=child,
            )
            in_namespace = pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=[namespace])
            k8s.core.v1.ResourceQuota(
                f"{name}-{tenant.name}-quota",
                metadata={"name": "llmops-tenant-quota", "namespace": tenant.name, "labels": labels},
                spec={
                    "hard": {
                        # Extended resources can only be quota'd on requests (they cannot be overcommitted).
                        "requests.nvidia.com/gpu": str(tenant.gpus),
                        "requests.cpu": tenant.cpu,
                        "requests.memory": tenant.memory,
                    }
                },
                opts=in_namespace,
            )
            k8s.core.v1.ServiceAccount(
                f"{name}-{tenant.name}-model-server",
                metadata={
                    "name": MODEL_SERVER_SERVICE_ACCOUNT,
                    "namespace": tenant.name,
                    "labels": labels,
                    "annotations": {"eks.amazonaws.com/role-arn": args.model_reader_role_arn},
                },
                opts=in_namespace,
            )
            k8s.core.v1.Secret(
                f"{name}-{tenant.name}-huggingface",
                metadata={"name": HUGGINGFACE_SECRET, "namespace": tenant.name, "labels": labels},
                type="Opaque",
                string_data={"HF_TOKEN": args.huggingface_token},
                opts=in_namespace,
            )
            self.namespaces.append(tenant.name)

        self.register_outputs({"namespaces": self.namespaces})

    def _device_plugin(self, name, args, labels, child) -> None:
        selector = {"app.kubernetes.io/name": DEVICE_PLUGIN_NAME}
        k8s.apps.v1.DaemonSet(
            f"{name}-device-plugin",
            metadata={"name": DEVICE_PLUGIN_NAME, "namespace": "kube-system", "labels": {**labels, **selector}},
            spec={
                "selector": {"match_labels": selector},
                "update_strategy": {"type": "RollingUpdate"},
                "template": {
                    "metadata": {"labels": selector},
                    "spec": {
                        "priority_class_name": "system-node-critical",
                        # Only GPU pool nodes carry the pool label: no plugin pods on system nodes.
                        "affinity": {
                            "node_affinity": {
                                "required_during_scheduling_ignored_during_execution": {
                                    "node_selector_terms": [
                                        {"match_expressions": [{"key": POOL_LABEL, "operator": "Exists"}]}
                                    ]
                                }
                            }
                        },
                        "tolerations": [
                            {"key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"},
                            {"key": "CriticalAddonsOnly", "operator": "Exists"},
                        ],
                        "containers": [
                            {
                                "name": DEVICE_PLUGIN_NAME,
                                "image": args.device_plugin_image,
                                # Keep running on a node whose driver is still loading; it registers once ready.
                                "env": [{"name": "FAIL_ON_INIT_ERROR", "value": "false"}],
                                "security_context": {
                                    "allow_privilege_escalation": False,
                                    "capabilities": {"drop": ["ALL"]},
                                },
                                "volume_mounts": [{"name": "device-plugin", "mount_path": DEVICE_PLUGIN_SOCKETS}],
                            }
                        ],
                        "volumes": [{"name": "device-plugin", "host_path": {"path": DEVICE_PLUGIN_SOCKETS}}],
                    },
                },
            },
            opts=child,
        )
