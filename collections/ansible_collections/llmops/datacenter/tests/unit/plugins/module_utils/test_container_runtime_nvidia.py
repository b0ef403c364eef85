"""The section-aware TOML edit that registers the NVIDIA runtime."""

import tomllib

import pytest
from ansible_collections.llmops.datacenter.plugins.module_utils import container_runtime_nvidia as crn

# The shape `containerd config default` prints for containerd 1.6/1.7 (trimmed), with an operator comment.
CONTAINERD_1_CONFIG = """disabled_plugins = []
version = 2

[plugins]

  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "registry.k8s.io/pause:3.9"

    [plugins."io.containerd.grpc.v1.cri".containerd]
      # runc stays the default unless the operator says otherwise
      default_runtime_name = "runc"
      snapshotter = "overlayfs"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes]

        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
          runtime_type = "io.containerd.runc.v2"

          [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
            SystemdCgroup = true
"""


def nvidia_runtime(parsed, base=("plugins", "io.containerd.grpc.v1.cri", "containerd")):
    node = parsed
    for part in base:
        node = node[part]
    return node


def test_existing_containerd_1_config_gains_the_runtime_and_keeps_everything_else():
    text, version = crn.render(CONTAINERD_1_CONFIG, "containerd", None, "nvidia", "/usr/bin/nvidia-container-runtime", True)
    assert version == 2
    parsed = tomllib.loads(text)
    containerd = nvidia_runtime(parsed)
    assert containerd["default_runtime_name"] == "nvidia" and containerd["snapshotter"] == "overlayfs"
    assert containerd["runtimes"]["nvidia"] == {
        "runtime_type": "io.containerd.runc.v2",
        "options": {"BinaryName": "/usr/bin/nvidia-container-runtime"},
    }
    assert containerd["runtimes"]["runc"]["options"]["SystemdCgroup"] is True
    assert "# runc stays the default unless the operator says otherwise" in text
    assert 'default_runtime_name = "runc"' not in text
    # Applying the same edit again changes nothing.
    again, _ = crn.render(text, "containerd", None, "nvidia", "/usr/bin/nvidia-container-runtime", True)
    assert again == text


def test_new_file_for_containerd_2_uses_version_3_tables():
    text, version = crn.render(None, "containerd", 3, "nvidia", "/usr/bin/nvidia-container-runtime", False)
    assert version == 3 and text.startswith("version = 3\n")
    parsed = tomllib.loads(text)
    runtimes = nvidia_runtime(parsed, ("plugins", "io.containerd.cri.v1.runtime", "containerd"))["runtimes"]
    assert runtimes["nvidia"]["options"]["BinaryName"] == "/usr/bin/nvidia-container-runtime"
    assert "default_runtime_name" not in parsed["plugins"]["io.containerd.cri.v1.runtime"]["containerd"]


def test_crio_drop_in():
    text, version = crn.render(None, "crio", None, "nvidia", "/usr/bin/nvidia-container-runtime", True)
    assert version is None
    assert tomllib.loads(text) == {
        "crio": {"runtime": {"default_runtime": "nvidia", "runtimes": {"nvidia": {"runtime_path": "/usr/bin/nvidia-container-runtime", "runtime_type": "oci"}}}}
    }


def test_changed_binary_path_replaces_the_line_in_place():
    text, _ = crn.render(CONTAINERD_1_CONFIG, "containerd", None, "nvidia", "/usr/bin/nvidia-container-runtime", False)
    moved, _ = crn.render(text, "containerd", None, "nvidia", "/opt/nvidia/bin/nvidia-container-runtime", False)
    assert moved.count("BinaryName") == 1
    assert nvidia_runtime(tomllib.loads(moved))["runtimes"]["nvidia"]["options"]["BinaryName"] == "/opt/nvidia/bin/nvidia-container-runtime"


@pytest.mark.parametrize(
    ("current", "requested", "message"),
    [
        ('[plugins.cri]\n  sandbox_image = "pause"\n', None, "no top-level version, i.e. containerd's version 1 format"),
        ("version = 4\n", None, "declares version = 4; accepted: 2, 3"),
        ("version = 2\n", 3, "3 was requested but the file declares version = 2; accepted: 2 or auto"),
        ("version = 2\n[plugins\n", None, "would not parse as TOML"),
    ],
)
def test_configs_it_must_not_edit_are_refused(current, requested, message):
    with pytest.raises(crn.RuntimeConfigError, match=message):
        crn.render(current, "containerd", requested, "nvidia", "/usr/bin/nvidia-container-runtime", False)


def test_values_set_through_dotted_keys_elsewhere_are_refused_not_duplicated():
    current = 'version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd]\n  runtimes.nvidia.runtime_type = "io.containerd.kata.v2"\n'
    with pytest.raises(crn.RuntimeConfigError, match="nothing was written"):
        crn.render(current, "containerd", None, "nvidia", "/usr/bin/nvidia-container-runtime", False)


@pytest.mark.parametrize(
    ("output", "major"),
    [
        ("containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+b1\n", 1),
        ("containerd containerd.io v2.0.5 fb4c30d4ede3531652d86197bf3fc9515e5276d9\n", 2),
        ("", None),
    ],
)
def test_containerd_major_version(output, major):
    assert crn.containerd_major_version(output) == major
