"""kubeadm configuration documents, checked by the real kubeadm 1.20 where the build has one."""

import json
import pathlib
import subprocess

import pytest
from ansible_collections.llmops.datacenter.plugins.module_utils import kubeadm_config as kc

KUBEADM = pathlib.Path(__file__).resolve().parents[8] / ".cache" / "kubernetes-1.20.2" / "bin" / "kubeadm"
INIT = {
    "kubernetes_version": "v1.20.2",
    "node_name": "cp-1",
    "advertise_address": "10.0.0.10",
    "pod_subnet": "10.244.0.0/16",
    "service_subnet": "10.96.0.0/12",
    "image_repository": "mirror.example:5000/kubernetes",
    "etcd_image_tag": "3.4.23-0",
    "cgroup_driver": "cgroupfs",
}
JOIN_COMMAND = (
    "kubeadm join 10.0.0.10:6443 --token abcdef.0123456789abcdef     --discovery-token-ca-cert-hash "
    "sha256:0e51cb1f6fa15362cd73c4a0079cafd411b48b670dc7588fcc384b4495d40947 \n"
)


@pytest.mark.parametrize(
    ("version", "api"),
    [("v1.15.0", "v1beta2"), ("1.20.2", "v1beta2"), ("v1.21.14", "v1beta2"), ("v1.22.0", "v1beta3"),
     ("v1.30.4", "v1beta3"), ("v1.31.0", "v1beta4"), ("v1.33.1", "v1beta4")],
)
def test_api_version_follows_the_release(version, api):
    assert kc.api_version(version) == f"kubeadm.k8s.io/{api}"


@pytest.mark.parametrize("version", ["v1.14.9", "2.0.0", "1.20", "latest", ""])
def test_unsupported_versions_name_the_field(version):
    with pytest.raises(kc.KubeadmConfigError, match=r"^kubernetes_version: "):
        kc.api_version(version)


def test_init_documents_carry_mirror_etcd_tag_and_container_settings():
    init, cluster, kubelet, proxy = kc.init_documents({**INIT, "control_plane_endpoint": "k8s.example:6443"})
    assert init["nodeRegistration"]["criSocket"] == "/run/containerd/containerd.sock"
    assert init["nodeRegistration"]["kubeletExtraArgs"] == {"node-ip": "10.0.0.10"}
    assert cluster["imageRepository"] == "mirror.example:5000/kubernetes"
    assert cluster["etcd"] == {"local": {"imageTag": "3.4.23-0"}}
    assert cluster["controlPlaneEndpoint"] == "k8s.example:6443"
    assert kubelet["cgroupDriver"] == "cgroupfs" and proxy["conntrack"] == {"maxPerCore": 0}


def test_v1beta4_extra_args_are_name_value_lists():
    init = kc.init_documents({**INIT, "kubernetes_version": "v1.31.2"})[0]
    assert init["apiVersion"] == "kubeadm.k8s.io/v1beta4"
    assert init["nodeRegistration"]["kubeletExtraArgs"] == [{"name": "node-ip", "value": "10.0.0.10"}]
    assert init["nodeRegistration"]["criSocket"] == "unix:///run/containerd/containerd.sock"


@pytest.mark.parametrize(("field", "value"), [("cgroup_driver", "cgroupv3"), ("pod_subnet", ""), ("image_repository", None)])
def test_bad_init_input_names_the_field(field, value):
    with pytest.raises(kc.KubeadmConfigError, match=rf"^{field}: "):
        kc.init_documents({**INIT, field: value})


def test_join_command_is_parsed_and_control_plane_join_needs_a_key():
    endpoint, token, hashes = kc.parse_join_command(JOIN_COMMAND)
    assert (endpoint, token) == ("10.0.0.10:6443", "abcdef.0123456789abcdef") and hashes[0].startswith("sha256:")
    params = {"kubernetes_version": "v1.20.2", "node_name": "w-1", "node_ip": "10.0.0.11",
              "api_server_endpoint": endpoint, "token": token, "ca_cert_hashes": hashes}
    (join,) = kc.join_documents(params)
    assert join["discovery"]["bootstrapToken"]["caCertHashes"] == hashes and "controlPlane" not in join
    with pytest.raises(kc.KubeadmConfigError, match=r"^certificate_key: "):
        kc.join_documents({**params, "control_plane": True})
    (cp_join,) = kc.join_documents({**params, "control_plane": True, "certificate_key": "ab" * 32})
    assert cp_join["controlPlane"]["localAPIEndpoint"]["advertiseAddress"] == "10.0.0.11"


@pytest.mark.parametrize("text", ["", "kubeadm join 10.0.0.10:6443 --token abc", "echo hello"])
def test_not_a_join_command_fails_naming_the_field(text):
    with pytest.raises(kc.KubeadmConfigError, match=r"^join_command: "):
        kc.parse_join_command(text)


def test_yaml_is_one_document_per_kind():
    text = kc.to_yaml(kc.init_documents(INIT))
    documents = [json.loads(part) for part in text.split("---\n") if part.strip()]
    assert [d["kind"] for d in documents] == ["InitConfiguration", "ClusterConfiguration", "KubeletConfiguration", "KubeProxyConfiguration"]


@pytest.mark.skipif(not KUBEADM.exists(), reason="no kubeadm 1.20 build in .cache (scripts/kube-build.sh)")
def test_real_kubeadm_reads_the_init_config_and_names_the_mirror_images(tmp_path):
    config = tmp_path / "init.yaml"
    config.write_text(kc.to_yaml(kc.init_documents(INIT)))
    images = subprocess.run([str(KUBEADM), "config", "images", "list", "--config", str(config)],
                            capture_output=True, text=True, check=True).stdout.split()
    assert "mirror.example:5000/kubernetes/kube-apiserver:v1.20.2" in images
    assert "mirror.example:5000/kubernetes/etcd:3.4.23-0" in images
    assert "mirror.example:5000/kubernetes/pause:3.2" in images


@pytest.mark.skipif(not KUBEADM.exists(), reason="no kubeadm 1.20 build in .cache (scripts/kube-build.sh)")
def test_real_kubeadm_reads_the_join_config(tmp_path):
    endpoint, token, hashes = kc.parse_join_command(JOIN_COMMAND)
    config = tmp_path / "join.yaml"
    config.write_text(kc.to_yaml(kc.join_documents({"kubernetes_version": "v1.20.2", "node_name": "w-1", "node_ip": "10.0.0.11",
                                                    "api_server_endpoint": endpoint, "token": token, "ca_cert_hashes": hashes})))
    migrated = subprocess.run([str(KUBEADM), "config", "migrate", "--old-config", str(config)],
                              capture_output=True, text=True, check=True).stdout
    assert "kind: JoinConfiguration" in migrated and "apiServerEndpoint: 10.0.0.10:6443" in migrated
