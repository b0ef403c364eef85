"""Cluster checks before any host changes: every bad input is named with its field and the accepted values.

One valid lab-shaped declaration, then one mutation per problem; a declaration with several
problems reports all of them in one run.
"""

from __future__ import annotations

import dataclasses
import json

import pytest

from llmops.cluster import ClusterError, ClusterRequest, check_cluster

SHA = "0" * 63 + "1"


def bundle_file(tmp_path, version="v1.20.2", **changes):
    document = {
        "kubernetes_version": version,
        "etcd_image_tag": "3.4.23-0",
        "pause_image_tag": "3.2",
        "binaries": [{"name": name, "path": f"/b/{name}", "sha256": SHA} for name in ("kubeadm", "kubelet", "kubectl")],
        "images": [{"name": "kube-apiserver", "tag": version, "archive": "/b/kube-apiserver.oci.tar"}],
    }
    document.update(changes)
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(document))
    return str(path)


def lab(**changes) -> ClusterRequest:
    request = ClusterRequest(
        kubernetes_version="v1.20.2",
        control_plane_hosts=["lab-control"],
        worker_hosts=["lab-gpu-1", "lab-gpu-2"],
        pod_subnet="10.244.0.0/16",
        service_subnet="10.96.0.0/12",
        node_addresses={"lab-control": "10.89.0.2", "lab-gpu-1": "10.89.0.3", "lab-gpu-2": "10.89.0.4"},
        node_networks=["10.89.0.0/24"],
    )
    return dataclasses.replace(request, **changes)


def problems_of(request: ClusterRequest) -> list[str]:
    with pytest.raises(ClusterError) as caught:
        check_cluster(request)
    return caught.value.problems


def test_lab_declaration_is_normalized_with_api_versions(tmp_path):
    cluster = check_cluster(lab(bundle=bundle_file(tmp_path), pod_subnet=" 10.244.0.0/16")).as_dict()
    assert cluster["kubernetes_version"] == "v1.20.2"
    assert cluster["kubeadm_api_version"] == "kubeadm.k8s.io/v1beta2"
    assert cluster["api_versions"]["PodDisruptionBudget"] == "policy/v1beta1"
    assert cluster["api_versions"]["HorizontalPodAutoscaler"] == "autoscaling/v2beta2"
    assert cluster["api_versions"]["RuntimeClass"] == "node.k8s.io/v1"
    assert cluster["first_control_plane"] == "lab-control"
    assert cluster["control_plane_endpoint"] is None
    assert cluster["pod_subnet"] == "10.244.0.0/16"
    assert cluster["nodes"] == [
        {"name": "lab-control", "roles": ["control-plane"], "address": "10.89.0.2"},
        {"name": "lab-gpu-1", "roles": ["worker"], "address": "10.89.0.3"},
        {"name": "lab-gpu-2", "roles": ["worker"], "address": "10.89.0.4"},
    ]
    assert cluster["bundle"]["binaries"]["kubelet"] == {"path": "/b/kubelet", "sha256": SHA}
    assert cluster["upgrade"] is None


def test_minor_version_is_completed_from_the_bundle(tmp_path):
    cluster = check_cluster(lab(kubernetes_version="1.20", bundle=bundle_file(tmp_path)))
    assert str(cluster.version) == "v1.20.2"


def test_current_release_without_bundle_chooses_current_apis():
    cluster = check_cluster(lab(kubernetes_version="1.33.1")).as_dict()
    assert cluster["kubeadm_api_version"] == "kubeadm.k8s.io/v1beta4"
    assert cluster["api_versions"]["PodDisruptionBudget"] == "policy/v1"
    assert cluster["api_versions"]["HorizontalPodAutoscaler"] == "autoscaling/v2"


