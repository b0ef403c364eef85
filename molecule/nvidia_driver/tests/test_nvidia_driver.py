"""What the driver role left on a Debian 12 host without a GPU."""


def test_nouveau_is_blacklisted_for_modprobe_and_the_initramfs(host):
    config = host.check_output("modprobe --showconfig")
    assert "blacklist nouveau" in config.splitlines()
    assert "options nouveau modeset=0" in config.splitlines()
    # mkinitramfs copies /etc/modprobe.d/*.conf into every initramfs it builds, so the rebuilt
    # initramfs carries the blacklist too (the container has no kernel image to build one for).
    assert host.package("initramfs-tools").is_installed
    assert host.run("grep -qF 'for file in /etc/modprobe.d/*.conf' /usr/sbin/mkinitramfs").rc == 0
    assert host.file("/etc/modprobe.d/blacklist-nouveau.conf").mode == 0o644


def test_driver_packages_come_from_debian_non_free_in_branch_535(host):
    policy = host.check_output("apt-cache policy nvidia-driver")
    candidate = next(line.split(":", 1)[1].strip() for line in policy.splitlines() if "Candidate:" in line)
    assert candidate.startswith("535.")
    assert "non-free" in host.check_output("apt-cache policy nvidia-smi")
    assert host.package("nvidia-smi").version.startswith("535.")
    assert host.package("libcuda1").version.startswith("535.")
    assert not host.package("nvidia-open-kernel-dkms").is_installed
    assert host.package("nvidia-persistenced").is_installed


def test_no_gpu_means_no_failed_persistence_daemon_and_systemd_is_not_degraded(host):
    # Debian's package enables and starts nvidia-persistenced, which fails without a device; the
    # role keeps it off on a host with no NVIDIA GPU on its PCI bus, so systemd stays healthy.
    assert "0x10de" not in host.check_output("cat /sys/bus/pci/devices/*/vendor")
    persistenced = host.service("nvidia-persistenced")
    assert not persistenced.is_enabled and not persistenced.is_running
    assert host.run("systemctl is-failed --quiet nvidia-persistenced").rc != 0
    assert host.check_output("systemctl list-units --state=failed --no-legend --plain") == ""
    assert host.run("systemctl is-system-running").stdout.strip() == "running"


def test_nvidia_smi_is_real_and_reports_the_missing_device(host):
    result = host.run("nvidia-smi")
    assert result.rc != 0
    assert "couldn't communicate with the NVIDIA driver" in result.stdout + result.stderr
