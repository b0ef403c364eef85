"""Kubernetes clusters installed with kubeadm: checks before any host changes, versions, add-ons.

    check_cluster(ClusterRequest(...)) -> Cluster            (or ClusterError listing every problem)
    upgrade_step(current, target) -> UpgradeStep             (or VersionError naming both versions)
    render_device_plugin(version, DevicePluginOptions(...))  -> [RuntimeClass, DaemonSet]
    validate_objects(objects, version) -> list[str]          (strict, offline)
"""

from __future__ import annotations

from .bundle import Bundle, read_bundle
from .device_plugin import DevicePluginError, DevicePluginOptions, render_device_plugin
from .preflight import Cluster, ClusterError, ClusterRequest, check_cluster
from .validate import validate_objects
from .versions import (
    ClusterApiVersions,
    KubeVersion,
    UpgradeStep,
    VersionError,
    cluster_api_versions,
    kubeadm_api_version,
    parse_kube_version,
    upgrade_step,
)

__all__ = [
    "Bundle",
    "Cluster",
    "ClusterApiVersions",
    "ClusterError",
    "ClusterRequest",
    "DevicePluginError",
    "DevicePluginOptions",
    "KubeVersion",
    "UpgradeStep",
    "VersionError",
    "check_cluster",
    "cluster_api_versions",
    "kubeadm_api_version",
    "parse_kube_version",
    "read_bundle",
    "render_device_plugin",
    "upgrade_step",
    "validate_objects",
]