def test_three_control_planes_with_endpoint_pass_and_endpoint_gets_port():
    cluster = check_cluster(
        lab(control_plane_hosts=["cp-1", "cp-2", "cp-3"], control_plane_endpoint="k8s-api.example.com", node_addresses={})
    )
    assert cluster.control_plane_endpoint == "k8s-api.example.com:6443"
    assert check_cluster(lab(control_plane_endpoint="[fd00::10]:8443")).control_plane_endpoint == "[fd00::10]:8443"


def test_declared_schedulable_control_plane_may_be_a_worker():
    cluster = check_cluster(lab(worker_hosts=["lab-control", "lab-gpu-1", "lab-gpu-2"], schedulable_control_planes=["lab-control"]))
    assert cluster.as_dict()["nodes"][0]["roles"] == ["control-plane", "worker"]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        pytest.param(
            {"control_plane_hosts": []},
            "worker_hosts: lab-gpu-1, lab-gpu-2 declared with no control plane; control_plane_hosts must name at least one host",
            id="worker-without-control-plane",
        ),
        pytest.param(
            {"control_plane_hosts": [], "worker_hosts": []},
            "control_plane_hosts: empty; name at least one host",
            id="no-hosts",
        ),
        pytest.param(
            {"control_plane_hosts": ["cp-1", "cp-2"], "node_addresses": {}},
            "control_plane_endpoint: required with 2 control planes (cp-1, cp-2)",
            id="two-control-planes-no-endpoint",
        ),
        pytest.param(
            {"control_plane_endpoint": "https://cp.example.com:6443"},
            "control_plane_endpoint: 'https://cp.example.com:6443' is not host or host:port",
            id="endpoint-url",
        ),
        pytest.param(
            {"control_plane_endpoint": "cp.example.com:70000"},
            "control_plane_endpoint: port 70000 is not between 1 and 65535",
            id="endpoint-port",
        ),
        pytest.param(
            {"pod_subnet": "10.89.0.0/16"},
            "pod_subnet: 10.89.0.0/16 overlaps the node network: lab-control's address 10.89.0.2 lies in it",
            id="pod-cidr-over-node-address",
        ),
        pytest.param(
            {"pod_subnet": "10.88.0.0/15", "node_addresses": {}},
            "pod_subnet: 10.88.0.0/15 overlaps the node network 10.89.0.0/24 (node_networks[0])",
            id="pod-cidr-over-node-network",
        ),
        pytest.param(
            {"pod_subnet": "10.96.0.0/16"},
            "pod_subnet: 10.96.0.0/16 overlaps service_subnet 10.96.0.0/12; choose disjoint ranges",
            id="pod-over-service",
        ),
        pytest.param(
            {"service_subnet": "10.89.0.0/24"},
            "service_subnet: 10.89.0.0/24 overlaps the node network: lab-control's address 10.89.0.2 lies in it",
            id="service-over-node-address",
        ),
        pytest.param(
            {"pod_subnet": "10.244.0.0/33"},
            "pod_subnet: '10.244.0.0/33' is not a CIDR",
            id="bad-cidr-syntax",
        ),
        pytest.param(
            {"service_subnet": "10.96.0.1/12"},
            "service_subnet: '10.96.0.1/12' has host bits set; the network is 10.96.0.0/12",
            id="cidr-host-bits",
        ),
        pytest.param(
            {"pod_subnet": "10.244.0.0/16,fd00::/48"},
            "pod_subnet: '10.244.0.0/16,fd00::/48' must be one CIDR",
            id="dual-stack",
        ),
        pytest.param(
            {"node_networks": ["lab"]},
            "node_networks[0]: 'lab' is not a CIDR",
            id="node-network-syntax",
        ),
        pytest.param(
            {"pod_subnet": "10.244.0.0/25"},
            "pod_subnet: 10.244.0.0/25 is smaller than one node's /24",
            id="pod-cidr-too-small-for-a-node",
        ),
        pytest.param(
            {"pod_subnet": "10.244.0.0/23"},
            "pod_subnet: 10.244.0.0/23 holds 2 node ranges of /24 for 3 nodes; use /22 or shorter",
            id="pod-cidr-too-small-for-the-nodes",
        ),
        pytest.param(
            {"service_subnet": "10.64.0.0/11"},
            "service_subnet: 10.64.0.0/11 is larger than the API server accepts; use /12 or longer",
            id="service-cidr-too-large",
        ),
        pytest.param(
            {"service_subnet": "fd00:96::/108"},
            "service_subnet: fd00:96::/108 is IPv6, pod_subnet 10.244.0.0/16 is IPv4: use one family",
            id="mixed-families",
        ),
        pytest.param(
            {"worker_hosts": ["lab-control", "lab-gpu-1"]},
            "worker_hosts: 'lab-control' is also in control_plane_hosts; list it in schedulable_control_planes",
            id="host-in-both-groups",
        ),
        pytest.param(
            {"schedulable_control_planes": ["lab-gpu-1"]},
            "schedulable_control_planes: 'lab-gpu-1' is not a control plane (accepted: lab-control)",
            id="schedulable-not-a-control-plane",
        ),
        pytest.param(
            {"worker_hosts": ["lab_gpu_1"], "node_addresses": {}},
            "worker_hosts: 'lab_gpu_1' is not a valid node name (DNS-1123 subdomain",
            id="underscore-node-name",
        ),
        pytest.param(
            {"control_plane_hosts": ["Lab-Control"], "node_addresses": {}},
            "control_plane_hosts: 'Lab-Control' is not a valid node name",
            id="uppercase-node-name",
        ),
        pytest.param(
            {"worker_hosts": ["lab-gpu-1", "lab-gpu-1"], "node_addresses": {}},
            "worker_hosts: 'lab-gpu-1' is listed twice",
            id="duplicate-node",
        ),
        pytest.param(
            {"node_addresses": {"lab-gpu-9": "10.89.0.9"}},
            "node_addresses: 'lab-gpu-9' is not a declared node (accepted: lab-control, lab-gpu-1, lab-gpu-2)",
            id="address-of-unknown-node",
        ),
        pytest.param(
            {"node_addresses": {"lab-gpu-1": "10.89.0.300"}},
            "node_addresses.lab-gpu-1: '10.89.0.300' is not an IP address",
            id="bad-node-address",
        ),
        pytest.param(
            {"node_addresses": {"lab-control": "10.89.0.2", "lab-gpu-1": "10.89.0.2"}},
            "node_addresses.lab-gpu-1: 10.89.0.2 is also lab-control's address; each node needs its own",
            id="shared-node-address",
        ),
        pytest.param(
            {"control_plane_endpoint": "10.96.0.10:6443"},
            "control_plane_endpoint: 10.96.0.10 lies in service_subnet 10.96.0.0/12; use an address on the node network",
            id="endpoint-in-service-range",
        ),
        pytest.param(
            {"kubernetes_version": "latest"},
            "kubernetes_version: 'latest' is not a Kubernetes release version (for example 1.33 or v1.20.2)",
            id="version-syntax",
        ),
        pytest.param(
            {"kubernetes_version": "v1.19.16"},
            "kubernetes_version: 'v1.19.16' is outside the versions whose kubeadm configuration can be rendered (1.20 to 1.35)",
            id="version-too-old-for-kubeadm-api",
        ),
        pytest.param(
            {"kubernetes_version": "1.36.0"},
            "kubernetes_version: '1.36.0' is outside the versions whose kubeadm configuration can be rendered (1.20 to 1.35)",
            id="version-newer-than-known-kubeadm-api",
        ),
    ],
)
def test_each_bad_input_is_named(changes, expected):
    problems = problems_of(lab(**changes))
    assert any(expected in p for p in problems), problems


