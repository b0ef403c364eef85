"""The NVIDIA device plugin as Kubernetes objects: a RuntimeClass `nvidia` and the DaemonSet.

The shape follows NVIDIA's static manifest (nvidia-device-plugin.yml of k8s-device-plugin):
one pod per GPU node, tolerating the GPU taint, registering `nvidia.com/gpu` with the kubelet
through /var/lib/kubelet/device-plugins. Added here: the pod runs with the `nvidia` runtime (so
it sees the driver's libraries without being the cluster's default runtime), only on nodes with
the GPU label, at system-node-critical priority, from the site mirror's registry.
Pure function: `render_device_plugin(version, options) -> list[dict]`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .versions import cluster_api_versions, parse_kube_version

DEFAULT_NODE_SELECTOR = {"nvidia.com/gpu.present": "true"}
GPU_TAINT_KEY = "nvidia.com/gpu"
PLUGIN_DIR = "/var/lib/kubelet/device-plugins"
NAME = "nvidia-device-plugin"
_IMAGE = re.compile(r"^[a-z0-9][a-z0-9.\-]*(:[0-9]+)?(/[a-z0-9._\-]+)+(:[\w][\w.\-]{0,127})?(@sha256:[0-9a-f]{64})?$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


class DevicePluginError(ValueError):
    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class DevicePluginOptions:
    # Full reference in the site mirror, e.g. mirror.example:5000/nvidia/k8s-device-plugin:v0.17.1
    image: str
    namespace: str = "kube-system"
    node_selector: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_NODE_SELECTOR))
    runtime_class: str = "nvidia"
    # The containerd runtime name container_runtime_nvidia configures.
    runtime_handler: str = "nvidia"
    gpu_taint_key: str = GPU_TAINT_KEY
    image_pull_secret: str | None = None


def _check(options: DevicePluginOptions) -> list[str]:
    problems = []
    if not _IMAGE.match(options.image or "") or ("@" not in options.image and ":" not in options.image.rsplit("/", 1)[-1]):
        problems.append(
            f"image: {options.image!r} must be a full, pinned reference in the mirror"
            " (registry[:port]/path:tag or @sha256:digest)"
        )
    for name, value in (("namespace", options.namespace), ("runtime_class", options.runtime_class), ("runtime_handler", options.runtime_handler)):
        if not _DNS_LABEL.match(value or ""):
            problems.append(f"{name}: {value!r} must be a DNS-1123 label (lowercase letters, digits, '-', at most 63)")
    if not options.node_selector:
        problems.append("node_selector: empty; the plugin must run only on GPU nodes (for example nvidia.com/gpu.present: 'true')")
    if options.image_pull_secret is not None and not _DNS_LABEL.match(options.image_pull_secret):
        problems.append(f"image_pull_secret: {options.image_pull_secret!r} must be a Secret name (DNS-1123 label)")
    return problems


def render_device_plugin(kubernetes_version: str, options: DevicePluginOptions) -> list[dict]:
    problems = _check(options)
    if problems:
        raise DevicePluginError(problems)
    apis = cluster_api_versions(parse_kube_version(kubernetes_version))
    labels = {"app.kubernetes.io/name": NAME, "app.kubernetes.io/managed-by": "llmops"}
    toleration = {"key": options.gpu_taint_key, "operator": "Exists", "effect": "NoSchedule"}
    runtime_class = {
        "apiVersion": apis.runtime_class,
        "kind": "RuntimeClass",
        "metadata": {"name": options.runtime_class, "labels": dict(labels)},
        "handler": options.runtime_handler,
        # Pods asking for this runtime land only where it exists, and may go onto tainted GPU nodes.
        "scheduling": {"nodeSelector": dict(options.node_selector), "tolerations": [toleration]},
    }
    pod_spec = {
        "runtimeClassName": options.runtime_class,
        "priorityClassName": "system-node-critical",
        "nodeSelector": dict(options.node_selector),
        "tolerations": [toleration, {"key": "CriticalAddonsOnly", "operator": "Exists"}],
        "containers": [
            {
                "name": "nvidia-device-plugin-ctr",
                "image": options.image,
                "imagePullPolicy": "IfNotPresent",
                # A node whose driver is not up yet keeps the pod running (and retrying), not crash-looping.
                "env": [{"name": "FAIL_ON_INIT_ERROR", "value": "false"}],
                "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
                "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "128Mi"}},
                "volumeMounts": [{"name": "device-plugin", "mountPath": PLUGIN_DIR}],
            }
        ],
        "volumes": [{"name": "device-plugin", "hostPath": {"path": PLUGIN_DIR, "type": "Directory"}}],
    }
    if options.image_pull_secret:
        pod_spec["imagePullSecrets"] = [{"name": options.image_pull_secret}]
    daemon_set = {
        "apiVersion": apis.daemon_set,
        "kind": "DaemonSet",
        "metadata": {"name": NAME, "namespace": options.namespace, "labels": dict(labels)},
        "spec": {
            "selector": {"matchLabels": {"app.kubernetes.io/name": NAME}},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
            "template": {"metadata": {"labels": dict(labels)}, "spec": pod_spec},
        },
    }
    return [runtime_class, daemon_set]
