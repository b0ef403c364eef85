"""Check a cluster's declaration before any host changes, and return it normalized.

Every problem is collected, so one run names them all; each line names the field (and the
host) and says what is accepted. `check_cluster` returns a `Cluster` or raises `ClusterError`.
"""

from __future__ import annotations

import ipaddress
import math
import re
from dataclasses import dataclass, field
from typing import Any

from .bundle import Bundle, read_bundle
from .versions import (
    ClusterApiVersions,
    KubeVersion,
    UpgradeStep,
    VersionError,
    cluster_api_versions,
    parse_kube_version,
    upgrade_step,
)

# Node names are DNS-1123 subdomains (what the API server accepts for a Node's name).
_DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS_SUBDOMAIN = re.compile(rf"^{_DNS_LABEL}(\.{_DNS_LABEL})*$")
DEFAULT_API_PORT = 6443
# kube-controller-manager's default per-node pod CIDR sizes (--node-cidr-mask-size-ipv4/-ipv6).
NODE_CIDR_MASK = {4: 24, 6: 64}
# The API server refuses a service range with more than 20 host bits (1.20 and later).
MAX_SERVICE_HOST_BITS = 20

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class ClusterError(ValueError):
    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass
class ClusterRequest:
    kubernetes_version: str
    control_plane_hosts: list[str]
    pod_subnet: str
    service_subnet: str
    worker_hosts: list[str] = field(default_factory=list)
    schedulable_control_planes: list[str] = field(default_factory=list)
    control_plane_endpoint: str | None = None
    node_addresses: dict[str, str] = field(default_factory=dict)
    node_networks: list[str] = field(default_factory=list)
    bundle: str | None = None
    upgrade_from: str | None = None


@dataclass(frozen=True)
class Cluster:
    version: KubeVersion
    api_versions: ClusterApiVersions
    control_plane_hosts: list[str]
    worker_hosts: list[str]
    control_plane_endpoint: str | None
    pod_subnet: str
    service_subnet: str
    node_addresses: dict[str, str]
    bundle: Bundle | None
    upgrade: UpgradeStep | None

    def as_dict(self) -> dict[str, Any]:
        hosts = list(dict.fromkeys([*self.control_plane_hosts, *self.worker_hosts]))
        return {
            "kubernetes_version": str(self.version),
            "minor": self.version.minor_text,
            "kubeadm_api_version": self.api_versions.kubeadm,
            "api_versions": self.api_versions.as_dict(),
            "control_plane_hosts": self.control_plane_hosts,
            "worker_hosts": self.worker_hosts,
            "first_control_plane": self.control_plane_hosts[0],
            "control_plane_endpoint": self.control_plane_endpoint,
            "pod_subnet": self.pod_subnet,
            "service_subnet": self.service_subnet,
            "nodes": [
                {
                    "name": host,
                    "roles": [r for r, group in (("control-plane", self.control_plane_hosts), ("worker", self.worker_hosts)) if host in group],
                    "address": self.node_addresses.get(host),
                }
                for host in hosts
            ],
            "bundle": self.bundle.as_dict() if self.bundle else None,
            "upgrade": self.upgrade.as_dict() if self.upgrade else None,
        }


def _network(field_name: str, text: Any, problems: list[str]) -> Network | None:
    if not isinstance(text, str) or "," in text:
        problems.append(f"{field_name}: {text!r} must be one CIDR such as 10.244.0.0/16 (dual-stack is not supported)")
        return None
    try:
        return ipaddress.ip_network(text.strip(), strict=True)
    except ValueError as error:
        try:
            fixed = ipaddress.ip_network(text.strip(), strict=False)
        except ValueError:
            problems.append(f"{field_name}: {text!r} is not a CIDR ({error}); for example 10.244.0.0/16")
            return None
        problems.append(f"{field_name}: {text!r} has host bits set; the network is {fixed}")
        return None


