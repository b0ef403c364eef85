"""The nvidia_driver module against a simulated Debian 12 host (commands mocked at run_command)."""

from unittest import mock

import pytest
from ansible_collections.llmops.datacenter.plugins.module_utils import nvidia_driver as nd
from ansible_collections.llmops.datacenter.plugins.modules import nvidia_driver as module

KERNEL = "6.1.0-28-amd64"
OS_RELEASE = 'ID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n'
POLICY = """nvidia-smi:
  Installed: (none)
  Candidate: 535.261.03-1
  Version table:
     535.261.03-1 500
        500 http://deb.debian.org/debian bookworm/non-free amd64 Packages
libcuda1:
  Installed: (none)
  Candidate: 535.261.03-1
nvidia-persistenced:
  Installed: (none)
  Candidate: 535.171.04-1~deb12u1
firmware-misc-nonfree:
  Installed: (none)
  Candidate: 20230210-5
nvidia-open-kernel-dkms:
  Installed: (none)
  Candidate: 535.261.03-1
linux-headers-6.1.0-28-amd64:
  Installed: (none)
  Candidate: (none)
"""


class FakeDebianHost:
    """Answers the module's commands the way a Debian 12 host with non-free enabled does."""

    def __init__(self, installed=None, blacklist=None, persistence="disabled", gpus=1):
        self.installed = installed or {}
        self.files = {"/etc/os-release": OS_RELEASE}
        # The PCI bus: a virtio device, and `gpus` NVIDIA 3D controllers.
        self.pci = {"0000:00:01.0": ("0x1af4", "0x020000")}
        self.pci.update({f"0000:{18 + i:02x}:00.0": ("0x10de", "0x030200") for i in range(gpus)})
        self.sysfs = {}
        for address, (vendor, device_class) in self.pci.items():
            self.sysfs[f"{nd.PCI_DEVICES}/{address}/vendor"] = vendor + "\n"
            self.sysfs[f"{nd.PCI_DEVICES}/{address}/class"] = device_class + "\n"
        if blacklist is not None:
            self.files[nd.BLACKLIST_PATH] = blacklist
        self.persistence = persistence
        self.commands = []

    def run(self, argv, **kwargs):
        self.commands.append(argv)
        if argv[0] == "dpkg-query":
            lines = [f"{name}\t{version}\tinstalled" for name, version in self.installed.items()]
            return (0 if lines else 1), "\n".join(lines) + "\n", ""
        if argv[:2] == ["apt-cache", "policy"]:
            return 0, POLICY, ""
        if argv[:2] == ["systemctl", "is-enabled"]:
            return (0 if self.persistence == "enabled" else 1), self.persistence + "\n", ""
        if argv[0] == "apt-get":
            for spec in argv:
                if spec in ("nvidia-smi", "libcuda1", "nvidia-persistenced", "firmware-misc-nonfree"):
                    self.installed[spec] = "535.261.03-1"
            return 0, "", ""
        if argv[:2] == ["systemctl", "enable"]:
            self.persistence = "enabled"
            return 0, "", ""
        if argv[:2] == ["systemctl", "is-failed"]:
            return (0 if self.persistence == "failed" else 1), ("failed" if self.persistence == "failed" else "inactive") + "\n", ""
        if argv[:3] == ["systemctl", "disable", "--now"]:
            self.persistence = "failed" if self.persistence == "failed" else "disabled"
            return 0, "", ""
        if argv[:2] == ["systemctl", "reset-failed"]:
            self.persistence = "disabled"
            return 0, "", ""
        if argv[0] == "update-initramfs":
            return 0, "", ""
        raise AssertionError(f"unexpected command {argv}")

    def list_dir(self, path):
        if path == nd.PCI_DEVICES:
            return list(self.pci)
        raise FileNotFoundError(path)

    def read(self, path):
        if path in self.files:
            return self.files[path]
        if path in self.sysfs:
            return self.sysfs[path]
        raise FileNotFoundError(path)

    def write(self, path, content):
        self.files[path] = content


@pytest.fixture
def run_module(run_module):
    """Run the module against a FakeDebianHost; returns (failed, result)."""

    def run(args, fake, check_mode=False, diff=False):
        with (
            mock.patch.object(module, "read_text", side_effect=fake.read),
            mock.patch.object(module, "write_text", side_effect=fake.write),
            mock.patch.object(module.os.path, "exists", return_value=False),
            mock.patch.object(module.os, "listdir", side_effect=fake.list_dir),
        ):
            result = run_module(module, {"kernel_release": KERNEL, **args}, check_mode, diff, run_command=fake.run)
        return result.get("failed", False), result

    return run


USERSPACE = {"branch": "535", "module_build": "none"}


@pytest.mark.parametrize("check_mode", [False, True])
def test_install_is_planned_diffed_and_applied_only_outside_check_mode(run_module, check_mode):
    fake = FakeDebianHost()
    failed, result = run_module(USERSPACE, fake, check_mode=check_mode, diff=True)
    assert not failed and result["changed"] is True
    assert result["plan"]["install"] == ["nvidia-smi", "libcuda1", "nvidia-persistenced", "firmware-misc-nonfree"]
    assert result["diff"][0]["after"] == nd.BLACKLIST_CONTENT and result["diff"][0]["before"] == ""
    assert "+ nvidia-smi" in result["diff"][1]["after"]
    mutating = [argv for argv in fake.commands if argv[0] in ("apt-get", "update-initramfs") or argv[:2] == ["systemctl", "enable"]]
    if check_mode:
        assert mutating == [] and result["commands"] == [] and nd.BLACKLIST_PATH not in fake.files
    else:
        assert [argv[0] for argv in mutating] == ["apt-get", "update-initramfs", "systemctl"]
        assert fake.files[nd.BLACKLIST_PATH] == nd.BLACKLIST_CONTENT


