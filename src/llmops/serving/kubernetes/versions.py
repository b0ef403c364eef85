"""Which API version of each kind a target Kubernetes version serves.

Only the kinds whose version depends on the cluster are listed; the rest (v1, apps/v1,
networking.k8s.io/v1, scheduling.k8s.io/v1) are served by every supported version.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# startupProbe is GA from 1.20 (the lab cluster's version); older clusters are not a target.
OLDEST_SUPPORTED = (1, 20)
_VERSION = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?(?:[-+].*)?$")


class VersionError(ValueError):
    pass


@dataclass(frozen=True)
class ApiVersions:
    kubernetes: tuple[int, int]
    pod_disruption_budget: str
    horizontal_pod_autoscaler: str
    # The label every namespace carries with its own name (1.21+); older clusters need our own label.
    namespace_name_label: bool

    def of(self, kind: str) -> str:
        return {
            "Namespace": "v1",
            "ResourceQuota": "v1",
            "LimitRange": "v1",
            "Service": "v1",
            "PriorityClass": "scheduling.k8s.io/v1",
            "NetworkPolicy": "networking.k8s.io/v1",
            "Deployment": "apps/v1",
            "PodDisruptionBudget": self.pod_disruption_budget,
            "HorizontalPodAutoscaler": self.horizontal_pod_autoscaler,
            "LeaderWorkerSet": "leaderworkerset.x-k8s.io/v1",
            "ScaledObject": "keda.sh/v1alpha1",
        }[kind]


def parse_version(text: str) -> tuple[int, int]:
    """(major, minor) of '1.33', 'v1.20.2' or '1.29.4-eks-036c24b'."""
    match = _VERSION.match(str(text).strip())
    if not match:
        raise VersionError(
            f"kubernetes_version: {text!r} is not a Kubernetes version (for example 1.33 or v1.20.2)"
        )
    version = (int(match.group(1)), int(match.group(2)))
    if version < OLDEST_SUPPORTED:
        oldest = ".".join(map(str, OLDEST_SUPPORTED))
        raise VersionError(
            f"kubernetes_version: {text!r} is older than {oldest}, the oldest version rendered for"
        )
    return version


def api_versions(kubernetes_version: str) -> ApiVersions:
    version = parse_version(kubernetes_version)
    return ApiVersions(
        kubernetes=version,
        # policy/v1 PodDisruptionBudget from 1.21 (v1beta1 removed in 1.25).
        pod_disruption_budget="policy/v1" if version >= (1, 21) else "policy/v1beta1",
        # autoscaling/v2 from 1.23 (v2beta2 removed in 1.26).
        horizontal_pod_autoscaler="autoscaling/v2" if version >= (1, 23) else "autoscaling/v2beta2",
        namespace_name_label=version >= (1, 21),
    )
