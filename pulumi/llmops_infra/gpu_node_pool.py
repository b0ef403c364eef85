"""GpuNodePool: one EKS managed node group per fleet pool, sized from the placement plan.

AMI: `AL2023_x86_64_NVIDIA`, the EKS-optimized Amazon Linux 2023 image with the NVIDIA driver and
container toolkit baked in. It does not run the NVIDIA device plugin, which the cluster add-ons
deploy (with a toleration for the GPU taint), so the plugin's version is pinned in stack config
rather than tied to an AMI release as it is with Bottlerocket.

Labels: EKS rejects node-group labels under `kubernetes.io/`, `k8s.io/` and `eks.amazonaws.com/`,
so the zone is published as `llmops.io/zone`; `topology.kubernetes.io/zone` is set on every node by
the kubelet from the instance's placement, and the node group's subnets all lie in that zone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi_aws as aws

import pulumi

from .launch_template import secure_launch_template
from .sizing import PoolSize

AMI_TYPE = "AL2023_x86_64_NVIDIA"
GPU_TAINT_KEY = "nvidia.com/gpu"
GPU_TAINT_VALUE = "present"
POOL_LABEL = "llmops.io/pool"
GPU_TYPE_LABEL = "llmops.io/gpu-type"
ZONE_LABEL = "llmops.io/zone"


def label_value(text: str) -> str:
    """Kubernetes label values allow [A-Za-z0-9._-]; GPU catalog keys are already close."""
    cleaned = "".join(ch if ch.isalnum() or ch in "._-" else "-" for ch in text)
    return cleaned.strip("-._")[:63]


@dataclass
class GpuNodePoolArgs:
    cluster_name: pulumi.Input[str]
    node_role_arn: pulumi.Input[str]
    # The pool's zone only: a node group spanning zones would break the plan's zone spread.
    subnet_ids: list[pulumi.Input[str]]
    size: PoolSize
    tags: dict[str, str] = field(default_factory=dict)


class GpuNodePool(pulumi.ComponentResource):
    node_group_name: pulumi.Output[str]
    launch_template_id: pulumi.Output[str]

    def __init__(self, name: str, args: GpuNodePoolArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llmops:index:GpuNodePool", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        size = args.size
        tags = {**args.tags, POOL_LABEL: size.name, GPU_TYPE_LABEL: label_value(size.gpu_type)}

        launch_template = secure_launch_template(
            f"{name}-template",
            f"GPU nodes of pool {size.name} ({size.instance_type}, {size.gpu_type})",
            size.root_volume_gib,
            tags,
            parent=self,
        )

        node_group = aws.eks.NodeGroup(
            f"{name}-nodes",
            cluster_name=args.cluster_name,
            node_role_arn=args.node_role_arn,
            subnet_ids=args.subnet_ids,
            ami_type=AMI_TYPE,
            instance_types=[size.instance_type],
            capacity_type=size.capacity_type,
            labels={POOL_LABEL: size.name, GPU_TYPE_LABEL: label_value(size.gpu_type), ZONE_LABEL: size.zone},
            taints=[
                aws.eks.NodeGroupTaintArgs(key=GPU_TAINT_KEY, value=GPU_TAINT_VALUE, effect="NO_SCHEDULE"),
            ],
            launch_template=aws.eks.NodeGroupLaunchTemplateArgs(
                id=launch_template.id,
                version=launch_template.latest_version.apply(str),
            ),
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                desired_size=size.desired, min_size=size.min, max_size=size.max
            ),
            # Replace one GPU node at a time: a serving replica lives on one node, N-1 keeps the model up.
            update_config=aws.eks.NodeGroupUpdateConfigArgs(max_unavailable=1),
            tags=tags,
            opts=child,
        )

        self.node_group_name = node_group.node_group_name
        self.launch_template_id = launch_template.id
        self.register_outputs({"node_group_name": self.node_group_name, "launch_template_id": self.launch_template_id})
