"""The llmops guardrails as pulumi-policy resource validations.

Each policy is an importable ResourceValidationPolicy whose `validate(args, report_violation)`
reads the resource's inputs as the engine sees them (camelCase property names). The pack itself
is assembled in __main__.py only: constructing a PolicyPack starts the policy gRPC server.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from typing import Any

from pulumi_policy import EnforcementLevel, ResourceValidationArgs, ResourceValidationPolicy

ReportViolation = Callable[..., None]

MANAGED_BY_TAG = "llmops.io/managed-by"
GPU_TAINT_KEY = "nvidia.com/gpu"
PUBLIC_CANNED_ACLS = {"public-read", "public-read-write", "authenticated-read"}
ACL_CARRYING_TYPES = {
    "aws:s3/bucket:Bucket",
    "aws:s3/bucketV2:BucketV2",
    "aws:s3/bucketAcl:BucketAcl",
    "aws:s3/bucketAclV2:BucketAclV2",
}
KMS_ALGORITHMS = {"aws:kms", "aws:kms:dsse"}
# EC2 families whose instances carry NVIDIA GPUs (p3..p6, g4dn..g6e; g5g is Graviton + T4G).
GPU_INSTANCE_FAMILY = re.compile(r"^(p\d+[a-z]*|g\d+[a-z]*)\.")

# AWS resource types that accept tags. Every type the program creates and tags is listed
# (tests/test_policies.py checks the list against the program and pulumi_aws), plus the common
# neighbours a change to the program is likely to add.
TAGGABLE_TYPES = frozenset(
    {
        "aws:cloudwatch/logGroup:LogGroup",
        "aws:ec2/eip:Eip",
        "aws:ec2/flowLog:FlowLog",
        "aws:ec2/instance:Instance",
        "aws:ec2/internetGateway:InternetGateway",
        "aws:ec2/launchTemplate:LaunchTemplate",
        "aws:ec2/natGateway:NatGateway",
        "aws:ec2/routeTable:RouteTable",
        "aws:ec2/securityGroup:SecurityGroup",
        "aws:ec2/subnet:Subnet",
        "aws:ec2/volume:Volume",
        "aws:ec2/vpc:Vpc",
        "aws:ec2/vpcEndpoint:VpcEndpoint",
        "aws:eks/addon:Addon",
        "aws:eks/cluster:Cluster",
        "aws:eks/nodeGroup:NodeGroup",
        "aws:iam/openIdConnectProvider:OpenIdConnectProvider",
        "aws:iam/policy:Policy",
        "aws:iam/role:Role",
        "aws:kms/key:Key",
        "aws:s3/bucket:Bucket",
        "aws:s3/bucketV2:BucketV2",
        "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
    }
)


def _is_true(value: Any) -> bool:
    """Some provider fields are strings ("true") on the wire, others booleans."""
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _world_open(cidr: str) -> bool:
    try:
        return ipaddress.ip_network(cidr, strict=False).prefixlen == 0
    except ValueError:
        return False


def _check_public_access_block(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock":
        return
    flags = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    off = [flag for flag in flags if not _is_true(args.props.get(flag))]
    if off:
        report_violation(f"Public access block must set all four flags; not set: {', '.join(off)}.", None)


def _check_public_acl(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type not in ACL_CARRYING_TYPES:
        return
    acl = args.props.get("acl")
    if acl in PUBLIC_CANNED_ACLS:
        report_violation(f"Bucket ACL '{acl}' makes objects public; model artifacts stay private.", None)


no_public_bucket = ResourceValidationPolicy(
    name="no-public-bucket",
    description="S3 buckets are never public: public access block fully on, no public canned ACL.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=[_check_public_access_block, _check_public_acl],
)


def _encryption_problems(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    if resource_type == "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration":
        rules = props.get("rules") or []
        algorithms = [
            (rule.get("applyServerSideEncryptionByDefault") or {}).get("sseAlgorithm") for rule in rules
        ]
        if not algorithms or any(algorithm not in KMS_ALGORITHMS for algorithm in algorithms):
            problems.append(f"S3 default encryption must be SSE-KMS ({', '.join(sorted(KMS_ALGORITHMS))}), got {algorithms}.")
    elif resource_type == "aws:eks/cluster:Cluster":
        configs = props.get("encryptionConfig")
        configs = configs if isinstance(configs, list) else [configs] if configs else []
        covered = any(
            "secrets" in (config.get("resources") or []) and (config.get("provider") or {}).get("keyArn")
            for config in configs
        )
        if not covered:
            problems.append("EKS must envelope-encrypt Kubernetes secrets with a KMS key (encryptionConfig).")
    elif resource_type == "aws:ec2/launchTemplate:LaunchTemplate":
        mappings = props.get("blockDeviceMappings") or []
        if not mappings:
            problems.append("Launch template must declare its root volume, encrypted (the AMI default may not be).")
        for mapping in mappings:
            ebs = mapping.get("ebs") or {}
            if not _is_true(ebs.get("encrypted")):
                problems.append(f"EBS volume {mapping.get('deviceName', '?')} must be encrypted.")
    elif resource_type == "aws:kms/key:Key" and not _is_true(props.get("enableKeyRotation")):
        problems.append("KMS keys must rotate (enableKeyRotation).")
    return problems


def _check_encryption(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    for problem in _encryption_problems(args.resource_type, args.props):
        report_violation(problem, None)


encryption_on = ResourceValidationPolicy(
    name="encryption-on",
    description="S3 uses SSE-KMS, EKS encrypts secrets with KMS, launch-template volumes are encrypted, KMS keys rotate.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_check_encryption,
)


def _check_imdsv2(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != "aws:ec2/launchTemplate:LaunchTemplate":
        return
    metadata = args.props.get("metadataOptions") or {}
    if metadata.get("httpTokens") != "required":
        report_violation(
            f"Launch template must require IMDSv2 (metadataOptions.httpTokens=required), got {metadata.get('httpTokens')!r}.",
            None,
        )


imdsv2_required = ResourceValidationPolicy(
    name="imdsv2-required",
    description="Instances launched from our templates accept only IMDSv2 session tokens.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_check_imdsv2,
)


def _check_world_open_ingress(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule":
        return
    for field in ("cidrIpv4", "cidrIpv6"):
        cidr = args.props.get(field)
        if cidr and _world_open(cidr):
            report_violation(f"Ingress from {cidr} opens the port to the whole internet; list the networks that need it.", None)


def _check_eks_endpoint(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != "aws:eks/cluster:Cluster":
        return
    vpc_config = args.props.get("vpcConfig") or {}
    # EKS turns public access on when the field is left out, and then allows 0.0.0.0/0.
    public = vpc_config.get("endpointPublicAccess", True)
    if not _is_true(public):
        return
    cidrs = vpc_config.get("publicAccessCidrs") or []
    if not cidrs:
        report_violation("EKS API endpoint is public with no CIDR restriction (AWS default 0.0.0.0/0).", None)
    elif any(_world_open(cidr) for cidr in cidrs):
        report_violation(f"EKS API endpoint is open to the world: publicAccessCidrs={cidrs}.", None)


no_world_open_api = ResourceValidationPolicy(
    name="no-world-open-kubernetes-api",
    description="The EKS API endpoint is private, or public only to listed networks; no ingress from 0.0.0.0/0.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=[_check_eks_endpoint, _check_world_open_ingress],
)


def is_gpu_node_group(props: Mapping[str, Any]) -> bool:
    if "NVIDIA" in str(props.get("amiType") or "") or "GPU" in str(props.get("amiType") or ""):
        return True
    if "llmops.io/gpu-type" in (props.get("labels") or {}):
        return True
    return any(GPU_INSTANCE_FAMILY.match(instance_type) for instance_type in props.get("instanceTypes") or [])


def _check_gpu_taint(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != "aws:eks/nodeGroup:NodeGroup" or not is_gpu_node_group(args.props):
        return
    taints = args.props.get("taints") or []
    if not any(t.get("key") == GPU_TAINT_KEY and t.get("effect") == "NO_SCHEDULE" for t in taints):
        report_violation(
            f"GPU node group must carry the taint {GPU_TAINT_KEY}=present:NoSchedule so only GPU workloads land on it.",
            None,
        )


gpu_pools_tainted = ResourceValidationPolicy(
    name="gpu-node-groups-tainted",
    description="GPU node groups carry the nvidia.com/gpu NoSchedule taint.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_check_gpu_taint,
)


def _check_tags(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type not in TAGGABLE_TYPES:
        return
    tags = args.props.get("tags") or {}
    if MANAGED_BY_TAG not in tags:
        report_violation(f"Taggable resource lacks the {MANAGED_BY_TAG} tag (cost reports and cleanup rely on it).", None)


tags_everywhere = ResourceValidationPolicy(
    name="tags-on-everything-taggable",
    description=f"Every taggable AWS resource carries {MANAGED_BY_TAG}.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_check_tags,
)

ALL_POLICIES = [
    no_public_bucket,
    encryption_on,
    imdsv2_required,
    no_world_open_api,
    gpu_pools_tainted,
    tags_everywhere,
]
