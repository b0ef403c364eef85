"""Each component under Pulumi's mocked engine: what it really registers, and the guardrails a user relies on."""

from __future__ import annotations

import ipaddress
import json

import pulumi_kubernetes as k8s
import pytest
from llmops_infra import (
    Cluster,
    ClusterAddons,
    ClusterAddonsArgs,
    ClusterArgs,
    GpuNodePool,
    GpuNodePoolArgs,
    ModelStore,
    ModelStoreArgs,
    Network,
    NetworkArgs,
)
from llmops_infra.config import Tenant
from llmops_infra.sizing import PoolSize
from mocked_engine import OIDC_ISSUER, run_with_mocks

import pulumi

TAGS = {"llmops.io/managed-by": "pulumi", "llmops.io/stack": "test"}
ZONES = ["us-east-1a", "us-east-1b", "us-east-1c"]


def network(**overrides):
    args = NetworkArgs(region="us-east-1", zones=ZONES, cluster_name="llmops-test", tags=TAGS)
    for key, value in overrides.items():
        setattr(args, key, value)
    return run_with_mocks(lambda: Network("net", args))


def test_every_component_child_is_parented_and_named_after_its_component():
    parents: dict[str, str | None] = {}

    def record_parents(args: pulumi.ResourceTransformationArgs):
        parents[args.name] = args.opts.parent._name if args.opts and args.opts.parent else None

    def program():
        pulumi.runtime.register_stack_transformation(record_parents)
        Network("net", NetworkArgs(region="us-east-1", zones=ZONES[:2], flow_logs=True, tags=TAGS))
        Cluster("eks", ClusterArgs(cluster_name="c", region="us-east-1", subnet_ids=["a", "b"], tags=TAGS))
        ModelStore("store", ModelStoreArgs("arn:oidc", OIDC_ISSUER, ["serving/model-server"], tags=TAGS))

    run = run_with_mocks(program)
    components = {"net": "llmops:index:Network", "eks": "llmops:index:Cluster", "store": "llmops:index:ModelStore"}
    for resource in run.custom_resources:
        owner = parents[resource.name]
        assert owner in components, f"{resource.type} {resource.name} is not parented to a component"
        assert resource.name.startswith(f"{owner}-"), f"{resource.name} is not named after its component {owner}"
    assert {r.type for r in run.resources if not r.custom} == set(components.values())


class TestNetwork:
    def test_private_and_public_subnet_in_every_zone_without_overlap(self):
        run = network()
        subnets = run.of_type("aws:ec2/subnet:Subnet")
        private = {s.inputs["availabilityZone"] for s in subnets if "internal-elb" in json.dumps(s.inputs["tags"])}
        public = {s.inputs["availabilityZone"] for s in subnets if "kubernetes.io/role/elb" in s.inputs["tags"]}
        assert private == set(ZONES) and public == set(ZONES)
        networks = [ipaddress.ip_network(s.inputs["cidrBlock"]) for s in subnets]
        vpc = ipaddress.ip_network(run.one("aws:ec2/vpc:Vpc").inputs["cidrBlock"])
        assert all(net.subnet_of(vpc) for net in networks)
        assert not any(a.overlaps(b) for i, a in enumerate(networks) for b in networks[i + 1 :])
        assert not any(s.inputs["mapPublicIpOnLaunch"] for s in subnets)
        assert all(s.inputs["tags"]["kubernetes.io/cluster/llmops-test"] == "shared" for s in subnets)

    def test_single_nat_serves_every_private_zone(self):
        run = network(nat_mode="single")
        assert len(run.of_type("aws:ec2/natGateway:NatGateway")) == 1
        private_tables = [t for t in run.of_type("aws:ec2/routeTable:RouteTable") if "private" in t.name]
        assert len(private_tables) == len(ZONES)
        assert {t.inputs["routes"][0]["natGatewayId"] for t in private_tables} == {"net-nat-us-east-1a-id"}

    def test_nat_per_zone_keeps_each_zone_on_its_own_gateway(self):
        run = network(nat_mode="per-zone")
        assert len(run.of_type("aws:ec2/natGateway:NatGateway")) == len(ZONES)
        tables = {t.name: t for t in run.of_type("aws:ec2/routeTable:RouteTable")}
        for zone in ZONES:
            assert tables[f"net-private-{zone}"].inputs["routes"][0]["natGatewayId"] == f"net-nat-{zone}-id"

    def test_unknown_nat_mode_is_refused(self):
        with pytest.raises(Exception, match="nat_mode must be one of single, per-zone"):
            network(nat_mode="none")

    def test_s3_gateway_endpoint_on_every_private_route_table(self):
        run = network()
        endpoint = run.one("aws:ec2/vpcEndpoint:VpcEndpoint")
        assert endpoint.inputs["serviceName"] == "com.amazonaws.us-east-1.s3"
        assert endpoint.inputs["vpcEndpointType"] == "Gateway"
        assert sorted(endpoint.inputs["routeTableIds"]) == sorted(f"net-private-{z}-id" for z in ZONES)

    def test_flow_logs_only_when_asked(self):
        assert not network().of_type("aws:ec2/flowLog:FlowLog")
        flow_log = network(flow_logs=True).one("aws:ec2/flowLog:FlowLog")
        assert flow_log.inputs["trafficType"] == "ALL"
        assert flow_log.inputs["logDestinationType"] == "cloud-watch-logs"


