"""The kubeadm module: runs kubeadm only on a node that is not part of a cluster yet."""

import pathlib

import pytest
from ansible_collections.llmops.datacenter.plugins.modules import kubeadm as module

JOIN_COMMAND = (
    "kubeadm join 10.0.0.10:6443 --token abcdef.0123456789abcdef --discovery-token-ca-cert-hash "
    "sha256:0e51cb1f6fa15362cd73c4a0079cafd411b48b670dc7588fcc384b4495d40947"
)
INIT = {
    "mode": "init", "kubernetes_version": "v1.20.2", "node_name": "cp-1", "node_ip": "10.0.0.10",
    "pod_subnet": "10.244.0.0/16", "service_subnet": "10.96.0.0/12", "image_repository": "mirror:5000/kubernetes",
    "skip_phases": ["addon/coredns"],
}


@pytest.fixture
def node(tmp_path, monkeypatch):
    """A node's /etc/kubernetes in a temporary directory and an executable kubeadm path."""
    etc = tmp_path / "etc-kubernetes"
    etc.mkdir()
    monkeypatch.setattr(module, "ADMIN_CONF", str(etc / "admin.conf"))
    monkeypatch.setattr(module, "KUBELET_CONF", str(etc / "kubelet.conf"))
    kubeadm = tmp_path / "kubeadm"
    kubeadm.write_text("#!/bin/sh\nexit 0\n")
    kubeadm.chmod(0o755)
    return etc, str(kubeadm)


class Recorder:
    """run_command boundary: records argv and the config file kubeadm would read."""

    def __init__(self, rc=0, stdout="", stderr=""):
        self.calls, self.configs, self.answer = [], [], (rc, stdout, stderr)

    def __call__(self, argv):
        self.calls.append(argv)
        self.configs.append(pathlib.Path(argv[argv.index("--config") + 1]).read_text())
        return self.answer


def test_init_runs_kubeadm_once_with_skipped_phases_and_hides_the_token(run_module, node):
    etc, kubeadm = node
    recorder = Recorder(stdout="Your cluster is up\nkubeadm join 10.0.0.10:6443 --token abc.def \\\n")
    result = run_module(module, {**INIT, "kubeadm_path": kubeadm}, run_command=recorder, bin_path=None)
    assert result["changed"] is True and not result.get("failed")
    argv = recorder.calls[0]
    assert argv[:2] == [kubeadm, "init"] and "--skip-phases=addon/coredns,preflight" in argv
    assert '"imageRepository": "mirror:5000/kubernetes"' in recorder.configs[0]
    assert "--token" not in result["stdout"] and "Your cluster is up" in result["stdout"]
    assert any("crictl" in warning for warning in result["warnings"])
    (etc / "admin.conf").write_text("apiVersion: v1\n")
    again = run_module(module, {**INIT, "kubeadm_path": kubeadm}, run_command=Recorder(), bin_path=None)
    assert again["changed"] is False and again["already_done"] is True


def test_with_crictl_the_preflight_phase_runs(run_module, node):
    _etc, kubeadm = node
    recorder = Recorder()
    run_module(module, {**INIT, "kubeadm_path": kubeadm, "ignore_preflight_errors": ["Swap"]},
               run_command=recorder, bin_path="/usr/bin/crictl")
    assert "--skip-phases=addon/coredns" in recorder.calls[0]
    assert "--ignore-preflight-errors=Swap" in recorder.calls[0]


def test_check_mode_reports_the_join_and_runs_nothing(run_module, node):
    _etc, kubeadm = node
    recorder = Recorder()
    args = {"mode": "join", "kubernetes_version": "v1.20.2", "node_name": "w-1", "node_ip": "10.0.0.11",
            "join_command": JOIN_COMMAND, "kubeadm_path": kubeadm}
    result = run_module(module, args, check_mode=True, run_command=recorder, bin_path=None)
    assert result["changed"] is True and recorder.calls == []


def test_worker_is_joined_when_kubelet_conf_exists(run_module, node):
    etc, kubeadm = node
    (etc / "kubelet.conf").write_text("apiVersion: v1\n")
    recorder = Recorder()
    args = {"mode": "join", "kubernetes_version": "v1.20.2", "node_name": "w-1", "node_ip": "10.0.0.11",
            "join_command": JOIN_COMMAND, "kubeadm_path": kubeadm}
    result = run_module(module, args, run_command=recorder, bin_path=None)
    assert result["changed"] is False and recorder.calls == []


@pytest.mark.parametrize(
    ("override", "message"),
    [({"kubernetes_version": "v1.12.0"}, "kubernetes_version: "), ({"image_repository": ""}, "image_repository: ")],
)
def test_bad_input_fails_naming_the_field_and_runs_nothing(run_module, node, override, message):
    _etc, kubeadm = node
    recorder = Recorder()
    result = run_module(module, {**INIT, **override, "kubeadm_path": kubeadm}, run_command=recorder, bin_path=None)
    assert result["failed"] and result["msg"].startswith(message) and recorder.calls == []


def test_failed_kubeadm_fails_the_task_with_its_error(run_module, node):
    _etc, kubeadm = node
    result = run_module(module, {**INIT, "kubeadm_path": kubeadm}, run_command=Recorder(rc=1, stderr="port 6443 in use"),
                        bin_path=None)
    assert result["failed"] and "port 6443 in use" in result["msg"]
