"""The container_runtime_nvidia module on a real file in a temporary directory."""

import json
import tomllib
from unittest import mock

import pytest
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args
from ansible_collections.llmops.datacenter.plugins.modules import container_runtime_nvidia as module


def run_module(args, containerd_version_output="containerd github.com/containerd/containerd 1.6.20~ds1\n"):
    with (
        patch_module_args(args),
        mock.patch.object(basic.AnsibleModule, "run_command", return_value=(0, containerd_version_output, "")),
        mock.patch.object(basic.AnsibleModule, "get_bin_path", return_value="/usr/bin/containerd"),
        mock.patch.object(basic.AnsibleModule, "_log_invocation"),
        mock.patch("sys.stdout.write") as written,
        pytest.raises(SystemExit) as exited,
    ):
        module.main()
    return exited.value.code != 0, json.loads("".join(call.args[0] for call in written.call_args_list))


@pytest.mark.parametrize("check_mode", [False, True])
def test_creates_config_only_outside_check_mode_then_is_idempotent(tmp_path, check_mode):
    path = tmp_path / "containerd" / "config.toml"
    args = {"config_path": str(path), "set_as_default": True, "_ansible_check_mode": check_mode, "_ansible_diff": True}
    failed, result = run_module(args)
    assert not failed and result["changed"] is True and result["restart_required"] is True
    assert result["config_version"] == 2 and "BinaryName" in result["diff"]["after"]
    if check_mode:
        assert not path.exists()
        return
    parsed = tomllib.loads(path.read_text())
    assert parsed["plugins"]["io.containerd.grpc.v1.cri"]["containerd"]["default_runtime_name"] == "nvidia"
    failed, again = run_module({**args, "_ansible_check_mode": False})
    assert not failed and again["changed"] is False and again["restart_required"] is False


def test_new_config_for_containerd_2_is_version_3(tmp_path):
    path = tmp_path / "config.toml"
    failed, result = run_module({"config_path": str(path)}, "containerd containerd.io v2.0.5 fb4c30d\n")
    assert not failed and result["config_version"] == 3
    assert "io.containerd.cri.v1.runtime" in path.read_text()


def test_version_1_config_fails_and_is_left_alone(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[plugins.cri]\n  sandbox_image = "pause"\n')
    failed, result = run_module({"config_path": str(path)})
    assert failed and result["msg"].startswith("config_version: the file has tables but no top-level version")
    assert path.read_text() == '[plugins.cri]\n  sandbox_image = "pause"\n'
