"""Kubernetes versions: parsing, the API versions a target serves, and which upgrades are allowed.

The per-kind choice for workloads (PodDisruptionBudget, HorizontalPodAutoscaler) is the serving
renderer's (`llmops.serving.kubernetes.versions`); this module adds what installing a cluster
needs on top: the kubeadm configuration API and the kinds of the node layer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from llmops.serving.kubernetes.versions import OLDEST_SUPPORTED, VersionError, api_versions

# kubeadm's configuration API by the release that introduced it (each serves the later minors
# until the next one). v1beta2 is older than 1.20, our oldest target.
KUBEADM_APIS = (
    ((1, 20), "kubeadm.k8s.io/v1beta2"),
    ((1, 22), "kubeadm.k8s.io/v1beta3"),
    ((1, 31), "kubeadm.k8s.io/v1beta4"),
)
# The newest minor whose kubeadm API we know; a newer one may need a new API version, so it is
# refused rather than rendered on a guess.
NEWEST_KUBEADM = (1, 35)

_FULL = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?$")

__all__ = [
    "ClusterApiVersions",
    "KubeVersion",
    "UpgradeStep",
    "VersionError",
    "cluster_api_versions",
    "kubeadm_api_version",
    "parse_kube_version",
    "upgrade_step",
]


@dataclass(frozen=True, order=True)
class KubeVersion:
    major: int
    minor: int
    patch: int | None = None

    @property
    def minor_version(self) -> tuple[int, int]:
        return (self.major, self.minor)

    @property
    def minor_text(self) -> str:
        return f"{self.major}.{self.minor}"

    def __str__(self) -> str:
        return f"v{self.major}.{self.minor}" + ("" if self.patch is None else f".{self.patch}")


def _range_text() -> str:
    return f"{OLDEST_SUPPORTED[0]}.{OLDEST_SUPPORTED[1]} to {NEWEST_KUBEADM[0]}.{NEWEST_KUBEADM[1]}"


def parse_kube_version(text: str, field: str = "kubernetes_version", need_patch: bool = False) -> KubeVersion:
    """A release kubeadm can install: 'v1.20.2', '1.33.1' or, without need_patch, '1.33'."""
    match = _FULL.match(str(text).strip())
    if not match or (need_patch and match.group(3) is None):
        example = "v1.33.1" if need_patch else "1.33 or v1.20.2"
        raise VersionError(f"{field}: {text!r} is not a Kubernetes release version (for example {example})")
    version = KubeVersion(int(match.group(1)), int(match.group(2)), None if match.group(3) is None else int(match.group(3)))
    if not OLDEST_SUPPORTED <= version.minor_version <= NEWEST_KUBEADM:
        raise VersionError(
            f"{field}: {text!r} is outside the versions whose kubeadm configuration can be rendered"
            f" ({_range_text()})"
        )
    return version


def kubeadm_api_version(version: KubeVersion) -> str:
    chosen = None
    for since, api in KUBEADM_APIS:
        if version.minor_version >= since:
            chosen = api
    if chosen is None or version.minor_version > NEWEST_KUBEADM:
        raise VersionError(f"kubernetes_version: no kubeadm configuration API known for {version} ({_range_text()})")
    return chosen


@dataclass(frozen=True)
class ClusterApiVersions:
    kubeadm: str
    pod_disruption_budget: str
    horizontal_pod_autoscaler: str
    # RuntimeClass is GA (node.k8s.io/v1) from 1.20, the oldest target; DaemonSet apps/v1 everywhere.
    runtime_class: str = "node.k8s.io/v1"
    daemon_set: str = "apps/v1"

    def of(self, kind: str) -> str:
        return {
            "PodDisruptionBudget": self.pod_disruption_budget,
            "HorizontalPodAutoscaler": self.horizontal_pod_autoscaler,
            "RuntimeClass": self.runtime_class,
            "DaemonSet": self.daemon_set,
        }[kind]

    def as_dict(self) -> dict[str, str]:
        return {
            "kubeadm": self.kubeadm,
            "PodDisruptionBudget": self.pod_disruption_budget,
            "HorizontalPodAutoscaler": self.horizontal_pod_autoscaler,
            "RuntimeClass": self.runtime_class,
            "DaemonSet": self.daemon_set,
        }


def cluster_api_versions(version: KubeVersion) -> ClusterApiVersions:
    workloads = api_versions(version.minor_text)
    return ClusterApiVersions(
        kubeadm=kubeadm_api_version(version),
        pod_disruption_budget=workloads.pod_disruption_budget,
        horizontal_pod_autoscaler=workloads.horizontal_pod_autoscaler,
    )


@dataclass(frozen=True)
class UpgradeStep:
    current: KubeVersion
    target: KubeVersion
    # "none" (already there), "patch" (same minor) or "minor" (the next minor).
    step: str

    def as_dict(self) -> dict[str, str]:
        return {"from": str(self.current), "to": str(self.target), "step": self.step}


def upgrade_step(current: str, target: str) -> UpgradeStep:
    """The upgrade from the running release to the target, or VersionError naming both.

    kubeadm upgrades one minor at a time and never downgrades (etcd and the stored objects may
    already use the newer schema), so both are refused here, before a node is touched.
    """
    running = parse_kube_version(current, field="upgrade_from", need_patch=True)
    wanted = parse_kube_version(target, field="kubernetes_version", need_patch=True)
    if wanted.major != running.major:
        raise VersionError(f"kubernetes_version: {wanted} changes the major version of the running {running}")
    if wanted < running:
        raise VersionError(
            f"kubernetes_version: {wanted} is older than the running {running}; kubeadm does not downgrade"
            f" (accepted: {running} or a later release of {running.minor_text} or"
            f" {running.major}.{running.minor + 1})"
        )
    if wanted.minor > running.minor + 1:
        raise VersionError(
            f"kubernetes_version: {wanted} skips {wanted.minor - running.minor - 1} minor version(s) from the running"
            f" {running}; upgrade to {running.major}.{running.minor + 1} first (kubeadm upgrades one minor at a time)"
        )
    if wanted == running:
        step = "none"
    elif wanted.minor == running.minor:
        step = "patch"
    else:
        step = "minor"
    return UpgradeStep(running, wanted, step)
