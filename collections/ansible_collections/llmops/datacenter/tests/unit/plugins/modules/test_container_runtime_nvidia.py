"""The container_runtime_nvidia module on a real file in a temporary directory."""

import tomllib

import pytest
from ansible_collections.llmops.datacenter.plugins.modules import container_runtime_nvidia as module

CONTAINERD_1_6 = "containerd github.com/containerd/containerd 1.6.20~ds1\n"


@pytest.fixture
def run_module(run_module):
    """Run the module with args; returns (failed, result). containerd --version answers as given."""

    def run(args, containerd_version_output=CONTAINERD_1_6, check_mode=False, diff=False):
        result = run_module(
            module,
            args,
            check_mode,
            diff,
            run_command=lambda argv: (0, containerd_version_output, ""),
            bin_path="/usr/bin/containerd",
        )
        return result.get("failed", False), result

    return run


@pytest.mark.parametrize("check_mode", [False, True])
def test_creates_config_only_outside_check_mode_then_is_idempotent(run_module, tmp_path, check_mode):
    path = tmp_path / "containerd" / "config.toml"
    args = {"config_path": str(path), "set_as_default": True}
    failed, result = run_module(args, check_mode=check_mode, diff=True)
    assert not failed and result["changed"] is True and result["restart_required"] is True
    assert result["config_version"] == 2 and "BinaryName" in result["diff"]["after"]
    if check_mode:
        assert not path.exists()
        return
    parsed = tomllib.loads(path.read_text())
    assert parsed["plugins"]["io.containerd.grpc.v1.cri"]["containerd"]["default_runtime_name"] == "nvidia"
    failed, again = run_module(args, diff=True)
    assert not failed and again["changed"] is False and again["restart_required"] is False


def test_new_config_for_containerd_2_is_version_3(run_module, tmp_path):
    path = tmp_path / "config.toml"
    failed, result = run_module({"config_path": str(path)}, "containerd containerd.io v2.0.5 fb4c30d\n")
    assert not failed and result["config_version"] == 3
    assert "io.containerd.cri.v1.runtime" in path.read_text()


def test_version_1_config_fails_and_is_left_alone(run_module, tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[plugins.cri]\n  sandbox_image = "pause"\n')
    failed, result = run_module({"config_path": str(path)})
    assert failed and result["msg"].startswith("config_version: the file has tables but no top-level version")
    assert path.read_text() == '[plugins.cri]\n  sandbox_image = "pause"\n'