def cluster(public_access_cidrs=None, private_access_cidrs=None):
    args = ClusterArgs(
        cluster_name="llmops-test",
        region="us-east-1",
        subnet_ids=["subnet-a", "subnet-b"],
        version="1.32",
        public_access_cidrs=public_access_cidrs or [],
        private_access_cidrs=private_access_cidrs or [],
        tags=TAGS,
    )
    return run_with_mocks(lambda: Cluster("eks", args))


class TestCluster:
    def test_api_endpoint_private_by_default(self):
        eks = cluster().one("aws:eks/cluster:Cluster")
        vpc_config = eks.inputs["vpcConfig"]
        assert vpc_config["endpointPrivateAccess"] is True
        assert vpc_config["endpointPublicAccess"] is False
        assert "publicAccessCidrs" not in vpc_config
        assert eks.inputs["version"] == "1.32"

    def test_public_access_only_from_configured_cidrs(self):
        vpc_config = cluster(["203.0.113.0/24"]).one("aws:eks/cluster:Cluster").inputs["vpcConfig"]
        assert vpc_config["endpointPublicAccess"] is True
        assert vpc_config["publicAccessCidrs"] == ["203.0.113.0/24"]

    def test_private_endpoint_reachable_only_from_listed_networks_on_443(self):
        run = cluster(private_access_cidrs=["10.40.0.0/16", "172.16.0.0/12"])
        rules = run.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
        assert sorted(rule.inputs["cidrIpv4"] for rule in rules) == ["10.40.0.0/16", "172.16.0.0/12"]
        for rule in rules:
            assert (rule.inputs["fromPort"], rule.inputs["toPort"], rule.inputs["ipProtocol"]) == (443, 443, "tcp")
            assert rule.inputs["securityGroupId"] == "sg-0eks0cluster"
        assert not cluster().of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")

    def test_control_plane_logs_and_kms_secrets_encryption_with_rotation(self):
        run = cluster()
        eks = run.one("aws:eks/cluster:Cluster")
        assert set(eks.inputs["enabledClusterLogTypes"]) >= {"api", "audit", "authenticator"}
        encryption = eks.inputs["encryptionConfig"]
        assert encryption["resources"] == ["secrets"]
        key = run.one("aws:kms/key:Key")
        assert encryption["provider"]["keyArn"] == key.state["arn"]
        assert key.inputs["enableKeyRotation"] is True

    def test_oidc_provider_trusts_the_cluster_issuer_for_sts(self):
        provider = cluster().one("aws:iam/openIdConnectProvider:OpenIdConnectProvider")
        assert provider.inputs["url"] == OIDC_ISSUER
        assert provider.inputs["clientIdLists"] == ["sts.amazonaws.com"]

    def test_untainted_system_node_group_for_cluster_services(self):
        run = cluster()
        system = run.one("aws:eks/nodeGroup:NodeGroup")
        assert "taints" not in system.inputs
        assert system.inputs["amiType"] == "AL2023_x86_64_STANDARD"
        assert system.inputs["scalingConfig"]["minSize"] >= 2

    def test_kubeconfig_is_secret_and_uses_short_lived_tokens(self):
        def program():
            eks = Cluster("eks", ClusterArgs(cluster_name="llmops-test", region="us-east-1", subnet_ids=["a"]))
            pulumi.export("kubeconfig", eks.kubeconfig)

        run = run_with_mocks(program)
        assert "kubeconfig" in run.secret_outputs
        config = json.loads(run.outputs["kubeconfig"])
        assert config["clusters"][0]["cluster"]["server"].startswith("https://")
        exec_args = config["users"][0]["user"]["exec"]["args"]
        assert exec_args == ["eks", "get-token", "--cluster-name", "llmops-test", "--region", "us-east-1"]


POOL = PoolSize(
    name="h100-use1a",
    instance_type="p5.48xlarge",
    gpu_type="H100-SXM-80GB",
    zone="us-east-1a",
    desired=2,
    min=2,
    max=4,
    capacity_type="SPOT",
    node_names=("h100-use1a-0", "h100-use1a-1"),
    root_volume_gib=640,
)


