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


@pytest.mark.parametrize("check_mode", [False, True])
def test_cri_settings_without_the_nvidia_runtime(run_module, tmp_path, check_mode):
    path = tmp_path / "config.toml"
    path.write_text('version = 2\n\n[plugins]\n  [plugins."io.containerd.grpc.v1.cri"]\n    [plugins."io.containerd.grpc.v1.cri".cni]\n'
                    '      bin_dir = "/usr/lib/cni"\n')
    args = {
        "config_path": str(path),
        "register_runtime": False,
        "settings": {
            'plugins."io.containerd.grpc.v1.cri"': {"sandbox_image": "mirror:5000/kubernetes/pause:3.2", "restrict_oom_score_adj": True},
            'plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options': {"SystemdCgroup": False},
        },
        "secret_settings": {'plugins."io.containerd.grpc.v1.cri".registry.configs."mirror:5000".auth': {"password": "s3cret"}},
    }
    before = path.read_text()
    failed, result = run_module(args, check_mode=check_mode)
    assert not failed and result["changed"] is True
    if check_mode:
        assert path.read_text() == before
        return
    parsed = tomllib.loads(path.read_text())
    cri = parsed["plugins"]["io.containerd.grpc.v1.cri"]
    assert cri["sandbox_image"] == "mirror:5000/kubernetes/pause:3.2" and cri["restrict_oom_score_adj"] is True
    assert cri["cni"]["bin_dir"] == "/usr/lib/cni" and "nvidia" not in path.read_text()
    assert cri["containerd"]["runtimes"]["runc"]["options"]["SystemdCgroup"] is False
    assert cri["registry"]["configs"]["mirror:5000"]["auth"]["password"] == "s3cret"
    failed, again = run_module(args)
    assert not failed and again["changed"] is False


def test_settings_that_are_not_tables_fail_naming_the_field(run_module, tmp_path):
    path = tmp_path / "config.toml"
    failed, result = run_module({"config_path": str(path), "settings": {"plugins": "oops"}})
    assert failed and result["msg"].startswith("settings: ") and not path.exists()
