"""The guardrail policies, called directly: compliant resources recorded from the program pass, violators fail."""

from __future__ import annotations

import copy
import inspect

import pulumi_aws as aws
import pytest
from llmops_policies import (
    ALL_POLICIES,
    TAGGABLE_TYPES,
    encryption_on,
    gpu_pools_tainted,
    imdsv2_required,
    no_public_bucket,
    no_world_open_api,
    tags_everywhere,
)
from mocked_engine import run_stack
from policy_harness import check


@pytest.fixture(scope="module")
def recorded():
    """Resources of the dev stack, keyed by type: the compliant baseline each violation is derived from."""
    run = run_stack("dev", flowLogs=True)
    by_type: dict[str, list] = {}
    for resource in run.custom_resources:
        by_type.setdefault(resource.type, []).append(resource)
    return by_type


def props_of(recorded, resource_type: str, index: int = 0) -> dict:
    return copy.deepcopy(recorded[resource_type][index].inputs)


def gpu_node_group_props(recorded) -> dict:
    for resource in recorded["aws:eks/nodeGroup:NodeGroup"]:
        if "llmops.io/gpu-type" in resource.inputs["labels"]:
            return copy.deepcopy(resource.inputs)
    raise AssertionError("no GPU node group recorded")


def test_pack_lists_every_policy_once():
    assert len({policy.name for policy in ALL_POLICIES}) == len(ALL_POLICIES) == 6


class TestNoPublicBucket:
    def test_recorded_public_access_block_passes(self, recorded):
        block = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
        assert check(no_public_bucket, block, props_of(recorded, block)) == []

    @pytest.mark.parametrize("flag", ["blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"])
    def test_any_flag_off_is_a_violation(self, recorded, flag):
        block = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
        props = props_of(recorded, block)
        props[flag] = False
        assert check(no_public_bucket, block, props) == [f"Public access block must set all four flags; not set: {flag}."]

    @pytest.mark.parametrize("resource_type", ["aws:s3/bucket:Bucket", "aws:s3/bucketAcl:BucketAcl"])
    def test_public_canned_acl_is_a_violation(self, recorded, resource_type):
        props = props_of(recorded, "aws:s3/bucket:Bucket") if resource_type.endswith("Bucket") else {"bucket": "b"}
        assert check(no_public_bucket, resource_type, props) == []
        props["acl"] = "public-read"
        assert check(no_public_bucket, resource_type, props)


class TestEncryptionOn:
    def test_recorded_resources_pass(self, recorded):
        for resource_type in (
            "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
            "aws:eks/cluster:Cluster",
            "aws:ec2/launchTemplate:LaunchTemplate",
            "aws:kms/key:Key",
        ):
            for resource in recorded[resource_type]:
                assert check(encryption_on, resource_type, resource.inputs) == [], resource.name

    def test_s3_without_kms_is_a_violation(self, recorded):
        resource_type = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
        props = props_of(recorded, resource_type)
        props["rules"][0]["applyServerSideEncryptionByDefault"] = {"sseAlgorithm": "AES256"}
        assert "SSE-KMS" in check(encryption_on, resource_type, props)[0]

    def test_eks_without_secrets_encryption_is_a_violation(self, recorded):
        props = props_of(recorded, "aws:eks/cluster:Cluster")
        del props["encryptionConfig"]
        assert check(encryption_on, "aws:eks/cluster:Cluster", props)

    def test_unencrypted_or_undeclared_volume_is_a_violation(self, recorded):
        resource_type = "aws:ec2/launchTemplate:LaunchTemplate"
        props = props_of(recorded, resource_type)
        props["blockDeviceMappings"][0]["ebs"]["encrypted"] = "false"
        assert check(encryption_on, resource_type, props) == ["EBS volume /dev/xvda must be encrypted."]
        del props["blockDeviceMappings"]
        assert check(encryption_on, resource_type, props)

    def test_kms_key_without_rotation_is_a_violation(self, recorded):
        props = props_of(recorded, "aws:kms/key:Key")
        props["enableKeyRotation"] = False
        assert check(encryption_on, "aws:kms/key:Key", props) == ["KMS keys must rotate (enableKeyRotation)."]


