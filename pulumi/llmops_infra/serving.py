"""ServingWorkloads: the Kubernetes renderer's objects, applied by Pulumi on EKS.

The objects come from `llmops.serving.kubernetes.render_objects` (the same function the
`k8s_serving` Ansible module rolls out), so `pulumi preview` shows every Deployment, Service,
PodDisruptionBudget and autoscaler the plan implies, next to the node groups sized from the
same plan. Each object becomes one typed pulumi-kubernetes resource (custom resources such as
LeaderWorkerSet and KEDA's ScaledObject become CustomResources), named after the component,
parented to it and bound to the cluster's provider; namespaced objects wait for their
Namespace when it is rendered too.

On EKS, ClusterAddons owns the tenant namespaces and their service accounts: render with
`RenderOptions(render_namespaces=False, service_account="model-server", model_store_secret=None)`
and pass the addons in `depends_on`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi_kubernetes as k8s

import pulumi

# Kinds we render whose API group has no typed class in pulumi-kubernetes.
_CUSTOM_GROUPS = ("leaderworkerset.x-k8s.io", "keda.sh")
# The SDK module of each API group (the core group "" is `core`).
_GROUP_MODULES = {
    "": "core",
    "apps": "apps",
    "policy": "policy",
    "autoscaling": "autoscaling",
    "scheduling.k8s.io": "scheduling",
    "networking.k8s.io": "networking",
}


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


def resource_name(component: str, obj: dict[str, Any]) -> str:
    meta = obj["metadata"]
    scope = f"{meta['namespace']}-" if meta.get("namespace") else ""
    return f"{component}-{obj['kind'].lower()}-{scope}{meta['name']}"


def resource_class(api_version: str, kind: str):
    """The typed pulumi-kubernetes class for an object, or None for a custom resource."""
    group, _, version = api_version.rpartition("/")
    if group in _CUSTOM_GROUPS:
        return None
    module = getattr(k8s, _GROUP_MODULES[group])
    return getattr(getattr(module, version), kind)


@dataclass
class ServingWorkloadsArgs:
    provider: k8s.Provider
    objects: list[dict[str, Any]]
    depends_on: list[pulumi.Resource] = field(default_factory=list)


class ServingWorkloads(pulumi.ComponentResource):
    resources: dict[str, pulumi.CustomResource]

    def __init__(self, name: str, args: ServingWorkloadsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llmops:index:ServingWorkloads", name, None, opts)
        self.resources = {}
        namespaces: dict[str, pulumi.CustomResource] = {}
        for obj in args.objects:
            meta = obj["metadata"]
            waits = list(args.depends_on)
            if meta.get("namespace") in namespaces:
                waits.append(namespaces[meta["namespace"]])
            child = pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=waits)
            fields = {key: value for key, value in obj.items() if key not in ("apiVersion", "kind")}
            cls = resource_class(obj["apiVersion"], obj["kind"])
            resource_id = resource_name(name, obj)
            if cls is None:
                resource = k8s.apiextensions.CustomResource(
                    resource_id, api_version=obj["apiVersion"], kind=obj["kind"], opts=child, **fields
                )
            else:
                # Top-level fields as keyword arguments; nested keys stay as the API spells them.
                resource = cls(
                    resource_id, opts=child, **{_snake(key): value for key, value in fields.items()}
                )
            if obj["kind"] == "Namespace":
                namespaces[meta["name"]] = resource
            self.resources[resource_id] = resource
        self.register_outputs({"objects": len(self.resources)})
