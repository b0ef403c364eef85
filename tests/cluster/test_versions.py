"""Versions: the kubeadm configuration API per release, and which upgrades are refused (naming both versions)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from llmops.cluster import (
    VersionError,
    cluster_api_versions,
    kubeadm_api_version,
    parse_kube_version,
    upgrade_step,
)
from llmops.serving.kubernetes import api_versions

KUBEADM_CONFIG = (
    Path(__file__).resolve().parents[2]
    / "collections/ansible_collections/llmops/datacenter/plugins/module_utils/kubeadm_config.py"
)


@pytest.mark.parametrize(
    ("version", "api"),
    [
        ("v1.20.2", "kubeadm.k8s.io/v1beta2"),
        ("1.21", "kubeadm.k8s.io/v1beta2"),
        ("1.22.0", "kubeadm.k8s.io/v1beta3"),
        ("1.30.14", "kubeadm.k8s.io/v1beta3"),
        ("1.31.0", "kubeadm.k8s.io/v1beta4"),
        ("v1.35.0", "kubeadm.k8s.io/v1beta4"),
    ],
)
def test_kubeadm_api_by_version(version, api):
    assert kubeadm_api_version(parse_kube_version(version)) == api


@pytest.mark.parametrize("version", ["1.20", "1.21", "1.23", "1.25", "1.33"])
def test_workload_api_versions_are_the_serving_renderers(version):
    """One choice per kind: the cluster layer reuses what the serving renderer renders with."""
    ours = cluster_api_versions(parse_kube_version(version))
    theirs = api_versions(version)
    assert ours.pod_disruption_budget == theirs.pod_disruption_budget
    assert ours.horizontal_pod_autoscaler == theirs.horizontal_pod_autoscaler


def test_kubeadm_config_module_utils_agrees_where_it_exposes_a_choice():
    """The host-side kubeadm config renderer must pick the same API as the controller's check."""
    if not KUBEADM_CONFIG.exists():
        pytest.skip("plugins/module_utils/kubeadm_config.py is not there")
    spec = importlib.util.spec_from_file_location("kubeadm_config_for_test", KUBEADM_CONFIG)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    chooser = getattr(module, "api_version", None) or getattr(module, "kubeadm_api_version", None)
    if chooser is None:
        pytest.skip("kubeadm_config.py exposes no api_version(kubernetes_version)")
    for version in ("v1.20.2", "v1.21.3", "v1.22.0", "v1.30.1", "v1.31.0", "v1.33.1"):
        assert chooser(version) == kubeadm_api_version(parse_kube_version(version)), version


@pytest.mark.parametrize(
    ("current", "target", "step"),
    [
        ("v1.20.2", "v1.20.2", "none"),
        ("v1.20.2", "v1.20.15", "patch"),
        ("v1.20.2", "v1.21.0", "minor"),
        ("1.32.4", "1.33.1", "minor"),
    ],
)
def test_allowed_upgrades(current, target, step):
    assert upgrade_step(current, target).step == step


@pytest.mark.parametrize(
    ("current", "target", "message"),
    [
        (
            "v1.21.3",
            "v1.20.2",
            "kubernetes_version: v1.20.2 is older than the running v1.21.3; kubeadm does not downgrade"
            " (accepted: v1.21.3 or a later release of 1.21 or 1.22)",
        ),
        (
            "v1.20.15",
            "v1.20.2",
            "kubernetes_version: v1.20.2 is older than the running v1.20.15; kubeadm does not downgrade",
        ),
        (
            "v1.20.2",
            "v1.22.17",
            "kubernetes_version: v1.22.17 skips 1 minor version(s) from the running v1.20.2; upgrade to 1.21 first",
        ),
        (
            "v1.30.0",
            "v1.33.1",
            "kubernetes_version: v1.33.1 skips 2 minor version(s) from the running v1.30.0; upgrade to 1.31 first",
        ),
        ("v1.20.2", "v1.21", "kubernetes_version: 'v1.21' is not a Kubernetes release version (for example v1.33.1)"),
        ("1.20", "v1.20.2", "upgrade_from: '1.20' is not a Kubernetes release version (for example v1.33.1)"),
    ],
)
def test_refused_upgrades_name_both_versions(current, target, message):
    with pytest.raises(VersionError) as caught:
        upgrade_step(current, target)
    assert message in str(caught.value)
