"""Cluster: EKS with a private API endpoint, control-plane logs, KMS-encrypted secrets, and OIDC for pod roles."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pulumi_aws as aws

import pulumi

from .config import CONTROL_PLANE_LOG_TYPES
from .launch_template import secure_launch_template

SYSTEM_ROLE_LABEL = "llmops.io/role"

EKS_MANAGED_POLICIES = ("AmazonEKSClusterPolicy",)
# What every GPU node needs: join the cluster, pull images, run the VPC CNI, and be reachable through SSM
# (the documented way to get a shell on a node without opening SSH).
NODE_MANAGED_POLICIES = (
    "AmazonEKSWorkerNodePolicy",
    "AmazonEC2ContainerRegistryReadOnly",
    "AmazonEKS_CNI_Policy",
    "AmazonSSMManagedInstanceCore",
)


def _trust_policy(service: str, actions: list[str]) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": actions}],
        }
    )


def kubeconfig_json(cluster_name: str, endpoint: str, ca_data: str, region: str) -> str:
    """A kubeconfig that authenticates with `aws eks get-token`, so it holds no long-lived credential."""
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": cluster_name, "cluster": {"server": endpoint, "certificate-authority-data": ca_data}}],
            "contexts": [{"name": cluster_name, "context": {"cluster": cluster_name, "user": cluster_name}}],
            "current-context": cluster_name,
            "users": [
                {
                    "name": cluster_name,
                    "user": {
                        "exec": {
                            "apiVersion": "client.authentication.k8s.io/v1beta1",
                            "command": "aws",
                            "args": ["eks", "get-token", "--cluster-name", cluster_name, "--region", region],
                        }
                    },
                }
            ],
        }
    )


@dataclass
class ClusterArgs:
    cluster_name: str
    region: str
    subnet_ids: list[pulumi.Input[str]]
    version: str = "1.33"
    # Empty keeps the API endpoint private (reachable from the VPC, a VPN or SSM only).
    public_access_cidrs: list[str] = field(default_factory=list)
    # Networks (VPC, VPN, CI runners) allowed to the private endpoint on 443; `pulumi up` itself
    # applies the add-ons through it, so the machine running it must be in one of them.
    private_access_cidrs: list[str] = field(default_factory=list)
    log_types: tuple[str, ...] = CONTROL_PLANE_LOG_TYPES
    # GPU nodes are tainted, so CoreDNS, the CNI and other cluster services need untainted nodes of their own.
    system_instance_type: str = "m7i.large"
    system_nodes: int = 2
    tags: dict[str, str] = field(default_factory=dict)


class Cluster(pulumi.ComponentResource):
    cluster_name: pulumi.Output[str]
    endpoint: pulumi.Output[str]
    kubeconfig: pulumi.Output[str]
    oidc_provider_arn: pulumi.Output[str]
    oidc_issuer: pulumi.Output[str]
    node_role_arn: pulumi.Output[str]
    cluster_role_arn: pulumi.Output[str]
    secrets_key_arn: pulumi.Output[str]

    def __init__(self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llmops:index:Cluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        cluster_role = aws.iam.Role(
            f"{name}-control-plane",
            assume_role_policy=_trust_policy("eks.amazonaws.com", ["sts:AssumeRole", "sts:TagSession"]),
            tags=args.tags,
            opts=child,
        )
        attachments = [
            aws.iam.RolePolicyAttachment(
                f"{name}-control-plane-{policy}",
                role=cluster_role.name,
                policy_arn=f"arn:aws:iam::aws:policy/{policy}",
                opts=child,
            )
            for policy in EKS_MANAGED_POLICIES
        ]

        # Kubernetes Secrets hold tokens (Hugging Face, registries): envelope-encrypt them with our own key.
        secrets_key = aws.kms.Key(
            f"{name}-secrets",
            description=f"Envelope encryption of Kubernetes secrets in {args.cluster_name}",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            tags=args.tags,
            opts=child,
        )

        public = bool(args.public_access_cidrs)
        cluster = aws.eks.Cluster(
            f"{name}-eks",
            name=args.cluster_name,
            role_arn=cluster_role.arn,
            version=args.version,
            vpc_config=aws.eks.ClusterVpcConfigArgs(
                subnet_ids=args.subnet_ids,
                endpoint_private_access=True,
                endpoint_public_access=public,
                public_access_cidrs=list(args.public_access_cidrs) if public else None,
            ),
            enabled_cluster_log_types=list(args.log_types),
            encryption_config=aws.eks.ClusterEncryptionConfigArgs(
                provider=aws.eks.ClusterEncryptionConfigProviderArgs(key_arn=secrets_key.arn),
                resources=["secrets"],
            ),
            access_config=aws.eks.ClusterAccessConfigArgs(
                authentication_mode="API",
                bootstrap_cluster_creator_admin_permissions=True,
            ),
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=attachments),
        )

        for index, cidr in enumerate(args.private_access_cidrs):
            aws.vpc.SecurityGroupIngressRule(
                f"{name}-api-{index}",
                security_group_id=cluster.vpc_config.cluster_security_group_id,
                description=f"Kubernetes API from {cidr}",
                ip_protocol="tcp",
                from_port=443,
                to_port=443,
                cidr_ipv4=cidr,
                tags=args.tags,
                opts=child,
            )

        issuer = cluster.identities.apply(lambda identities: identities[0].oidcs[0].issuer)
        # IAM trusts EKS's OIDC issuer through its root CA, so no thumbprint needs pinning.
        oidc_provider = aws.iam.OpenIdConnectProvider(
            f"{name}-oidc",
            url=issuer,
            client_id_lists=["sts.amazonaws.com"],
            tags=args.tags,
            opts=child,
        )

        node_role = aws.iam.Role(
            f"{name}-gpu-nodes",
            assume_role_policy=_trust_policy("ec2.amazonaws.com", ["sts:AssumeRole"]),
            tags=args.tags,
            opts=child,
        )
        self.node_role_attachments = [
            aws.iam.RolePolicyAttachment(
                f"{name}-gpu-nodes-{policy}",
                role=node_role.name,
                policy_arn=f"arn:aws:iam::aws:policy/{policy}",
                opts=child,
            )
            for policy in NODE_MANAGED_POLICIES
        ]

        system_template = secure_launch_template(
            f"{name}-system-template", f"System nodes of {args.cluster_name}", 50, args.tags, parent=self
        )
        aws.eks.NodeGroup(
            f"{name}-system",
            cluster_name=cluster.name,
            node_role_arn=node_role.arn,
            subnet_ids=args.subnet_ids,
            ami_type="AL2023_x86_64_STANDARD",
            instance_types=[args.system_instance_type],
            capacity_type="ON_DEMAND",
            labels={SYSTEM_ROLE_LABEL: "system"},
            launch_template=aws.eks.NodeGroupLaunchTemplateArgs(
                id=system_template.id, version=system_template.latest_version.apply(str)
            ),
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                desired_size=args.system_nodes, min_size=args.system_nodes, max_size=args.system_nodes + 2
            ),
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=self.node_role_attachments),
        )

        self.cluster_name = cluster.name
        self.endpoint = cluster.endpoint
        self.oidc_provider_arn = oidc_provider.arn
        self.oidc_issuer = issuer
        self.node_role_arn = node_role.arn
        self.cluster_role_arn = cluster_role.arn
        self.secrets_key_arn = secrets_key.arn
        self.kubeconfig = pulumi.Output.secret(
            pulumi.Output.all(
                cluster.name, cluster.endpoint, cluster.certificate_authority.apply(lambda authority: authority.data)
            ).apply(lambda values: kubeconfig_json(values[0], values[1], values[2], args.region))
        )
        self.register_outputs(
            {
                "cluster_name": self.cluster_name,
                "endpoint": self.endpoint,
                "kubeconfig": self.kubeconfig,
                "oidc_provider_arn": self.oidc_provider_arn,
                "node_role_arn": self.node_role_arn,
            }
        )
