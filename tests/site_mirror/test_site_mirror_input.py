"""Bad input to the site_mirror role fails in preflight, naming the file, before anything reaches the host.

The whole role runs against localhost in check mode: the failure must come from preflight, and no task
of the install, configure or run phases may have started (so in a real run nothing is installed or copied).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LATER_PHASES = ("Install the registry", "Create the controller's CA directory", "Copy the artifacts",
                "Copy the image archives")


def run_role(tmp_path, variables, tags=None):
    playbook = tmp_path / "play.yml"
    playbook.write_text(json.dumps([{"hosts": "localhost", "gather_facts": False, "connection": "local",
                                     "roles": [{"role": "llmops.datacenter.site_mirror"}]}]))
    extra = tmp_path / "vars.json"
    extra.write_text(json.dumps({
        "site_mirror_tls_ca_dir": str(tmp_path / "pki"),
        "site_mirror_artifact_dir": str(tmp_path / "served"),
        "site_mirror_registry_users": [{"name": "loader", "password": "loader-secret-1"}],
        "ansible_python_interpreter": str(ROOT / ".venv" / "bin" / "python"),
        **variables,
    }))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(ROOT / "collections"), ANSIBLE_HOME=str(ROOT / ".ansible"),
               ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    command = [str(ROOT / ".venv" / "bin" / "ansible-playbook"), "-i", "localhost,", str(playbook), "--check",
               "-e", f"@{extra}"]
    if tags:
        command += ["--tags", tags]
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False, timeout=300)
    return result.returncode, result.stdout + result.stderr


def artifact(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    return str(path), hashlib.sha256(content).hexdigest()


def assert_stopped_in_preflight(tmp_path, output):
    for task in LATER_PHASES:
        assert task not in output, output
    assert not (tmp_path / "served").exists()
    assert not (tmp_path / "pki").exists()


def test_valid_input_passes_preflight(tmp_path):
    src, sha256 = artifact(tmp_path, "kubelet", b"kubelet")
    code, output = run_role(tmp_path, {"site_mirror_artifacts": [{"src": src, "dest": "bin/kubelet", "sha256": sha256}]},
                            tags="preflight")
    assert code == 0, output


def test_an_artifact_whose_sha256_differs_fails_naming_it_and_copies_nothing(tmp_path):
    good, good_sha256 = artifact(tmp_path, "kubectl", b"kubectl")
    bad, _ = artifact(tmp_path, "kubelet", b"kubelet, tampered with")
    expected = hashlib.sha256(b"kubelet").hexdigest()
    code, output = run_role(tmp_path, {"site_mirror_artifacts": [
        {"src": good, "dest": "bin/kubectl", "sha256": good_sha256},
        {"src": bad, "dest": "bin/kubelet", "sha256": expected},
    ]})
    assert code != 0
    assert f"site_mirror_artifacts: {bad} for bin/kubelet has sha256 " in output, output
    assert f"expected {expected}" in output
    assert f"{good} for bin/kubectl has sha256" not in output
    assert_stopped_in_preflight(tmp_path, output)


def test_a_missing_image_archive_fails_naming_it(tmp_path):
    archive = str(tmp_path / "pause_3.2.oci.tar")
    code, output = run_role(tmp_path, {"site_mirror_images": [{"name": "kubernetes/pause", "tag": "3.2",
                                                               "archive": archive}]})
    assert code != 0
    assert f"site_mirror_images: image archive {archive} for kubernetes/pause:3.2 is not a file on the controller" \
        in output, output
    assert_stopped_in_preflight(tmp_path, output)


def test_a_bundle_binary_that_does_not_match_fails_naming_where_it_would_be_served(tmp_path):
    kubelet, _ = artifact(tmp_path, "kubelet", b"kubelet")
    bundle = tmp_path / "bundle.json"
    bundle.write_text(json.dumps({"kubernetes_version": "v1.20.2", "etcd_image_tag": "3.4.23-0", "pause_image_tag": "3.2",
                                  "binaries": [{"name": "kubelet", "path": kubelet, "sha256": "0" * 64}],
                                  "images": []}))
    code, output = run_role(tmp_path, {"site_mirror_bundle": str(bundle)})
    assert code != 0
    assert f"site_mirror_artifacts: {kubelet} for kubernetes/v1.20.2/bin/kubelet has sha256" in output, output
    assert_stopped_in_preflight(tmp_path, output)


def test_a_bad_registry_user_fails_naming_the_field_without_echoing_the_password(tmp_path):
    code, output = run_role(tmp_path, {"site_mirror_registry_users": [{"name": "bad:name", "password": "p4ssw0rd-visible"}]},
                            tags="preflight")
    assert code != 0
    assert "p4ssw0rd-visible" not in output
    assert "site_mirror_registry_users needs at least one {name, password}" in output, output
