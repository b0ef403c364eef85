"""Package selection, validation and planning for the NVIDIA driver, without a host."""

import re

import pytest
from ansible_collections.llmops.datacenter.plugins.module_utils import nvidia_driver as nd

DEBIAN12 = nd.parse_os_release('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n')
UBUNTU2204 = nd.parse_os_release('NAME="Ubuntu"\nVERSION_ID="22.04"\nID=ubuntu\nID_LIKE=debian\nVERSION_CODENAME=jammy\n')
ROCKY9 = nd.parse_os_release('NAME="Rocky Linux"\nID="rocky"\nID_LIKE="rhel centos fedora"\nVERSION_ID="9.4"\n')
KERNEL = "6.1.0-28-amd64"
DEFAULTS = {
    "branch": None,
    "version": None,
    "source": "distribution",
    "kernel_module_type": "open",
    "module_build": "dkms",
    "variant": "headless",
    "server_series": True,
    "existing_driver": "refuse",
    "blacklist_nouveau": True,
    "persistence_daemon": True,
}


def request(os_info=DEBIAN12, **overrides):
    return nd.validate({**DEFAULTS, **overrides}, os_info)


def test_os_release_families():
    assert (DEBIAN12["family"], DEBIAN12["major"], DEBIAN12["codename"]) == ("debian", "12", "bookworm")
    assert (UBUNTU2204["family"], UBUNTU2204["major"], UBUNTU2204["minor"]) == ("ubuntu", "22", "04")
    assert (ROCKY9["family"], ROCKY9["major"]) == ("redhat", "9")


@pytest.mark.parametrize(
    ("os_info", "overrides", "packages", "kernel_module_packages"),
    [
        # Debian non-free
        (DEBIAN12, {"branch": "535"}, ["nvidia-smi", "libcuda1", "nvidia-persistenced", "nvidia-open-kernel-dkms", "firmware-misc-nonfree"], ["nvidia-open-kernel-dkms"]),
        (DEBIAN12, {"branch": "535", "kernel_module_type": "proprietary"}, ["nvidia-smi", "libcuda1", "nvidia-persistenced", "nvidia-kernel-dkms", "firmware-misc-nonfree"], ["nvidia-kernel-dkms"]),
        (DEBIAN12, {"branch": "535", "module_build": "none"}, ["nvidia-smi", "libcuda1", "nvidia-persistenced", "firmware-misc-nonfree"], []),
        (DEBIAN12, {"branch": "535", "variant": "full"}, ["nvidia-driver", "nvidia-open-kernel-dkms", "firmware-misc-nonfree"], ["nvidia-open-kernel-dkms"]),
        # NVIDIA's repository on Debian
        (DEBIAN12, {"branch": "580", "source": "cuda_repo", "variant": "full"}, ["nvidia-open-580"], ["nvidia-open-580"]),
        (DEBIAN12, {"branch": "570", "source": "cuda_repo", "variant": "full", "kernel_module_type": "proprietary"}, ["cuda-drivers-570"], ["cuda-drivers-570"]),
        (DEBIAN12, {"branch": "580", "source": "cuda_repo"}, ["nvidia-driver-pinning-580", "nvidia-driver-cuda", "nvidia-kernel-open-dkms"], ["nvidia-kernel-open-dkms"]),
        (DEBIAN12, {"branch": "580", "source": "cuda_repo", "module_build": "none"}, ["nvidia-driver-pinning-580", "nvidia-driver-cuda"], []),
        # Ubuntu's archive
        (UBUNTU2204, {"branch": "570"}, ["nvidia-headless-570-server-open", "nvidia-utils-570-server"], ["nvidia-headless-570-server-open"]),
        (UBUNTU2204, {"branch": "570", "server_series": False, "kernel_module_type": "proprietary"}, ["nvidia-headless-570", "nvidia-utils-570"], ["nvidia-headless-570"]),
        (UBUNTU2204, {"branch": "570", "module_build": "precompiled"}, [f"linux-modules-nvidia-570-server-open-{KERNEL}", "nvidia-headless-no-dkms-570-server-open", "nvidia-utils-570-server"], [f"linux-modules-nvidia-570-server-open-{KERNEL}"]),
        (UBUNTU2204, {"branch": "570", "module_build": "precompiled", "variant": "full"}, [f"linux-modules-nvidia-570-server-open-{KERNEL}", "nvidia-driver-570-server-open"], [f"linux-modules-nvidia-570-server-open-{KERNEL}"]),
        (UBUNTU2204, {"branch": "580", "variant": "full"}, ["nvidia-driver-580-server-open"], ["nvidia-driver-580-server-open"]),
        (UBUNTU2204, {"branch": "580", "module_build": "none"}, ["nvidia-headless-no-dkms-580-server-open", "nvidia-utils-580-server"], []),
        # NVIDIA's repository on Ubuntu: no -server series
        (UBUNTU2204, {"branch": "580", "source": "cuda_repo"}, ["nvidia-headless-580-open", "nvidia-utils-580"], ["nvidia-headless-580-open"]),
        # RHEL family: module streams
        (ROCKY9, {"branch": "580", "source": "cuda_repo", "variant": "full"}, ["@nvidia-driver:580-open"], ["@nvidia-driver:580-open"]),
        (ROCKY9, {"branch": "535", "source": "cuda_repo", "variant": "full", "kernel_module_type": "proprietary"}, ["@nvidia-driver:535-dkms"], ["@nvidia-driver:535-dkms"]),
        (ROCKY9, {"branch": "535", "source": "cuda_repo", "variant": "full", "kernel_module_type": "proprietary", "module_build": "precompiled"}, ["@nvidia-driver:535"], ["@nvidia-driver:535"]),
    ],
)
def test_package_selection(os_info, overrides, packages, kernel_module_packages):
    selection = nd.select_packages(request(os_info, **overrides), os_info, KERNEL)
    assert selection["packages"] == packages
    assert selection["kernel_module_packages"] == kernel_module_packages