def test_version_the_mirror_does_not_hold(tmp_path):
    problems = problems_of(lab(kubernetes_version="v1.20.15", bundle=bundle_file(tmp_path)))
    assert problems == [
        f"kubernetes_version: v1.20.15 is not held by the mirror (bundle {tmp_path}/bundle.json holds v1.20.2);"
        " accepted: v1.20.2, or load a bundle of v1.20.15 into the mirror"
    ]
    assert "holds v1.20.2" in problems_of(lab(kubernetes_version="1.33", bundle=bundle_file(tmp_path)))[0]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "cannot be read"),
        ("{not json", "is not JSON"),
        ("[]", "must be a JSON object"),
        (json.dumps({"binaries": [], "images": []}), "kubernetes_version: missing"),
        (
            json.dumps({"kubernetes_version": "v1.20.2", "binaries": [{"name": "kubelet", "path": "/k", "sha256": "abc"}], "images": []}),
            "binaries[0] (kubelet): sha256: must be 64 hex digits",
        ),
        (
            json.dumps({"kubernetes_version": "v1.20.2", "binaries": [{"name": "kubelet", "path": "/k", "sha256": SHA}], "images": []}),
            "binaries: lacks kubeadm, kubectl",
        ),
        (json.dumps({"kubernetes_version": "v1.20.2", "binaries": [], "images": [{"tag": "x"}]}), "images: must be a list"),
    ],
)
def test_bad_bundle_is_named(tmp_path, content, expected):
    path = tmp_path / "bundle.json"
    if content is not None:
        path.write_text(content)
    problems = problems_of(lab(bundle=str(path)))
    assert any(p.startswith(f"bundle: {path}: ") and expected in p for p in problems), problems