class TestImdsv2Required:
    def test_every_recorded_launch_template_passes(self, recorded):
        for template in recorded["aws:ec2/launchTemplate:LaunchTemplate"]:
            assert check(imdsv2_required, template.type, template.inputs) == []

    @pytest.mark.parametrize("tokens", ["optional", None])
    def test_optional_or_missing_tokens_are_a_violation(self, recorded, tokens):
        props = props_of(recorded, "aws:ec2/launchTemplate:LaunchTemplate")
        if tokens is None:
            del props["metadataOptions"]
        else:
            props["metadataOptions"]["httpTokens"] = tokens
        assert check(imdsv2_required, "aws:ec2/launchTemplate:LaunchTemplate", props)


class TestNoWorldOpenApi:
    def test_recorded_private_cluster_passes(self, recorded):
        assert check(no_world_open_api, "aws:eks/cluster:Cluster", props_of(recorded, "aws:eks/cluster:Cluster")) == []

    def test_listed_networks_pass(self, recorded):
        props = props_of(recorded, "aws:eks/cluster:Cluster")
        props["vpcConfig"] |= {"endpointPublicAccess": True, "publicAccessCidrs": ["203.0.113.0/24"]}
        assert check(no_world_open_api, "aws:eks/cluster:Cluster", props) == []

    @pytest.mark.parametrize(
        "vpc_config",
        [
            {"endpointPublicAccess": True, "publicAccessCidrs": ["203.0.113.0/24", "0.0.0.0/0"]},
            {"endpointPublicAccess": True, "publicAccessCidrs": ["::/0"]},
            {"endpointPublicAccess": True},
            # Left out, EKS makes the endpoint public to 0.0.0.0/0.
            {},
        ],
    )
    def test_world_open_endpoint_is_a_violation(self, recorded, vpc_config):
        props = props_of(recorded, "aws:eks/cluster:Cluster")
        props["vpcConfig"] = {"subnetIds": props["vpcConfig"]["subnetIds"], **vpc_config}
        assert check(no_world_open_api, "aws:eks/cluster:Cluster", props)


    def test_recorded_api_ingress_passes_and_world_open_ingress_is_a_violation(self, recorded):
        rule_type = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
        props = props_of(recorded, rule_type)
        assert check(no_world_open_api, rule_type, props) == []
        props["cidrIpv4"] = "0.0.0.0/0"
        assert check(no_world_open_api, rule_type, props)


class TestGpuPoolsTainted:
    def test_recorded_gpu_node_groups_pass_and_the_system_group_is_not_a_gpu_group(self, recorded):
        for group in recorded["aws:eks/nodeGroup:NodeGroup"]:
            assert check(gpu_pools_tainted, group.type, group.inputs) == []

    @pytest.mark.parametrize("change", ["no taints", "wrong effect", "hidden gpu"])
    def test_untainted_gpu_node_group_is_a_violation(self, recorded, change):
        props = gpu_node_group_props(recorded)
        if change == "no taints":
            del props["taints"]
        elif change == "wrong effect":
            props["taints"][0]["effect"] = "PREFER_NO_SCHEDULE"
        else:
            # A GPU instance type is recognised even without our labels or an NVIDIA AMI.
            props = {"instanceTypes": ["g6e.12xlarge"], "amiType": "AL2023_x86_64_STANDARD", "labels": {}}
        assert check(gpu_pools_tainted, "aws:eks/nodeGroup:NodeGroup", props)


class TestTagsEverywhere:
    def test_every_recorded_taggable_resource_carries_managed_by(self, recorded):
        for resources in recorded.values():
            for resource in resources:
                assert check(tags_everywhere, resource.type, resource.inputs) == [], resource.name

    @pytest.mark.parametrize("resource_type", ["aws:s3/bucket:Bucket", "aws:ec2/vpc:Vpc", "aws:eks/nodeGroup:NodeGroup"])
    def test_missing_tag_is_a_violation(self, recorded, resource_type):
        props = props_of(recorded, resource_type)
        props["tags"].pop("llmops.io/managed-by")
        assert check(tags_everywhere, resource_type, props)
        del props["tags"]
        assert check(tags_everywhere, resource_type, props)

    def test_policy_knows_every_taggable_type_the_program_creates(self, recorded):
        """If the program starts creating a new taggable type, the policy's list must grow with it."""
        for resource_type in recorded:
            if not resource_type.startswith("aws:"):
                continue
            module, class_name = resource_type.split(":")[1].split("/")[0], resource_type.split(":")[2]
            resource_class = getattr(getattr(aws, module), class_name)
            if "tags" in inspect.signature(resource_class._internal_init).parameters:
                assert resource_type in TAGGABLE_TYPES, resource_type
