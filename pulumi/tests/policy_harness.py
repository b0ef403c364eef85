"""Call a pulumi-policy ResourceValidationPolicy on resources recorded under mocks, as the engine would."""

from __future__ import annotations

from typing import Any

from mocked_engine import RecordedResource
from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)


def validation_args(resource_type: str, props: dict[str, Any], name: str = "resource") -> ResourceValidationArgs:
    options = PolicyResourceOptions(
        protect=False,
        ignore_changes=[],
        delete_before_replace=None,
        aliases=[],
        custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
        additional_secret_outputs=[],
    )
    urn = f"urn:pulumi:test::llmops::{resource_type}::{name}"
    return ResourceValidationArgs(resource_type, props, urn, name, options, None)


def check(policy: ResourceValidationPolicy, resource_type: str, props: dict[str, Any], name: str = "resource") -> list[str]:
    """Every violation message the policy reports for one resource."""
    messages: list[str] = []
    validators = policy.validate if isinstance(policy.validate, list) else [policy.validate]
    args = validation_args(resource_type, props, name)
    for validate in validators:
        validate(args, lambda message, urn=None: messages.append(message))
    return messages


def violations_of(policy: ResourceValidationPolicy, resources: list[RecordedResource]) -> list[str]:
    return [
        f"{resource.type} {resource.name}: {message}"
        for resource in resources
        for message in check(policy, resource.type, resource.inputs, resource.name)
    ]
