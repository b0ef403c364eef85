"""The llmops guardrails policy pack: `pulumi up --policy-pack policy` from pulumi/."""

from llmops_policies import ALL_POLICIES
from pulumi_policy import EnforcementLevel, PolicyPack

PolicyPack(
    name="llmops-guardrails",
    description="No public buckets, encryption on, IMDSv2, private Kubernetes API, tainted GPU pools, tags.",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=ALL_POLICIES,
)