def node_pool(size: PoolSize = POOL):
    args = GpuNodePoolArgs(cluster_name="llmops-test", node_role_arn="arn:role", subnet_ids=["subnet-a"], size=size, tags=TAGS)
    return run_with_mocks(lambda: GpuNodePool("pool-h100", args))


class TestGpuNodePool:
    def test_node_group_sized_labelled_and_tainted(self):
        group = node_pool().one("aws:eks/nodeGroup:NodeGroup")
        assert group.inputs["scalingConfig"] == {"desiredSize": 2, "minSize": 2, "maxSize": 4}
        assert group.inputs["instanceTypes"] == ["p5.48xlarge"]
        assert group.inputs["capacityType"] == "SPOT"
        assert group.inputs["amiType"] == "AL2023_x86_64_NVIDIA"
        assert group.inputs["subnetIds"] == ["subnet-a"]
        assert group.inputs["labels"] == {
            "llmops.io/pool": "h100-use1a",
            "llmops.io/gpu-type": "H100-SXM-80GB",
            "llmops.io/zone": "us-east-1a",
        }
        assert group.inputs["taints"] == [{"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"}]

    def test_launch_template_requires_imdsv2_and_encrypts_a_root_volume_sized_for_the_cache(self):
        run = node_pool()
        template = run.one("aws:ec2/launchTemplate:LaunchTemplate")
        assert template.inputs["metadataOptions"]["httpTokens"] == "required"
        assert template.inputs["metadataOptions"]["httpPutResponseHopLimit"] == 1
        (root,) = template.inputs["blockDeviceMappings"]
        assert root["ebs"]["encrypted"] == "true"
        assert root["ebs"]["volumeType"] == "gp3"
        assert root["ebs"]["volumeSize"] == 640
        group = run.one("aws:eks/nodeGroup:NodeGroup")
        assert group.inputs["launchTemplate"] == {"id": "pool-h100-template-id", "version": "1"}
        for spec in template.inputs["tagSpecifications"]:
            assert spec["tags"]["llmops.io/managed-by"] == "pulumi"


def model_store():
    args = ModelStoreArgs(
        oidc_provider_arn="arn:aws:iam::123456789012:oidc-provider/oidc.example",
        oidc_issuer=OIDC_ISSUER,
        reader_service_accounts=["serving/model-server", "research/model-server"],
        noncurrent_version_days=14,
        tags=TAGS,
    )
    return run_with_mocks(lambda: ModelStore("models", args))


