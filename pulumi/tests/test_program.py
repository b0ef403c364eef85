"""The whole program (pulumi/__main__.py) with the committed dev and prod stack settings, under mocks.

The planner runs for real on the stack's fleet.yml and models.yml; only the engine and the cloud
providers are mocked.
"""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import pytest
import yaml
from llmops_infra.config import ConfigError
from llmops_policies import ALL_POLICIES
from mocked_engine import PROJECT_DIR, committed_settings, run_stack
from policy_harness import violations_of

from llmops.planning import load_inputs, make_plan

REPO_ROOT = PROJECT_DIR.parent
STACK_OUTPUT_FIXTURE = (
    REPO_ROOT
    / "collections/ansible_collections/llmops/datacenter/tests/unit/plugins/inventory/fixtures/dev-stack-output.json"
)
def plan_for(settings: dict):
    fleet, models = load_inputs(PROJECT_DIR / settings["llmops:fleetFile"], PROJECT_DIR / settings["llmops:modelsFile"])
    return fleet, make_plan(fleet, models, time_limit_s=settings["llmops:planTimeLimitSeconds"])


def gpu_node_groups(run) -> dict[str, dict]:
    return {
        group.inputs["labels"]["llmops.io/pool"]: group.inputs
        for group in run.of_type("aws:eks/nodeGroup:NodeGroup")
        if "llmops.io/pool" in group.inputs.get("labels", {})
    }


def nodes_with_replicas_per_pool(plan) -> dict[str, int]:
    used = {replica.node for replica in plan.replicas}
    counts: dict[str, int] = {}
    for node in plan.nodes:
        if node.name in used:
            counts[node.pool] = counts.get(node.pool, 0) + 1
    return counts


@pytest.fixture(scope="module")
def dev():
    return run_stack("dev")


@pytest.fixture(scope="module")
def prod():
    return run_stack("prod")


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_node_counts_are_the_plans(stack, request):
    run = request.getfixturevalue(stack)
    settings = committed_settings(stack)
    fleet, plan = plan_for(settings)
    planned = nodes_with_replicas_per_pool(plan)
    overrides = settings.get("llmops:poolOverrides", {})
    groups = gpu_node_groups(run)
    cloud_pools = [pool for pool in fleet.pools if pool.max_nodes]
    assert sorted(groups) == sorted(pool.name for pool in cloud_pools), "one node group per cloud pool"
    assert any(planned.get(pool.name) for pool in cloud_pools), "the plan should use some cloud capacity"
    for pool in cloud_pools:
        scaling = groups[pool.name]["scalingConfig"]
        assert scaling["desiredSize"] == planned.get(pool.name, 0), pool.name
        assert scaling["minSize"] == planned.get(pool.name, 0), pool.name
        assert scaling["maxSize"] == overrides.get(pool.name, {}).get("max", pool.max_nodes), pool.name
        assert groups[pool.name]["instanceTypes"] == [pool.instance_type]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_pool_lands_in_its_own_zone_and_every_zone_has_subnets(stack, request):
    run = request.getfixturevalue(stack)
    zones = committed_settings(stack)["llmops:zones"]
    private_subnets = {
        subnet.inputs["availabilityZone"]: f"{subnet.name}-id"
        for subnet in run.of_type("aws:ec2/subnet:Subnet")
        if "kubernetes.io/role/internal-elb" in subnet.inputs["tags"]
    }
    assert sorted(private_subnets) == sorted(zones)
    for group in gpu_node_groups(run).values():
        zone = group["labels"]["llmops.io/zone"]
        assert group["subnetIds"] == [private_subnets[zone]]
    eks = run.one("aws:eks/cluster:Cluster")
    assert sorted(eks.inputs["vpcConfig"]["subnetIds"]) == sorted(private_subnets.values())


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_guardrail_policy_passes_on_the_whole_program(stack, request):
    run = request.getfixturevalue(stack)
    found = {policy.name: violations_of(policy, run.custom_resources) for policy in ALL_POLICIES}
    assert found == {policy.name: [] for policy in ALL_POLICIES}


def test_nothing_is_open_to_the_world_by_default(dev, prod):
    for run in (dev, prod):
        for resource in run.custom_resources:
            text = json.dumps(resource.inputs)
            if resource.type == "aws:ec2/routeTable:RouteTable":
                # The default route (to the internet gateway or NAT) is egress, not exposure.
                text = text.replace('"cidrBlock": "0.0.0.0/0"', "")
            assert "0.0.0.0/0" not in text and "::/0" not in text, f"{resource.type} {resource.name}"
        vpc_config = run.one("aws:eks/cluster:Cluster").inputs["vpcConfig"]
        assert vpc_config["endpointPublicAccess"] is False