@pytest.mark.parametrize(
    ("os_info", "overrides", "field", "message"),
    [
        (DEBIAN12, {"branch": "535", "module_build": "precompiled"}, "module_build", "accepted for Debian with source distribution: dkms, none"),
        (DEBIAN12, {"branch": "535", "variant": "full", "module_build": "none"}, "module_build", "accepted with variant full: dkms"),
        (DEBIAN12, {"branch": "580", "source": "cuda_repo", "module_build": "precompiled"}, "module_build", "accepted for Debian: dkms, none"),
        (DEBIAN12, {"branch": "570", "source": "cuda_repo"}, "variant", "accepted for branch 570: full"),
        (DEBIAN12, {"branch": "580", "source": "cuda_repo", "variant": "full", "module_build": "none"}, "module_build", "accepted with variant full: dkms"),
        (UBUNTU2204, {"branch": "580", "source": "cuda_repo", "module_build": "precompiled"}, "module_build", "accepted with source cuda_repo: dkms, none"),
        (UBUNTU2204, {"branch": "580", "variant": "full", "module_build": "none"}, "module_build", "accepted with variant full: dkms, precompiled"),
        (ROCKY9, {"branch": "580"}, "source", "accepted on this OS: cuda_repo"),
        (ROCKY9, {"branch": "580", "source": "cuda_repo"}, "variant", "accepted on this OS: variant full"),
        (ROCKY9, {"branch": "580", "source": "cuda_repo", "variant": "full", "module_build": "precompiled"}, "module_build", "accepted with kernel_module_type open: dkms"),
    ],
)
def test_combinations_that_do_not_exist_name_the_field(os_info, overrides, field, message):
    with pytest.raises(nd.PlanError) as error:
        nd.select_packages(request(os_info, **overrides), os_info, KERNEL)
    assert error.value.field == field and message in str(error.value)


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"branch": "580", "version": "580.95.05"}, "branch", "branch and version are mutually exclusive"),
        ({}, "branch", "one of branch (e.g. 580) or version (e.g. 580.95.05) is required"),
        ({"branch": "r580"}, "branch", "got 'r580'; accepted: a driver branch of three digits such as 535, 570 or 580"),
        ({"branch": "58"}, "branch", "accepted: a driver branch of three digits"),
        ({"version": "580-95"}, "version", "got '580-95'; accepted: a driver version such as 580.95.05"),
        ({"branch": "470"}, "kernel_module_type", "open kernel modules exist from branch 515; accepted for branch 470: proprietary"),
        ({"branch": "580", "source": "runfile"}, "source", "got 'runfile'; accepted: distribution, cuda_repo"),
        ({"branch": "580", "existing_driver": "replace"}, "existing_driver", "accepted: keep, upgrade, refuse"),
    ],
)
def test_bad_requests_name_the_field_and_accepted_values(overrides, field, message):
    with pytest.raises(nd.PlanError) as error:
        request(**overrides)
    assert error.value.field == field and message in str(error.value)


def test_unsupported_os():
    with pytest.raises(nd.PlanError, match="os: arch is not supported; accepted: debian, ubuntu, rhel"):
        request(nd.parse_os_release("ID=arch\n"), branch="580")