class TestModelStore:
    def test_bucket_private_versioned_and_kms_encrypted(self):
        run = model_store()
        bucket = run.one("aws:s3/bucket:Bucket")
        assert "acl" not in bucket.inputs
        block = run.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
        for flag in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"):
            assert block.inputs[flag] is True
        ownership = run.one("aws:s3/bucketOwnershipControls:BucketOwnershipControls")
        assert ownership.inputs["rule"]["objectOwnership"] == "BucketOwnerEnforced"
        (rule,) = run.one(
            "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
        ).inputs["rules"]
        assert rule["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "aws:kms"
        assert rule["applyServerSideEncryptionByDefault"]["kmsMasterKeyId"] == run.one("aws:kms/key:Key").state["arn"]
        versioning = run.one("aws:s3/bucketVersioning:BucketVersioning")
        assert versioning.inputs["versioningConfiguration"]["status"] == "Enabled"

    def test_bucket_policy_denies_plain_http(self):
        run = model_store()
        policy = json.loads(run.one("aws:s3/bucketPolicy:BucketPolicy").inputs["policy"])
        (statement,) = policy["Statement"]
        assert statement["Effect"] == "Deny"
        assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        bucket_arn = run.one("aws:s3/bucket:Bucket").state["arn"]
        assert statement["Resource"] == [bucket_arn, f"{bucket_arn}/*"]

    def test_lifecycle_expires_old_versions_and_stalled_uploads(self):
        rules = {
            rule["id"]: rule for rule in model_store().one(
                "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
            ).inputs["rules"]
        }
        assert rules["expire-replaced-model-versions"]["noncurrentVersionExpiration"]["noncurrentDays"] == 14
        assert rules["abort-stalled-uploads"]["abortIncompleteMultipartUpload"]["daysAfterInitiation"] == 7

    def test_reader_role_is_assumable_only_by_the_serving_service_accounts(self):
        role = model_store().one("aws:iam/role:Role")
        (statement,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
        assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
        assert statement["Principal"] == {"Federated": "arn:aws:iam::123456789012:oidc-provider/oidc.example"}
        issuer = OIDC_ISSUER.removeprefix("https://")
        assert statement["Condition"]["StringEquals"] == {
            f"{issuer}:aud": "sts.amazonaws.com",
            f"{issuer}:sub": ["system:serviceaccount:serving/model-server", "system:serviceaccount:research/model-server"],
        }

    def test_reader_role_is_read_only_on_this_bucket(self):
        run = model_store()
        bucket_arn = run.one("aws:s3/bucket:Bucket").state["arn"]
        statements = json.loads(run.one("aws:iam/rolePolicy:RolePolicy").inputs["policy"])["Statement"]
        actions = {action for s in statements for action in s["Action"]}
        assert actions == {"s3:GetObject", "s3:ListBucket", "kms:Decrypt"}
        assert all(s["Effect"] == "Allow" and "*" not in json.dumps(s["Action"]) for s in statements)
        resources = {s["Resource"] for s in statements if s["Action"][0].startswith("s3:")}
        assert resources == {bucket_arn, f"{bucket_arn}/*"}


def addons(tenants):
    def program():
        provider = k8s.Provider("k8s", kubeconfig="{}")
        return ClusterAddons(
            "addons",
            ClusterAddonsArgs(
                provider=provider,
                tenants=tenants,
                device_plugin_image="nvcr.io/nvidia/k8s-device-plugin:v0.17.1",
                model_reader_role_arn="arn:aws:iam::123456789012:role/reader",
                huggingface_token=pulumi.Output.secret("hf_test"),
                labels={"llmops.io/managed-by": "pulumi"},
            ),
        )

    return run_with_mocks(program)


class TestClusterAddons:
    TENANTS = [Tenant(name="serving", gpus=16, cpu="128", memory="1Ti"), Tenant(name="research", gpus=4)]

    def test_device_plugin_tolerates_the_gpu_taint_and_runs_only_on_gpu_pools(self):
        run = addons(self.TENANTS)
        plugin = run.one("kubernetes:apps/v1:DaemonSet")
        pod = plugin.inputs["spec"]["template"]["spec"]
        assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
        terms = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
        assert terms == [{"matchExpressions": [{"key": "llmops.io/pool", "operator": "Exists"}]}]
        assert pod["containers"][0]["image"] == "nvcr.io/nvidia/k8s-device-plugin:v0.17.1"
        assert all(r.provider and "k8s" in r.provider for r in run.of_type("kubernetes:apps/v1:DaemonSet"))

    def test_each_tenant_gets_a_namespace_with_a_gpu_quota_and_a_reader_service_account(self):
        run = addons(self.TENANTS)
        namespaces = {r.inputs["metadata"]["name"] for r in run.of_type("kubernetes:core/v1:Namespace")}
        assert namespaces == {"serving", "research"}
        quotas = {r.inputs["metadata"]["namespace"]: r.inputs["spec"]["hard"] for r in run.of_type("kubernetes:core/v1:ResourceQuota")}
        assert quotas["serving"] == {"requests.nvidia.com/gpu": "16", "requests.cpu": "128", "requests.memory": "1Ti"}
        assert quotas["research"]["requests.nvidia.com/gpu"] == "4"
        for account in run.of_type("kubernetes:core/v1:ServiceAccount"):
            assert account.inputs["metadata"]["annotations"] == {
                "eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/reader"
            }

    def test_priority_classes_rank_serving_above_batch(self):
        classes = {r.inputs["metadata"]["name"]: r.inputs for r in addons([]).of_type("kubernetes:scheduling.k8s.io/v1:PriorityClass")}
        assert classes["llmops-serving-critical"]["value"] > classes["llmops-serving"]["value"] > classes["llmops-batch"]["value"]
        assert classes["llmops-batch"]["preemptionPolicy"] == "Never"

    def test_objects_are_valid_kubernetes(self):
        """The recorded objects against the real Kubernetes OpenAPI schemas (kubernetes-validate, strict)."""
        import kubernetes_validate

        run = addons(self.TENANTS)
        api_versions = {"apps": "apps/v1", "core": "v1", "scheduling.k8s.io": "scheduling.k8s.io/v1"}
        checked = 0
        for resource in run.custom_resources:
            if not resource.type.startswith("kubernetes:") or resource.type.startswith("pulumi:providers"):
                continue
            group, kind = resource.type.split(":")[1].split("/")[0], resource.type.split(":")[2]
            manifest = {"apiVersion": api_versions[group], "kind": kind, **resource.inputs}
            if kind == "Secret":
                manifest["stringData"] = {"HF_TOKEN": "redacted"}
            kubernetes_validate.validate(manifest, "1.32", strict=True)
            checked += 1
        assert checked == 3 + 1 + 4 * len(self.TENANTS)