def _check_names(field_name: str, hosts: list[str], problems: list[str]) -> None:
    seen: set[str] = set()
    for host in hosts:
        if host in seen:
            problems.append(f"{field_name}: {host!r} is listed twice")
        seen.add(host)
        if not isinstance(host, str) or len(host) > 253 or not _DNS_SUBDOMAIN.match(host):
            problems.append(
                f"{field_name}: {host!r} is not a valid node name (DNS-1123 subdomain: lowercase letters, digits,"
                " '-' and '.', starting and ending with a letter or digit, at most 253 characters)"
            )


def _endpoint(text: str, problems: list[str]) -> str | None:
    raw = text.strip()
    match = re.match(r"^\[([0-9a-fA-F:.]+)\](?::(\d+))?$", raw) or re.match(r"^([^:\[\]]+)(?::(\d+))?$", raw)
    accepted = "host or host:port with a DNS name or IP address, for example cp.example.com:6443"
    if not match:
        problems.append(f"control_plane_endpoint: {text!r} is not {accepted}")
        return None
    host, port_text = match.group(1), match.group(2)
    port = int(port_text) if port_text else DEFAULT_API_PORT
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
        if len(host) > 253 or not _DNS_SUBDOMAIN.match(host.lower()):
            problems.append(f"control_plane_endpoint: host {host!r} is not a DNS name or IP address ({accepted})")
            return None
    if not 1 <= port <= 65535:
        problems.append(f"control_plane_endpoint: port {port} is not between 1 and 65535")
        return None
    shown = f"[{address}]" if isinstance(address, ipaddress.IPv6Address) else host
    return f"{shown}:{port}"


def _check_topology(request: ClusterRequest, problems: list[str]) -> None:
    control, workers = request.control_plane_hosts, request.worker_hosts
    _check_names("control_plane_hosts", control, problems)
    _check_names("worker_hosts", workers, problems)
    if not control:
        if workers:
            problems.append(
                f"worker_hosts: {', '.join(workers)} declared with no control plane; control_plane_hosts"
                " must name at least one host (the kube_control_plane group)"
            )
        else:
            problems.append("control_plane_hosts: empty; name at least one host (the kube_control_plane group)")
    if len(control) > 1 and not request.control_plane_endpoint:
        problems.append(
            f"control_plane_endpoint: required with {len(control)} control planes ({', '.join(control)}):"
            " a load-balanced address in front of all of them, host or host:port"
        )
    for host in request.schedulable_control_planes:
        if host not in control:
            problems.append(
                f"schedulable_control_planes: {host!r} is not a control plane (accepted: {', '.join(control) or 'none'})"
            )
    for host in workers:
        if host in control and host not in request.schedulable_control_planes:
            problems.append(
                f"worker_hosts: {host!r} is also in control_plane_hosts; list it in schedulable_control_planes"
                " to run workloads on that control plane, or remove it from one of the groups"
            )