def test_version_derives_the_branch():
    assert request(version="580.95.05")["branch"] == "580"


def host(**overrides):
    """A Debian 12 host with non-free enabled, nothing NVIDIA installed, headers installable."""
    base = {
        "installed": {},
        "candidates": {
            "nvidia-smi": "535.261.03-1",
            "libcuda1": "535.261.03-1",
            "nvidia-persistenced": "535.171.04-1~deb12u1",
            "nvidia-open-kernel-dkms": "535.261.03-1",
            "firmware-misc-nonfree": "20230210-5",
            f"linux-headers-{KERNEL}": "6.1.119-1",
        },
        "versions": {},
        "headers_installed": False,
        "runfile_installed": False,
        "loaded_version": None,
        "nouveau_loaded": False,
        "blacklist_current": None,
        "persistence_enabled": False,
    }
    base.update(overrides)
    return base


INSTALLED_535 = {
    "nvidia-smi": "535.261.03-1",
    "libcuda1": "535.261.03-1",
    "nvidia-persistenced": "535.171.04-1~deb12u1",
    "nvidia-open-kernel-dkms": "535.261.03-1",
    "firmware-misc-nonfree": "20230210-5",
}


def test_fresh_debian_host_installs_headers_then_driver():
    plan = nd.decide(request(branch="535"), DEBIAN12, KERNEL, host())
    assert plan["install"] == [
        f"linux-headers-{KERNEL}",
        "nvidia-smi",
        "libcuda1",
        "nvidia-persistenced",
        "nvidia-open-kernel-dkms",
        "firmware-misc-nonfree",
    ]
    assert plan["existing_driver"]["action"] == "install" and plan["changed"]
    assert plan["nouveau_blacklist"]["change"] and plan["initramfs_command"] == ["update-initramfs", "-u", "-k", "all"]
    assert plan["persistence_daemon"]["enable"] and plan["reboot_required"] is False


def test_headers_neither_installed_nor_installable_stop_dkms_with_a_clean_message():
    candidates = dict(host()["candidates"])
    candidates[f"linux-headers-{KERNEL}"] = None
    with pytest.raises(nd.PlanError) as error:
        nd.decide(request(branch="535"), DEBIAN12, KERNEL, host(candidates=candidates))
    assert error.value.field == "module_build"
    assert f"DKMS needs linux-headers-{KERNEL} for the running kernel {KERNEL}" in str(error.value)
    assert "module_build precompiled (Ubuntu) or none" in str(error.value)
    # Without DKMS the same host plans fine.
    plan = nd.decide(request(branch="535", module_build="none"), DEBIAN12, KERNEL, host(candidates=candidates))
    assert plan["headers_package"] is None and "nvidia-open-kernel-dkms" not in plan["install"]


def test_converged_host_changes_nothing():
    plan = nd.decide(
        request(branch="535"),
        DEBIAN12,
        KERNEL,
        host(installed=INSTALLED_535, headers_installed=True, blacklist_current=nd.BLACKLIST_CONTENT, persistence_enabled=True),
    )
    assert plan["install"] == [] and plan["changed"] is False and plan["existing_driver"]["action"] == "satisfied"
    assert plan["existing_driver"]["version"] == "535.261.03"


def test_distribution_offering_another_branch_fails_naming_it():
    with pytest.raises(nd.PlanError) as error:
        nd.decide(request(branch="580"), DEBIAN12, KERNEL, host())
    assert error.value.field == "branch"
    assert "offers nvidia-smi 535.261.03-1, not branch 580; accepted with this source: branch 535, or source cuda_repo" in str(error.value)


def test_missing_candidate_points_at_the_repository():
    with pytest.raises(nd.PlanError, match=r"package nvidia-smi has no installation candidate.*non-free"):
        nd.decide(request(branch="535"), DEBIAN12, KERNEL, host(candidates={"nvidia-smi": None}))


