# Copyright: llmops maintainers
# Apache License 2.0 (see galaxy.yml)
"""kubeadm configuration documents for one Kubernetes version, as plain data and YAML text.

Runs on the target host (standard library only). kubeadm's config API moved from v1beta2
(1.15-1.21) to v1beta3 (1.22-1.30) to v1beta4 (1.31+); the fields used here exist in all three,
except that v1beta4 turned `extraArgs`/`kubeletExtraArgs` from maps into lists of name/value pairs.
"""

from __future__ import annotations

import json
import re

_VERSION_RE = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)$")
CRI_SOCKET = "unix:///run/containerd/containerd.sock"
# kubeadm 1.20 (v1beta2) expects a bare socket path and derives the kubelet's remote-runtime flags from it.
CRI_SOCKET_V1BETA2 = "/run/containerd/containerd.sock"


class KubeadmConfigError(Exception):
    """Bad input; the message names the field and what is accepted."""


def parse_version(version):
    """'v1.20.2' or '1.20.2' -> (1, 20, 2)."""
    match = _VERSION_RE.match(str(version or "").strip())
    if not match:
        raise KubeadmConfigError(f"kubernetes_version: {version!r} is not a version like v1.20.2")
    return tuple(int(part) for part in match.groups())


def api_version(kubernetes_version):
    """The kubeadm config API group/version kubeadm of that release reads."""
    major, minor, _patch = parse_version(kubernetes_version)
    if major != 1 or minor < 15:
        raise KubeadmConfigError(f"kubernetes_version: {kubernetes_version} is not supported; accepted: v1.15.0 and later 1.x")
    if minor <= 21:
        return "kubeadm.k8s.io/v1beta2"
    if minor <= 30:
        return "kubeadm.k8s.io/v1beta3"
    return "kubeadm.k8s.io/v1beta4"


def _args(api, mapping):
    """extraArgs in the form the API version wants (a map before v1beta4, a name/value list from it)."""
    if api.endswith("v1beta4"):
        return [{"name": key, "value": str(value)} for key, value in sorted(mapping.items())]
    return {key: str(value) for key, value in sorted(mapping.items())}


def _node_registration(api, node_name, node_ip, taints, cri_socket):
    if not cri_socket:
        cri_socket = CRI_SOCKET_V1BETA2 if api.endswith("v1beta2") else CRI_SOCKET
    registration = {"name": node_name, "criSocket": cri_socket, "kubeletExtraArgs": _args(api, {"node-ip": node_ip})}
    if taints is not None:
        registration["taints"] = taints
    return registration


def init_documents(params):
    """InitConfiguration, ClusterConfiguration, KubeletConfiguration, KubeProxyConfiguration for `kubeadm init`.

    params: kubernetes_version, node_name, advertise_address, pod_subnet, service_subnet,
    image_repository, etcd_image_tag (or None), control_plane_endpoint (or None), cluster_name,
    cgroup_driver, cri_socket (optional), dns_domain (optional), certificate_key (optional).
    """
    api = api_version(params["kubernetes_version"])
    version = "v{}.{}.{}".format(*parse_version(params["kubernetes_version"]))
    if params.get("cgroup_driver") not in ("systemd", "cgroupfs"):
        raise KubeadmConfigError(f"cgroup_driver: {params.get('cgroup_driver')!r}; accepted: systemd, cgroupfs")
    for field in ("node_name", "advertise_address", "pod_subnet", "service_subnet", "image_repository"):
        if not params.get(field):
            raise KubeadmConfigError(f"{field}: required for kubeadm init")
    cri_socket = params.get("cri_socket")
    init = {
        "apiVersion": api,
        "kind": "InitConfiguration",
        "localAPIEndpoint": {"advertiseAddress": params["advertise_address"], "bindPort": 6443},
        "nodeRegistration": _node_registration(api, params["node_name"], params["advertise_address"], None, cri_socket),
    }
    if params.get("certificate_key"):
        init["certificateKey"] = params["certificate_key"]
    cluster = {
        "apiVersion": api,
        "kind": "ClusterConfiguration",
        "kubernetesVersion": version,
        "clusterName": params.get("cluster_name") or "kubernetes",
        "imageRepository": params["image_repository"],
        "networking": {
            "podSubnet": params["pod_subnet"],
            "serviceSubnet": params["service_subnet"],
            "dnsDomain": params.get("dns_domain") or "cluster.local",
        },
    }
    if params.get("etcd_image_tag"):
        cluster["etcd"] = {"local": {"imageTag": params["etcd_image_tag"]}}
    if params.get("control_plane_endpoint"):
        cluster["controlPlaneEndpoint"] = params["control_plane_endpoint"]
    kubelet = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "cgroupDriver": params["cgroup_driver"],
    }
    proxy = {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "mode": "iptables",
        # 0: leave nf_conntrack_max alone. It is a host-wide sysctl; in a container (and wherever the
        # host's own tuning should win) kube-proxy cannot or should not write it, and exits trying.
        "conntrack": {"maxPerCore": 0},
    }
    return [init, cluster, kubelet, proxy]


def join_documents(params):
    """JoinConfiguration for `kubeadm join` (a worker, or a control plane with certificate_key).

    params: kubernetes_version, node_name, node_ip, api_server_endpoint, token,
    ca_cert_hashes (list), control_plane (bool), certificate_key, cri_socket (optional).
    """
    api = api_version(params["kubernetes_version"])
    for field in ("node_name", "node_ip", "api_server_endpoint", "token"):
        if not params.get(field):
            raise KubeadmConfigError(f"{field}: required for kubeadm join")
    if not params.get("ca_cert_hashes"):
        raise KubeadmConfigError("ca_cert_hashes: required for kubeadm join (sha256:<hex> of the cluster CA's public key)")
    join = {
        "apiVersion": api,
        "kind": "JoinConfiguration",
        "discovery": {
            "bootstrapToken": {
                "apiServerEndpoint": params["api_server_endpoint"],
                "token": params["token"],
                "caCertHashes": list(params["ca_cert_hashes"]),
            }
        },
        "nodeRegistration": _node_registration(
            api, params["node_name"], params["node_ip"], None, params.get("cri_socket")
        ),
    }
    if params.get("control_plane"):
        if not params.get("certificate_key"):
            raise KubeadmConfigError("certificate_key: required to join a further control plane")
        join["controlPlane"] = {
            "localAPIEndpoint": {"advertiseAddress": params["node_ip"], "bindPort": 6443},
            "certificateKey": params["certificate_key"],
        }
    return [join]


def to_yaml(documents):
    """Multi-document YAML. JSON is valid YAML, and kubeadm reads it; one document per `---`."""
    return "".join("---\n" + json.dumps(document, indent=2, sort_keys=True) + "\n" for document in documents)


def parse_join_command(command):
    """(api_server_endpoint, token, [ca cert hashes]) from `kubeadm token create --print-join-command` output."""
    words = (command or "").split()
    try:
        endpoint = words[words.index("join") + 1]
        token = words[words.index("--token") + 1]
    except (ValueError, IndexError):
        raise KubeadmConfigError("join_command: not the output of `kubeadm token create --print-join-command`") from None
    hashes = [words[index + 1] for index, word in enumerate(words[:-1]) if word == "--discovery-token-ca-cert-hash"]
    if not hashes:
        raise KubeadmConfigError("join_command: it has no --discovery-token-ca-cert-hash")
    return endpoint, token, hashes