def test_second_run_is_idempotent(run_module):
    fake = FakeDebianHost()
    run_module(USERSPACE, fake, diff=True)
    failed, result = run_module(USERSPACE, fake, diff=True)
    assert not failed and result["changed"] is False and result["diff"] == []
    assert result["installed_driver_version"] == "535.261.03"


@pytest.mark.parametrize("check_mode", [False, True])
def test_dkms_without_installable_headers_fails_before_changing_anything(run_module, check_mode):
    fake = FakeDebianHost()
    failed, result = run_module({"branch": "535"}, fake, check_mode=check_mode)
    assert failed and result["field"] == "module_build"
    assert result["msg"].startswith(f"module_build: DKMS needs linux-headers-{KERNEL} for the running kernel {KERNEL}")
    assert nd.BLACKLIST_PATH not in fake.files and not any(argv[0] == "apt-get" for argv in fake.commands)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"branch": "580", "version": "580.95.05"}, "branch: branch and version are mutually exclusive"),
        ({"branch": "latest"}, "branch: got 'latest'; accepted: a driver branch of three digits"),
        ({"branch": "535", "module_build": "precompiled"}, "module_build: Debian builds the kernel module with DKMS"),
    ],
)
def test_bad_input_changes_nothing(run_module, args, message):
    fake = FakeDebianHost()
    failed, result = run_module(args, fake)
    assert failed and result["msg"].startswith(message)
    assert fake.files == {"/etc/os-release": OS_RELEASE}
    assert not any(argv[0] in ("apt-get", "update-initramfs") for argv in fake.commands)


def test_a_package_no_repository_knows_has_no_candidate(run_module):
    fake = FakeDebianHost()
    failed, result = run_module({"branch": "535", "kernel_module_type": "proprietary"}, fake)
    assert failed and result["field"] == "source"
    assert result["msg"].startswith("source: package nvidia-kernel-dkms has no installation candidate")


def test_other_branch_installed_is_refused_by_default(run_module):
    fake = FakeDebianHost(installed={"libcuda1": "525.147.05-4~deb12u1"})
    failed, result = run_module(USERSPACE, fake, diff=True)
    assert failed and result["field"] == "existing_driver"
    assert "driver 525.147.05 (package libcuda1) is installed but branch 535 was requested" in result["msg"]


def test_keep_warns_and_installs_nothing(run_module):
    fake = FakeDebianHost(installed={"libcuda1": "525.147.05-4~deb12u1"}, blacklist=nd.BLACKLIST_CONTENT, persistence="enabled")
    failed, result = run_module({**USERSPACE, "existing_driver": "keep"}, fake, diff=True)
    assert not failed and result["changed"] is False
    assert result["warnings"] == ["existing_driver=keep: driver 525.147.05 left in place although branch 535 was requested"]


@pytest.mark.parametrize("state_after_install", ["failed", "enabled"])
def test_without_a_gpu_the_persistence_daemon_is_kept_off_and_not_failed(run_module, state_after_install):
    """Debian's package enables and starts nvidia-persistenced; on a host with no GPU it fails at once
    and leaves systemd degraded. The module turns it off and clears the failure, once."""
    fake = FakeDebianHost(gpus=0)
    real_run = fake.run

    def run_like_dpkg(argv, **kwargs):
        result = real_run(argv, **kwargs)
        if argv[0] == "apt-get":
            fake.persistence = state_after_install  # what the package's postinst left behind
        return result

    fake.run = run_like_dpkg
    failed, result = run_module(USERSPACE, fake)
    assert not failed and result["changed"] is True
    plan = result["plan"]["persistence_daemon"]
    assert plan["enable"] is False and plan["disable"] is True and "no NVIDIA GPU" in plan["reason"]
    after_install = [argv for argv in fake.commands if argv[0] == "systemctl"]
    assert ["systemctl", "enable", nd.PERSISTENCE_SERVICE] not in after_install
    if state_after_install == "enabled":
        assert ["systemctl", "disable", "--now", nd.PERSISTENCE_SERVICE] in after_install
    else:
        assert ["systemctl", "reset-failed", nd.PERSISTENCE_SERVICE] in after_install
    assert fake.persistence == "disabled"

    failed, again = run_module(USERSPACE, fake)
    assert not failed and again["changed"] is False and again["plan"]["persistence_daemon"]["disable"] is False


def test_a_failed_daemon_left_from_an_earlier_run_is_cleared_in_check_mode_only_as_a_plan(run_module):
    fake = FakeDebianHost(installed={"nvidia-smi": "535.261.03-1", "libcuda1": "535.261.03-1",
                                     "nvidia-persistenced": "535.171.04-1~deb12u1",
                                     "firmware-misc-nonfree": "20230210-5"},
                          blacklist=nd.BLACKLIST_CONTENT, persistence="failed", gpus=0)
    failed, result = run_module(USERSPACE, fake, check_mode=True)
    assert not failed and result["changed"] is True and result["plan"]["install"] == []
    assert result["plan"]["persistence_daemon"]["disable"] is True
    assert fake.persistence == "failed" and result["commands"] == []
    failed, result = run_module(USERSPACE, fake)
    assert not failed and result["changed"] is True and fake.persistence == "disabled"