@pytest.mark.parametrize("policy", ["refuse", "keep", "upgrade"])
def test_existing_driver_of_another_branch_follows_the_policy(policy):
    installed = {"nvidia-driver-pinning-570": "570.195.03-1", "nvidia-driver-cuda": "570.195.03-1", "libcuda1": "570.195.03-1"}
    candidates = {"nvidia-driver-pinning-580": "580.95.05-1", "nvidia-driver-cuda": "580.95.05-1", "nvidia-kernel-open-dkms": "580.95.05-1", f"linux-headers-{KERNEL}": "6.1.119-1"}
    state = host(installed=installed, candidates=candidates, loaded_version="570.195.03")
    wanted = request(branch="580", source="cuda_repo", existing_driver=policy)
    if policy == "refuse":
        with pytest.raises(nd.PlanError) as error:
            nd.decide(wanted, DEBIAN12, KERNEL, state)
        assert error.value.field == "existing_driver"
        assert "driver 570.195.03 (package libcuda1) is installed but branch 580 was requested" in str(error.value)
        assert "accepted: keep (leave it), upgrade (replace it), refuse" in str(error.value)
        return
    plan = nd.decide(wanted, DEBIAN12, KERNEL, state)
    if policy == "keep":
        assert plan["install"] == [] and plan["existing_driver"]["action"] == "keep" and not plan["reboot_required"]
    else:
        assert plan["existing_driver"]["action"] == "upgrade"
        assert plan["install"] == [f"linux-headers-{KERNEL}", "nvidia-driver-pinning-580", "nvidia-driver-cuda", "nvidia-kernel-open-dkms"]
        assert plan["reboot_required"] and "loaded nvidia module is 570.195.03" in plan["reboot_reasons"][0]


def test_runfile_driver_cannot_be_upgraded_by_packages():
    with pytest.raises(nd.PlanError, match="run /usr/bin/nvidia-uninstall first; accepted for it: keep, refuse"):
        nd.decide(request(branch="535", existing_driver="upgrade"), DEBIAN12, KERNEL, host(runfile_installed=True))
    plan = nd.decide(request(branch="535", existing_driver="keep"), DEBIAN12, KERNEL, host(runfile_installed=True))
    assert plan["existing_driver"] == {"version": None, "package": None, "runfile": True, "action": "keep"}


def test_exact_version_pins_every_driver_package():
    versions = {name: ["535.261.03-1", "535.216.01-1~deb12u1"] for name in ("nvidia-smi", "libcuda1", "nvidia-open-kernel-dkms")}
    plan = nd.decide(request(version="535.216.01"), DEBIAN12, KERNEL, host(versions=versions, headers_installed=True))
    assert plan["install"] == [
        "nvidia-smi=535.216.01-1~deb12u1",
        "libcuda1=535.216.01-1~deb12u1",
        "nvidia-persistenced",
        "nvidia-open-kernel-dkms=535.216.01-1~deb12u1",
        "firmware-misc-nonfree",
    ]
    with pytest.raises(nd.PlanError, match=re.escape("version: nvidia-smi is not available in version 535.999.01; available: 535.261.03-1")):
        nd.decide(request(version="535.999.01"), DEBIAN12, KERNEL, host(versions=versions))


def test_blacklist_with_nouveau_loaded_needs_a_reboot():
    plan = nd.decide(request(branch="535", module_build="none"), DEBIAN12, KERNEL, host(nouveau_loaded=True))
    assert plan["reboot_required"] and plan["reboot_reasons"] == ["nouveau is loaded; the blacklist takes effect after a reboot"]


def test_rhel_uses_dracut_and_kernel_devel():
    candidates = {"@nvidia-driver:580-open": "module stream", f"kernel-devel-{KERNEL}": "available"}
    plan = nd.decide(request(ROCKY9, branch="580", source="cuda_repo", variant="full"), ROCKY9, KERNEL, host(candidates=candidates))
    assert plan["install"] == [f"kernel-devel-{KERNEL}", "@nvidia-driver:580-open"]
    assert plan["initramfs_command"] == ["dracut", "--force", "--regenerate-all"] and plan["package_manager"] == "dnf"


def test_apply_runs_the_plan_in_order():
    plan = nd.decide(request(branch="535", module_build="none"), DEBIAN12, KERNEL, host())
    runs, writes = [], {}
    commands = nd.apply(plan, lambda argv, env=None: runs.append((argv, env)) or (0, "", ""), writes.__setitem__)
    assert writes == {nd.BLACKLIST_PATH: nd.BLACKLIST_CONTENT}
    assert [argv[0] for argv in commands] == ["apt-get", "update-initramfs", "systemctl"]
    assert runs[0][1] == {"DEBIAN_FRONTEND": "noninteractive"} and runs[0][0][-1] == "firmware-misc-nonfree"


def test_apply_reports_the_failing_command():
    plan = nd.decide(request(branch="535", module_build="none"), DEBIAN12, KERNEL, host())
    with pytest.raises(nd.ApplyError, match=r"apt-get install .* failed \(rc=100\): E: Unable to locate package"):
        nd.apply(plan, lambda argv, env=None: (100, "", "E: Unable to locate package nvidia-smi"), lambda path, text: None)
