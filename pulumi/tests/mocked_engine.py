"""Run Pulumi code against `pulumi.runtime.set_mocks` and record every resource it registers.

The mocks stand in for the engine and the AWS/Kubernetes providers (neither can be installed here):
they echo a resource's inputs back as its state and add the few computed attributes AWS would
return (ids, ARNs, the cluster endpoint and OIDC issuer), so Outputs resolve as in a real preview.
The recorded inputs are the engine's view (camelCase property names), the same props a policy
pack receives.
"""

from __future__ import annotations

import base64
import json
import runpy
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pulumi.runtime import settings as runtime_settings
from pulumi.runtime.sync_await import _sync_await

import pulumi

ACCOUNT = "123456789012"
REGION = "us-east-1"
OIDC_ISSUER = f"https://oidc.eks.{REGION}.amazonaws.com/id/0123456789ABCDEF0123456789ABCDEF"
PROJECT_DIR = Path(__file__).resolve().parent.parent


@dataclass
class RecordedResource:
    type: str
    name: str
    inputs: dict[str, Any]
    custom: bool
    provider: str | None
    state: dict[str, Any]


def _computed_state(type_: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    service = type_.split(":")[1].split("/")[0] if type_.startswith("aws:") else ""
    state: dict[str, Any] = {"arn": f"arn:aws:{service}:{REGION}:{ACCOUNT}:{name}"}
    if type_ == "aws:eks/cluster:Cluster":
        state |= {
            "name": inputs.get("name", name),
            "endpoint": f"https://0123456789ABCDEF0123456789ABCDEF.gr7.{REGION}.eks.amazonaws.com",
            "certificateAuthority": {"data": base64.b64encode(b"test CA bundle").decode()},
            "identities": [{"oidcs": [{"issuer": OIDC_ISSUER}]}],
            "vpcConfig": {**inputs.get("vpcConfig", {}), "clusterSecurityGroupId": "sg-0eks0cluster"},
        }
    elif type_ == "aws:iam/role:Role":
        state |= {"arn": f"arn:aws:iam::{ACCOUNT}:role/{name}", "name": name}
    elif type_ == "aws:iam/openIdConnectProvider:OpenIdConnectProvider":
        state["arn"] = f"arn:aws:iam::{ACCOUNT}:oidc-provider/{OIDC_ISSUER.removeprefix('https://')}"
    elif type_ == "aws:s3/bucket:Bucket":
        bucket = inputs.get("bucket", f"{name}-0a1b2c3")
        state |= {"bucket": bucket, "arn": f"arn:aws:s3:::{bucket}"}
    elif type_ == "aws:kms/key:Key":
        state["arn"] = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{name}"
    elif type_ == "aws:ec2/launchTemplate:LaunchTemplate":
        state["latestVersion"] = 1
    elif type_ == "aws:eks/nodeGroup:NodeGroup":
        state["nodeGroupName"] = inputs.get("nodeGroupName", f"{name}-0a1b2c3")
    return state


class RecordingMocks(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.resources: list[RecordedResource] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        state = {**args.inputs, **_computed_state(args.typ, args.name, args.inputs)}
        self.resources.append(
            RecordedResource(args.typ, args.name, dict(args.inputs), bool(args.custom), args.provider, state)
        )
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs):
        raise AssertionError(f"unexpected provider function call {args.token}: the program should need none")


@dataclass
class Run:
    resources: list[RecordedResource]
    outputs: dict[str, Any] = field(default_factory=dict)
    secret_outputs: set[str] = field(default_factory=set)
    result: Any = None

    def of_type(self, type_: str) -> list[RecordedResource]:
        return [r for r in self.resources if r.type == type_]

    def one(self, type_: str) -> RecordedResource:
        found = self.of_type(type_)
        assert len(found) == 1, f"expected one {type_}, found {[r.name for r in found]}"
        return found[0]

    def named(self, name: str) -> RecordedResource:
        found = [r for r in self.resources if r.name == name]
        assert len(found) == 1, f"expected one resource named {name}, found {len(found)}"
        return found[0]

    @property
    def custom_resources(self) -> list[RecordedResource]:
        return [r for r in self.resources if r.custom]


def stack_config(settings: dict[str, Any], secrets: dict[str, str] | None = None) -> tuple[dict[str, str], list[str]]:
    """Config as the engine hands it to a program: `project:key` -> string (objects JSON-encoded)."""
    config: dict[str, str] = {}
    for key, value in {**settings, **(secrets or {})}.items():
        config[key] = value if isinstance(value, str) else json.dumps(value)
    return config, list(secrets or {})


def run_with_mocks(
    program: Callable[[], Any],
    config: dict[str, str] | None = None,
    secret_keys: list[str] | None = None,
    stack: str = "dev",
) -> Run:
    """Run `program` in a fresh mocked Pulumi runtime; return the resources it registered and its stack outputs."""
    mocks = RecordingMocks()
    pulumi.runtime.set_all_config(config or {}, secret_keys or [])
    # Mocks are process-global: start each run from a clean root stack and clean RPC bookkeeping.
    runtime_settings.set_root_resource(None)
    pulumi.runtime.set_mocks(mocks, project="llmops", stack=stack, preview=False)
    run = Run(resources=mocks.resources)

    @pulumi.runtime.test
    def body():
        run.result = program()
        root = runtime_settings.get_root_resource()
        names = list(root.outputs)

        def collect(values):
            run.outputs = dict(zip(names, values, strict=True))

        secrets = [pulumi.Output.from_input(root.outputs[name]).is_secret() for name in names]
        for name, is_secret in zip(names, secrets, strict=True):
            if _sync_await(is_secret):
                run.secret_outputs.add(name)
        return pulumi.Output.all(*[root.outputs[name] for name in names]).apply(collect)

    body()
    return run


def run_program(config: dict[str, str], secret_keys: list[str], stack: str = "dev") -> Run:
    """Run pulumi/__main__.py exactly as `pulumi up` would load it."""
    return run_with_mocks(
        lambda: runpy.run_path(str(PROJECT_DIR / "__main__.py"), run_name="__main__"), config, secret_keys, stack
    )


# Secrets are never committed to the stack files; tests supply them as the engine would (decrypted).
SECRETS = {"llmops:huggingFaceToken": "hf_test_token"}


def committed_settings(stack: str, **changes: Any) -> dict[str, Any]:
    """The committed Pulumi.<stack>.yaml settings, with `changes` applied to llmops:<key>."""
    settings = yaml.safe_load((PROJECT_DIR / f"Pulumi.{stack}.yaml").read_text())["config"]
    return {**settings, **{f"llmops:{key}": value for key, value in changes.items()}}


def run_stack(stack: str, **changes: Any) -> Run:
    """Run the program with a committed stack's settings, as `pulumi preview --stack <stack>` would."""
    config, secret_keys = stack_config(committed_settings(stack, **changes), SECRETS)
    return run_program(config, secret_keys, stack=stack)