def test_every_problem_is_reported_in_one_run(tmp_path):
    problems = problems_of(
        lab(
            kubernetes_version="v1.21.0",
            bundle=bundle_file(tmp_path),
            control_plane_hosts=[],
            worker_hosts=["gpu_1"],
            pod_subnet="10.89.0.0/16",
            service_subnet="10.96.0.0/12x",
            node_addresses={},
        )
    )
    joined = "\n".join(problems)
    for fragment in (
        "kubernetes_version: v1.21.0 is not held by the mirror",
        "worker_hosts: 'gpu_1' is not a valid node name",
        "worker_hosts: gpu_1 declared with no control plane",
        "service_subnet: '10.96.0.0/12x' is not a CIDR",
        "pod_subnet: 10.89.0.0/16 overlaps the node network 10.89.0.0/24",
    ):
        assert fragment in joined, joined
    assert len(problems) == 5, joined


def test_upgrade_step_is_checked_with_the_declaration():
    assert check_cluster(lab(kubernetes_version="v1.21.14", upgrade_from="v1.20.2")).upgrade.as_dict() == {
        "from": "v1.20.2",
        "to": "v1.21.14",
        "step": "minor",
    }
    problems = problems_of(lab(kubernetes_version="v1.22.0", upgrade_from="v1.20.2"))
    assert problems == [
        "kubernetes_version: v1.22.0 skips 1 minor version(s) from the running v1.20.2; upgrade to 1.21 first"
        " (kubeadm upgrades one minor at a time)"
    ]


def test_the_bundle_kube_build_writes_is_accepted():
    """The contract with scripts/kube-build.sh: its bundle.json reads, and v1.20.2 is what it holds."""
    from pathlib import Path

    bundle = Path(__file__).resolve().parents[2] / ".cache" / "kubernetes-1.20.2" / "bundle.json"
    if not bundle.exists():
        pytest.skip("scripts/kube-build.sh has not run on this machine")
    cluster = check_cluster(lab(kubernetes_version="1.20", bundle=str(bundle))).as_dict()
    assert cluster["kubernetes_version"] == "v1.20.2"
    assert {"kubeadm", "kubelet", "kubectl"} <= set(cluster["bundle"]["binaries"])
    assert cluster["bundle"]["etcd_image_tag"] and cluster["bundle"]["pause_image_tag"]
    assert "holds v1.20.2" in problems_of(lab(kubernetes_version="v1.21.0", bundle=str(bundle)))[0]