def test_private_api_endpoint_reachable_from_the_vpc_by_default(dev):
    (rule,) = dev.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    assert rule.inputs["cidrIpv4"] == dev.one("aws:ec2/vpc:Vpc").inputs["cidrBlock"]
    assert rule.inputs["fromPort"] == 443


def test_world_open_private_api_cidr_is_refused_too():
    with pytest.raises(ConfigError, match=r"privateApiAccessCidrs: ::/0 opens the Kubernetes API"):
        run_stack("dev", privateApiAccessCidrs=["::/0"])


def test_gpu_node_groups_labelled_and_tainted(prod):
    for pool, group in gpu_node_groups(prod).items():
        assert group["labels"]["llmops.io/pool"] == pool
        assert group["labels"]["llmops.io/gpu-type"]
        assert {"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"} in group["taints"]
        assert group["amiType"] == "AL2023_x86_64_NVIDIA"


def test_stack_outputs_describe_what_was_made(dev):
    outputs = dev.outputs
    assert "kubeconfig" in dev.secret_outputs and "kubeconfig" in outputs
    assert outputs["cluster_name"] == "llmops-dev"
    assert outputs["zones"] == ["us-east-1a", "us-east-1b"]
    assert outputs["model_bucket"]
    for key in ("model_reader_role_arn", "node_role_arn", "cluster_role_arn"):
        assert outputs[key].startswith("arn:aws:iam::")
    pools = outputs["pools"]
    groups = gpu_node_groups(dev)
    for name, pool in pools.items():
        assert pool["desired_size"] == groups[name]["scalingConfig"]["desiredSize"]
        assert len(pool["node_names"]) == pool["desired_size"]
        assert all(node.startswith(f"{name}-") for node in pool["node_names"])
        assert pool["node_group_name"]
    assert pools["l4-use1b"]["capacity_type"] == "SPOT"
    assert outputs["tenant_namespaces"] == ["dev-serving"]


def test_more_demand_in_models_yml_asks_for_more_nodes(tmp_path: Path, dev):
    models = yaml.safe_load((PROJECT_DIR / "stacks/dev/models.yml").read_text())
    models["models"][0]["traffic"]["requests_per_second"] *= 4
    busier = tmp_path / "models.yml"
    busier.write_text(yaml.safe_dump(models))

    busy = run_stack("dev", modelsFile=str(busier))
    before = {name: group["scalingConfig"]["desiredSize"] for name, group in gpu_node_groups(dev).items()}
    after = {name: group["scalingConfig"]["desiredSize"] for name, group in gpu_node_groups(busy).items()}
    assert sum(after.values()) > sum(before.values()), (before, after)
    _, plan = plan_for(committed_settings("dev", modelsFile=str(busier)))
    assert after == {name: nodes_with_replicas_per_pool(plan).get(name, 0) for name in after}


def test_world_open_api_cidr_is_refused_before_anything_is_created():
    with pytest.raises(ConfigError, match=r"publicAccessCidrs: 0\.0\.0\.0/0 opens the Kubernetes API"):
        run_stack("dev", publicAccessCidrs=["203.0.113.0/24", "0.0.0.0/0"])


def test_pool_outside_the_stack_zones_is_refused():
    with pytest.raises(ConfigError, match=r"llmops:zones: .* l4-use1b \(us-east-1b\)"):
        run_stack("dev", zones=["us-east-1a", "us-east-1c"])


def stack_output_json(run) -> dict:
    """What `pulumi stack output --json` prints for this run: secrets masked as "[secret]"."""
    return {name: "[secret]" if name in run.secret_outputs else value for name, value in sorted(run.outputs.items())}


def test_recorded_stack_output_fixture_is_what_the_program_exports(dev):
    """The inventory plugin's tests read this file; it must stay what the program really exports."""
    recorded = json.loads(STACK_OUTPUT_FIXTURE.read_text())
    assert recorded == stack_output_json(dev)


def test_public_access_cidrs_when_configured_are_the_only_public_entry(tmp_path):
    run = run_stack("dev", publicAccessCidrs=["203.0.113.0/24"])
    vpc_config = run.one("aws:eks/cluster:Cluster").inputs["vpcConfig"]
    assert vpc_config["publicAccessCidrs"] == ["203.0.113.0/24"]
    assert all(ipaddress.ip_network(c).prefixlen > 0 for c in vpc_config["publicAccessCidrs"])
