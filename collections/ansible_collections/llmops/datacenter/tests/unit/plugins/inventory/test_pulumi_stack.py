"""The pulumi_stack inventory plugin over a recorded stack output.

fixtures/dev-stack-output.json is what the Pulumi program exports for the committed dev stack
(pulumi/tests/test_program.py checks that it still is), as `pulumi stack output --json` prints it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ansible_collections.llmops.datacenter.plugins.inventory.pulumi_stack import (
    InventoryModule,
    group_name,
    read_stack_output,
)

HERE = Path(__file__).resolve().parent
FIXTURE = HERE / "fixtures" / "dev-stack-output.json"
REPO_ROOT = HERE.parents[7]
EXAMPLE_CONFIG = REPO_ROOT / "pulumi" / "inventory" / "dev.pulumi_stack.yml"
COLLECTIONS_ROOT = HERE.parents[6]


def recorded_outputs() -> dict:
    return json.loads(FIXTURE.read_text())


def multi_zone_outputs() -> dict:
    """A prod-shaped variant: an H100 pool added, the spot L4 pool scaled to zero, the kubeconfig shown."""
    outputs = recorded_outputs()
    outputs["pools"]["h100-use1a"] = {
        "instance_type": "p5.48xlarge",
        "gpu_type": "H100-SXM-80GB",
        "zone": "us-east-1a",
        "capacity_type": "ON_DEMAND",
        "desired_size": 2,
        "min_size": 2,
        "max_size": 2,
        "node_names": ["h100-use1a-0", "h100-use1a-1"],
        "root_volume_gib": 640,
        "node_group_name": "pool-h100-use1a-nodes-1",
    }
    outputs["pools"]["l4-use1b"] |= {"desired_size": 0, "min_size": 0, "node_names": []}
    outputs["kubeconfig"] = json.dumps({"apiVersion": "v1", "kind": "Config"})
    return outputs


def ansible_inventory(tmp_path: Path, config: Path, strict: bool = False) -> subprocess.CompletedProcess:
    """The real `ansible-inventory --list`, finding the plugin by FQCN on the collection path."""
    env = {
        **os.environ,
        "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS_ROOT),
        "ANSIBLE_HOME": str(tmp_path / ".ansible"),
        "ANSIBLE_CONFIG": str(tmp_path / "absent.cfg"),
        "ANSIBLE_INVENTORY_UNPARSED_FAILED": "true" if strict else "false",
    }
    return subprocess.run(
        [str(Path(sys.executable).parent / "ansible-inventory"), "-i", str(config), "--list"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def write_config(folder: Path, outputs: dict | str, extra: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "stack.json").write_text(outputs if isinstance(outputs, str) else json.dumps(outputs))
    config = folder / "test.pulumi_stack.yml"
    config.write_text(f"plugin: llmops.datacenter.pulumi_stack\nstack_output_file: stack.json\n{extra}")
    return config


@pytest.fixture(scope="module")
def example_listing(tmp_path_factory) -> dict:
    """The committed example config over the recorded dev stack output, as a user runs it."""
    folder = tmp_path_factory.mktemp("example")
    shutil.copy(EXAMPLE_CONFIG, folder / EXAMPLE_CONFIG.name)
    shutil.copy(FIXTURE, folder / "dev-stack-output.json")
    result = ansible_inventory(folder, folder / EXAMPLE_CONFIG.name, strict=True)
    assert result.returncode == 0, result.stderr
    assert "[WARNING]" not in result.stderr, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def multi_zone_listing(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("multi")
    extra = "host_connection: local\nkeyed_groups:\n  - key: capacity_type\n    prefix: capacity\n"
    result = ansible_inventory(folder, write_config(folder, multi_zone_outputs(), extra), strict=True)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def host_vars_of(listing: dict, host: str) -> dict:
    """A host's variables; ansible-inventory marks values from a plugin's source file unsafe (never templated)."""
    return {
        key: value["__ansible_unsafe"] if isinstance(value, dict) and "__ansible_unsafe" in value else value
        for key, value in listing["_meta"]["hostvars"][host].items()
    }


def hosts(listing: dict, group: str) -> list[str]:
    return sorted(listing.get(group, {}).get("hosts", []))


def test_recorded_dev_stack_builds_pool_gpu_zone_and_worker_groups(example_listing):
    assert hosts(example_listing, "pool_l4_use1a") == ["l4-use1a-0"]
    assert hosts(example_listing, "pool_l4_use1b") == ["l4-use1b-0"]
    assert hosts(example_listing, "gpu_l4_24gb") == ["l4-use1a-0", "l4-use1b-0"]
    assert hosts(example_listing, "zone_us_east_1a") == ["l4-use1a-0"]
    assert hosts(example_listing, "zone_us_east_1b") == ["l4-use1b-0"]
    assert hosts(example_listing, "gpu_workers") == ["l4-use1a-0", "l4-use1b-0"]


def test_host_vars_describe_the_node(example_listing):
    host_vars = host_vars_of(example_listing, "l4-use1b-0")
    assert host_vars["pool"] == "l4-use1b"
    assert host_vars["gpu_type"] == "L4-24GB"
    assert host_vars["zone"] == "us-east-1b"
    assert host_vars["instance_type"] == "g6.xlarge"
    assert host_vars["capacity_type"] == "SPOT"
    assert host_vars["node_group_name"] == recorded_outputs()["pools"]["l4-use1b"]["node_group_name"]
    assert "ansible_connection" not in host_vars


def test_cluster_facts_reach_every_host_and_a_masked_kubeconfig_is_left_out(example_listing):
    host_vars = host_vars_of(example_listing, "l4-use1a-0")
    assert host_vars["llmops_cluster_name"] == "llmops-dev"
    assert host_vars["llmops_region"] == "us-east-1"
    assert host_vars["llmops_model_bucket"] == recorded_outputs()["model_bucket"]
    assert host_vars["llmops_model_reader_role_arn"].startswith("arn:aws:iam::")
    assert "llmops_kubeconfig" not in host_vars


def test_several_gpu_types_and_zones_with_connection_and_keyed_groups(multi_zone_listing):
    assert hosts(multi_zone_listing, "gpu_h100_sxm_80gb") == ["h100-use1a-0", "h100-use1a-1"]
    assert hosts(multi_zone_listing, "zone_us_east_1a") == ["h100-use1a-0", "h100-use1a-1", "l4-use1a-0"]
    assert hosts(multi_zone_listing, "gpu_workers") == ["h100-use1a-0", "h100-use1a-1", "l4-use1a-0"]
    assert hosts(multi_zone_listing, "capacity_ON_DEMAND") == ["h100-use1a-0", "h100-use1a-1", "l4-use1a-0"]
    host_vars = host_vars_of(multi_zone_listing, "h100-use1a-1")
    assert host_vars["ansible_connection"] == "local"
    assert json.loads(host_vars["llmops_kubeconfig"])["kind"] == "Config"


def test_pool_scaled_to_zero_contributes_no_hosts(multi_zone_listing):
    assert hosts(multi_zone_listing, "pool_l4_use1b") == []
    assert "l4-use1b-0" not in multi_zone_listing["_meta"]["hostvars"]


def test_bad_stack_output_fails_the_inventory_naming_the_problem(tmp_path):
    result = ansible_inventory(tmp_path, write_config(tmp_path, '{"cluster_name": "llmops-dev"}'), strict=True)
    assert result.returncode != 0
    assert "no 'pools' output" in result.stderr


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "is not JSON from `pulumi stack output --json`"),
        ("[]", "expected a JSON object of stack outputs"),
        ('{"cluster_name": "x"}', "no 'pools' output"),
        ('{"pools": {"a": {"node_names": "a-0"}}}', "pools.a.node_names must be a list"),
    ],
)
def test_bad_stack_output_is_reported_with_the_file_and_the_problem(tmp_path, content, message):
    path = tmp_path / "stack.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=message) as error:
        read_stack_output(path)
    assert str(path) in str(error.value)


def test_missing_stack_output_file_is_named(tmp_path):
    with pytest.raises(ValueError, match=r"cannot read stack output file .*absent\.json"):
        read_stack_output(tmp_path / "absent.json")


def test_only_pulumi_stack_config_files_are_claimed(tmp_path):
    claimed = write_config(tmp_path, "{}")
    other = tmp_path / "hosts.yml"
    other.write_text("all: {}\n")
    assert InventoryModule().verify_file(str(claimed))
    assert not InventoryModule().verify_file(str(other))


def test_group_names_are_valid_ansible_identifiers():
    assert group_name("gpu", "H100-SXM-80GB") == "gpu_h100_sxm_80gb"
    assert group_name("zone", "us-east-1a") == "zone_us_east_1a"
    assert group_name("pool", "l4.use1a") == "pool_l4_use1a"