def _check_networks(request: ClusterRequest, problems: list[str]) -> tuple[Network | None, Network | None, dict[str, str]]:
    pod = _network("pod_subnet", request.pod_subnet, problems)
    service = _network("service_subnet", request.service_subnet, problems)
    nodes = list(dict.fromkeys([*request.control_plane_hosts, *request.worker_hosts]))
    if pod and service:
        if pod.version != service.version:
            problems.append(f"service_subnet: {service} is IPv{service.version}, pod_subnet {pod} is IPv{pod.version}: use one family")
        elif pod.overlaps(service):
            problems.append(f"pod_subnet: {pod} overlaps service_subnet {service}; choose disjoint ranges")
    if pod:
        mask = NODE_CIDR_MASK[pod.version]
        if pod.prefixlen > mask:
            problems.append(f"pod_subnet: {pod} is smaller than one node's /{mask}; use a prefix of /{mask} or shorter")
        elif nodes and 2 ** (mask - pod.prefixlen) < len(nodes):
            needed = mask - math.ceil(math.log2(len(nodes)))
            problems.append(f"pod_subnet: {pod} holds {2 ** (mask - pod.prefixlen)} node ranges of /{mask} for {len(nodes)} nodes; use /{needed} or shorter")
    if service and service.max_prefixlen - service.prefixlen > MAX_SERVICE_HOST_BITS:
        shortest = service.max_prefixlen - MAX_SERVICE_HOST_BITS
        problems.append(f"service_subnet: {service} is larger than the API server accepts; use /{shortest} or longer")
    named = [(name, net) for name, net in (("pod_subnet", pod), ("service_subnet", service)) if net]
    for index, text in enumerate(request.node_networks):
        node_net = _network(f"node_networks[{index}]", text, problems)
        for name, net in named:
            if node_net and node_net.version == net.version and node_net.overlaps(net):
                problems.append(f"{name}: {net} overlaps the node network {node_net} (node_networks[{index}])")
    addresses: dict[str, str] = {}
    for host, text in request.node_addresses.items():
        if host not in nodes:
            problems.append(f"node_addresses: {host!r} is not a declared node (accepted: {', '.join(nodes) or 'none'})")
            continue
        try:
            address = ipaddress.ip_address(str(text).strip())
        except ValueError:
            problems.append(f"node_addresses.{host}: {text!r} is not an IP address")
            continue
        owner = next((other for other, seen in addresses.items() if seen == str(address)), None)
        if owner is not None:
            problems.append(f"node_addresses.{host}: {address} is also {owner}'s address; each node needs its own")
        addresses[host] = str(address)
        for name, net in named:
            if address in net:
                problems.append(f"{name}: {net} overlaps the node network: {host}'s address {address} lies in it")
    return pod, service, addresses


def _check_version(request: ClusterRequest, problems: list[str]) -> tuple[KubeVersion | None, Bundle | None, UpgradeStep | None]:
    version = bundle = step = None
    try:
        version = parse_kube_version(request.kubernetes_version)
    except VersionError as error:
        problems.append(str(error))
    if request.bundle:
        bundle, bundle_problems = read_bundle(request.bundle)
        problems += bundle_problems
    if version and bundle:
        try:
            held = parse_kube_version(bundle.kubernetes_version, field=f"bundle: {bundle.path}: kubernetes_version")
        except VersionError as error:
            problems.append(str(error))
        else:
            if version.patch is None and version.minor_version == held.minor_version:
                version = held
            elif version != held:
                problems.append(
                    f"kubernetes_version: {version} is not held by the mirror (bundle {bundle.path} holds {held});"
                    f" accepted: {held}, or load a bundle of {version} into the mirror"
                )
    if version and request.upgrade_from:
        try:
            step = upgrade_step(request.upgrade_from, str(version))
        except VersionError as error:
            problems.append(str(error))
    return version, bundle, step


def _check_endpoint_address(endpoint: str | None, pod: Network | None, service: Network | None, problems: list[str]) -> None:
    """An endpoint given as an IP address must not lie in the pod or Service range (it would be routed into the cluster)."""
    if not endpoint:
        return
    try:
        address = ipaddress.ip_address(endpoint.rsplit(":", 1)[0].strip("[]"))
    except ValueError:
        return
    for name, net in (("pod_subnet", pod), ("service_subnet", service)):
        if net and address in net:
            problems.append(f"control_plane_endpoint: {address} lies in {name} {net}; use an address on the node network")


def check_cluster(request: ClusterRequest) -> Cluster:
    problems: list[str] = []
    version, bundle, step = _check_version(request, problems)
    _check_topology(request, problems)
    endpoint = _endpoint(request.control_plane_endpoint, problems) if request.control_plane_endpoint else None
    pod, service, addresses = _check_networks(request, problems)
    _check_endpoint_address(endpoint, pod, service, problems)
    if problems:
        raise ClusterError(problems)
    assert version and pod and service
    return Cluster(
        version=version,
        api_versions=cluster_api_versions(version),
        control_plane_hosts=list(request.control_plane_hosts),
        worker_hosts=list(request.worker_hosts),
        control_plane_endpoint=endpoint,
        pod_subnet=str(pod),
        service_subnet=str(service),
        node_addresses=addresses,
        bundle=bundle,
        upgrade=step,
    )
