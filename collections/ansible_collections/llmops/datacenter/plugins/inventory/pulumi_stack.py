# Copyright: llmops contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

DOCUMENTATION = r"""
name: pulumi_stack
short_description: GPU node inventory from the outputs of the llmops Pulumi stack
version_added: 0.1.0
author:
  - llmops contributors
description:
  - Reads a file holding the output of C(pulumi stack output --json) (or C(--json --show-secrets))
    for the llmops Pulumi project in C(pulumi/), and builds one host per GPU node the placement
    plan assigned to a cloud pool, so the playbooks run against what Pulumi made.
  - Hosts are the plan's node names (C(<pool>-<i>), the names in C(plan.json)), listed per pool in
    the stack output C(pools.<pool>.node_names). They are the plan's identities, not EC2 hostnames;
    EKS names the real nodes after their private DNS names, and Pulumi does not know them. Plays
    that act through the cluster (placement, serving rollout) run on the controller against the
    Kubernetes API and need no connection to the nodes. To reach a node itself, use SSM (the node
    role carries C(AmazonSSMManagedInstanceCore)) with a connection plugin you set through
    O(host_connection) or O(compose).
  - Groups, with names lower-cased and every character outside C([a-z0-9_]) turned into C(_).
    C(pool_<pool>) per pool, C(gpu_<gpu type>) per GPU type (C(gpu_h100_sxm_80gb)),
    C(zone_<zone>) per availability zone (C(zone_us_east_1a)), and C(gpu_workers) with every node.
  - Host variables are C(pool), C(gpu_type), C(zone), C(instance_type), C(capacity_type) and
    C(node_group_name). The group C(all) gets C(llmops_cluster_name), C(llmops_region),
    C(llmops_model_bucket), C(llmops_model_reader_role_arn) and, only when the file holds it in clear
    (C(--show-secrets)), C(llmops_kubeconfig); a masked C([secret]) value is left out.
  - The file must come from the same stack the playbooks target; it is read as is, nothing is
    fetched from Pulumi.
  - Values read from the file are marked unsafe by Ansible, so they are never templated.
extends_documentation_fragment:
  - constructed
options:
  plugin:
    description: Marks this file as a configuration of this plugin.
    type: str
    required: true
    choices: [llmops.datacenter.pulumi_stack]
  stack_output_file:
    description:
      - Path of the file written by C(pulumi stack output --json > FILE) in C(pulumi/).
      - A relative path is resolved against the folder of this inventory configuration file.
    type: str
    required: true
  host_connection:
    description:
      - Value of C(ansible_connection) for every host. Left unset, the connection is whatever the
        play or C(ansible.cfg) chooses (plays through the Kubernetes API use C(local)).
    type: str
"""

EXAMPLES = r"""
# pulumi/inventory/dev.pulumi_stack.yml, after (in pulumi/):
#   pulumi stack output --stack dev --json > inventory/dev-stack-output.json
plugin: llmops.datacenter.pulumi_stack
stack_output_file: dev-stack-output.json
---
# Plays that talk only to the Kubernetes API run on the controller; group by capacity type too.
plugin: llmops.datacenter.pulumi_stack
stack_output_file: prod-stack-output.json
host_connection: local
keyed_groups:
  - key: capacity_type
    prefix: capacity
"""

import json
import os
import re

from ansible.errors import AnsibleParserError
from ansible.plugins.inventory import BaseInventoryPlugin, Constructable

SECRET_MASK = "[secret]"
POOL_HOST_VARS = ("gpu_type", "zone", "instance_type", "capacity_type", "node_group_name")
CLUSTER_VARS = {
    "cluster_name": "llmops_cluster_name",
    "region": "llmops_region",
    "model_bucket": "llmops_model_bucket",
    "model_reader_role_arn": "llmops_model_reader_role_arn",
}


def group_name(prefix, value):
    """A valid Ansible group name: `prefix_value`, lower-cased, anything outside [a-z0-9_] as `_`."""
    return prefix + "_" + re.sub(r"[^a-z0-9_]", "_", str(value).lower())


def read_stack_output(path):
    """The stack outputs as a dict; raises ValueError naming the file and what is wrong with it."""
    try:
        with open(path, encoding="utf-8") as handle:
            outputs = json.load(handle)
    except OSError as exc:
        raise ValueError(f"cannot read stack output file {path}: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not JSON from `pulumi stack output --json`: {exc}") from exc
    if not isinstance(outputs, dict):
        raise ValueError(f"{path}: expected a JSON object of stack outputs, got {type(outputs).__name__}")
    pools = outputs.get("pools")
    if not isinstance(pools, dict):
        raise ValueError(f"{path}: no 'pools' output; is this the llmops stack's `pulumi stack output --json`?")
    for name, pool in pools.items():
        if not isinstance(pool, dict) or not isinstance(pool.get("node_names"), list):
            raise ValueError(f"{path}: pools.{name}.node_names must be a list of node names")
    return outputs


class InventoryModule(BaseInventoryPlugin, Constructable):
    NAME = "llmops.datacenter.pulumi_stack"

    def verify_file(self, path):
        return super().verify_file(path) and path.endswith(("pulumi_stack.yml", "pulumi_stack.yaml"))

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache)
        self._read_config_data(path)
        output_file = self.get_option("stack_output_file")
        # Resolved here rather than as a `type: path` option, which Ansible would resolve against the cwd.
        output_file = os.path.expanduser(output_file)
        if not os.path.isabs(output_file):
            output_file = os.path.join(os.path.dirname(os.path.abspath(path)), output_file)
        try:
            outputs = read_stack_output(output_file)
        except ValueError as exc:
            raise AnsibleParserError(str(exc)) from exc

        for output_name, variable in CLUSTER_VARS.items():
            if output_name in outputs:
                self.inventory.set_variable("all", variable, outputs[output_name])
        kubeconfig = outputs.get("kubeconfig")
        if kubeconfig and kubeconfig != SECRET_MASK:
            self.inventory.set_variable("all", "llmops_kubeconfig", kubeconfig)

        connection = self.get_option("host_connection")
        strict = self.get_option("strict")
        self.inventory.add_group("gpu_workers")
        for pool_name, pool in sorted(outputs["pools"].items()):
            groups = [group_name("pool", pool_name), "gpu_workers"]
            if pool.get("gpu_type"):
                groups.append(group_name("gpu", pool["gpu_type"]))
            if pool.get("zone"):
                groups.append(group_name("zone", pool["zone"]))
            for group in groups:
                self.inventory.add_group(group)
            for host in pool["node_names"]:
                for group in groups:
                    self.inventory.add_host(host, group=group)
                host_vars = {"pool": pool_name, **{key: pool[key] for key in POOL_HOST_VARS if key in pool}}
                if connection:
                    host_vars["ansible_connection"] = connection
                for key, value in host_vars.items():
                    self.inventory.set_variable(host, key, value)
                self._set_composite_vars(self.get_option("compose"), host_vars, host, strict=strict)
                self._add_host_to_composed_groups(self.get_option("groups"), host_vars, host, strict=strict)
                self._add_host_to_keyed_groups(self.get_option("keyed_groups"), host_vars, host, strict=strict)
