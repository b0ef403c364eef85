"""The NVIDIA device plugin objects: what a GPU node needs, strictly valid for 1.20.2 and a current release."""

from __future__ import annotations

import copy

import pytest

from llmops.cluster import (
    DevicePluginError,
    DevicePluginOptions,
    VersionError,
    render_device_plugin,
    validate_objects,
)

IMAGE = "lab-control:5000/nvidia/k8s-device-plugin:v0.17.1"
VERSIONS = ["v1.20.2", "1.33"]


def render(version="1.33", **options):
    return render_device_plugin(version, DevicePluginOptions(image=IMAGE, **options))


@pytest.mark.parametrize("version", VERSIONS)
def test_objects_pass_the_strict_schemas(version):
    objects = render(version)
    assert [o["kind"] for o in objects] == ["RuntimeClass", "DaemonSet"]
    assert validate_objects(objects, version) == []


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    ("index", "path", "field"),
    [
        (0, [], "handlerName"),
        (1, ["spec", "template", "spec"], "runtimeClass"),
        (1, ["spec", "template", "spec", "containers", 0], "mountPath"),
    ],
)
def test_an_unknown_field_is_a_schema_problem(version, index, path, field):
    """Strictness is real: a misspelt field the API server would drop or refuse is reported, for both releases."""
    objects = copy.deepcopy(render(version))
    target = objects[index]
    for key in path:
        target = target[key]
    target[field] = "x"
    problems = validate_objects(objects, version)
    assert problems and field in problems[0], problems


@pytest.mark.parametrize("version", VERSIONS)
def test_a_wrong_type_is_a_schema_problem(version):
    objects = render(version)
    objects[1]["spec"]["template"]["spec"]["tolerations"] = {"key": "nvidia.com/gpu"}
    assert any("tolerations" in p for p in validate_objects(objects, version))


def test_daemon_set_runs_on_gpu_nodes_only_with_the_nvidia_runtime():
    runtime_class, daemon_set = render()
    pod = daemon_set["spec"]["template"]["spec"]
    assert runtime_class["apiVersion"] == "node.k8s.io/v1"
    assert runtime_class["metadata"]["name"] == pod["runtimeClassName"] == "nvidia"
    assert runtime_class["handler"] == "nvidia"
    assert pod["nodeSelector"] == runtime_class["scheduling"]["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    assert pod["priorityClassName"] == "system-node-critical"
    assert pod["containers"][0]["image"] == IMAGE
    assert pod["containers"][0]["volumeMounts"][0]["mountPath"] == "/var/lib/kubelet/device-plugins"
    assert daemon_set["metadata"]["namespace"] == "kube-system"
    selector = daemon_set["spec"]["selector"]["matchLabels"]
    assert selector.items() <= daemon_set["spec"]["template"]["metadata"]["labels"].items()


def test_options_reach_the_objects():
    runtime_class, daemon_set = render(
        node_selector={"llmops.io/gpu-type": "H100-SXM-80GB"},
        runtime_handler="nvidia-cdi",
        gpu_taint_key="example.com/gpu",
        image_pull_secret="mirror-pull",
        namespace="gpu-operator",
    )
    pod = daemon_set["spec"]["template"]["spec"]
    assert runtime_class["handler"] == "nvidia-cdi"
    assert pod["nodeSelector"] == {"llmops.io/gpu-type": "H100-SXM-80GB"}
    assert pod["tolerations"][0]["key"] == "example.com/gpu"
    assert pod["imagePullSecrets"] == [{"name": "mirror-pull"}]
    assert daemon_set["metadata"]["namespace"] == "gpu-operator"
    assert validate_objects([runtime_class, daemon_set], "v1.20.2") == []


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"image": "k8s-device-plugin"}, "image: 'k8s-device-plugin' must be a full, pinned reference"),
        ({"image": "lab-control:5000/nvidia/k8s-device-plugin"}, "image: 'lab-control:5000/nvidia/k8s-device-plugin' must be"),
        ({"image": IMAGE, "namespace": "Kube_System"}, "namespace: 'Kube_System' must be a DNS-1123 label"),
        ({"image": IMAGE, "runtime_class": ""}, "runtime_class: '' must be a DNS-1123 label"),
        ({"image": IMAGE, "node_selector": {}}, "node_selector: empty; the plugin must run only on GPU nodes"),
        ({"image": IMAGE, "image_pull_secret": "Pull Secret"}, "image_pull_secret: 'Pull Secret' must be a Secret name"),
    ],
)
def test_bad_options_are_named(options, expected):
    with pytest.raises(DevicePluginError) as caught:
        render_device_plugin("1.33", DevicePluginOptions(**options))
    assert any(expected in p for p in caught.value.problems), caught.value.problems


def test_a_version_without_a_kubeadm_api_is_refused():
    with pytest.raises(VersionError, match="outside the versions"):
        render("1.19")
