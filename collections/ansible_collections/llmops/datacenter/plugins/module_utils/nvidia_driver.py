# Copyright: llmops maintainers
# Apache License 2.0 (see galaxy.yml)
"""Decide and apply an NVIDIA driver install plan. Runs on targets: standard library only.

`validate` checks the request, `select_packages` is the pure package-name table (OS data, no
I/O), `decide` turns what the host reports into a plan, and `apply` carries it out through a
`run(argv, env=None) -> (rc, stdout, stderr)` callable. Only `gather` and `apply` touch the host.
"""

from __future__ import annotations

import os
import re

from ansible_collections.llmops.datacenter.plugins.module_utils.managed_file import write_atomically

BLACKLIST_PATH = "/etc/modprobe.d/blacklist-nouveau.conf"
BLACKLIST_CONTENT = (
    "# Managed by llmops.datacenter.nvidia_driver: nouveau must not claim NVIDIA GPUs.\n"
    "blacklist nouveau\n"
    "options nouveau modeset=0\n"
)
PERSISTENCE_SERVICE = "nvidia-persistenced"
PCI_DEVICES = "/sys/bus/pci/devices"
NVIDIA_PCI_VENDOR = "0x10de"
NO_DEVICE_PERSISTENCE_REASON = (
    "no NVIDIA GPU on this host's PCI bus: nvidia-persistenced would fail and leave systemd degraded, "
    "so it is kept disabled"
)
RUNFILE_UNINSTALLER = "/usr/bin/nvidia-uninstall"
OPEN_MODULES_FIRST_BRANCH = 515
PINNING_PACKAGE_FIRST_BRANCH = 580

ACCEPTED = {
    "source": ("distribution", "cuda_repo"),
    "kernel_module_type": ("open", "proprietary"),
    "module_build": ("dkms", "precompiled", "none"),
    "variant": ("headless", "full"),
    "existing_driver": ("keep", "upgrade", "refuse"),
}

# Where the OS families differ, as data.
OS_DATA = {
    "debian": {
        "package_manager": "apt",
        "headers": "linux-headers-{kernel}",
        "initramfs": ["update-initramfs", "-u", "-k", "all"],
        "cuda_repo_distro": "debian{major}",
    },
    "ubuntu": {
        "package_manager": "apt",
        "headers": "linux-headers-{kernel}",
        "initramfs": ["update-initramfs", "-u", "-k", "all"],
        "cuda_repo_distro": "ubuntu{major}{minor}",
    },
    "redhat": {
        "package_manager": "dnf",
        "headers": "kernel-devel-{kernel}",
        "initramfs": ["dracut", "--force", "--regenerate-all"],
        "cuda_repo_distro": "rhel{major}",
    },
}
_REDHAT_IDS = ("rhel", "rocky", "almalinux", "centos", "ol")

_BRANCH_RE = re.compile(r"^[0-9]{3}$")
_VERSION_RE = re.compile(r"^([0-9]{3})\.[0-9]{1,3}(\.[0-9]{1,3})?$")
_UPSTREAM_VERSION_RE = re.compile(r"^(?:[0-9]+:)?([0-9]{3}\.[0-9]+(?:\.[0-9]+)?)")
# Installed packages whose version is the driver's, whatever source put them there.
_DRIVER_MARKER_RE = re.compile(
    r"^(nvidia-smi|libcuda1|nvidia-driver|nvidia-driver-cuda|cuda-drivers(-[0-9]+)?|nvidia-open(-[0-9]+)?"
    r"|nvidia-utils-[0-9]+(-server)?|libnvidia-compute-[0-9]+(-server)?|nvidia-kernel-dkms|nvidia-open-kernel-dkms)$"
)


class PlanError(Exception):
    """A request that cannot be carried out; names the field and the accepted values."""

    def __init__(self, field, message):
        super().__init__(f"{field}: {message}")
        self.field = field


def parse_os_release(text):
    """{id, family, major, minor, codename} from /etc/os-release text."""
    values = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip().strip('"')
    os_id = values.get("ID", "").lower()
    like = values.get("ID_LIKE", "").lower().split()
    if os_id in ("debian", "ubuntu"):
        family = os_id
    elif os_id in _REDHAT_IDS or "rhel" in like or "fedora" in like:
        family = "redhat"
    else:
        family = None
    major, _, minor = values.get("VERSION_ID", "").partition(".")
    return {"id": os_id, "family": family, "major": major, "minor": minor.split(".")[0], "codename": values.get("VERSION_CODENAME")}


def validate(params, os_info):
    """The normalised request, or PlanError naming the bad field and the accepted values."""
    for field, accepted in ACCEPTED.items():
        if params.get(field) not in accepted:
            raise PlanError(field, f"got {params.get(field)!r}; accepted: {', '.join(accepted)}")
    branch, version = params.get("branch"), params.get("version")
    if branch and version:
        raise PlanError("branch", "branch and version are mutually exclusive: give branch (e.g. 580) or version (e.g. 580.95.05)")
    if not branch and not version:
        raise PlanError("branch", "one of branch (e.g. 580) or version (e.g. 580.95.05) is required")
    if branch and not _BRANCH_RE.match(str(branch)):
        raise PlanError("branch", f"got {branch!r}; accepted: a driver branch of three digits such as 535, 570 or 580")
    if version:
        match = _VERSION_RE.match(str(version))
        if not match:
            raise PlanError("version", f"got {version!r}; accepted: a driver version such as 580.95.05 or 535.261.03")
        branch = match.group(1)
    if os_info.get("family") not in OS_DATA:
        raise PlanError("os", f"{os_info.get('id') or 'unknown'} is not supported; accepted: debian, ubuntu, {', '.join(_REDHAT_IDS)}")
    if params["kernel_module_type"] == "open" and int(branch) < OPEN_MODULES_FIRST_BRANCH:
        raise PlanError(
            "kernel_module_type",
            f"open kernel modules exist from branch {OPEN_MODULES_FIRST_BRANCH}; accepted for branch {branch}: proprietary",
        )
    request = dict(params)
    request.update(branch=str(branch), version=str(version) if version else None)
    return request


def select_packages(request, os_info, kernel):
    """Package names for the request on this OS. Pure: no host access.

    Returns {packages, versioned (their version is the driver's), kernel_module_packages, key_package}.
    """
    family, source, build = os_info["family"], request["source"], request["module_build"]
    branch, variant, is_open = request["branch"], request["variant"], request["kernel_module_type"] == "open"
    kernel_module, carriers = [], []
    if family == "debian" and source == "distribution":
        if build == "precompiled":
            raise PlanError("module_build", "Debian builds the kernel module with DKMS; accepted for Debian with source distribution: dkms, none")
        if variant == "full" and build == "none":
            raise PlanError("module_build", "Debian's nvidia-driver depends on the kernel module package; accepted with variant full: dkms")
        if build == "dkms":
            kernel_module = ["nvidia-open-kernel-dkms" if is_open else "nvidia-kernel-dkms"]
        userspace = ["nvidia-driver"] if variant == "full" else ["nvidia-smi", "libcuda1", "nvidia-persistenced"]
        packages = userspace + kernel_module + ["firmware-misc-nonfree"]
        versioned = [name for name in userspace + kernel_module if name != "nvidia-persistenced"]
    elif family == "debian":  # NVIDIA's CUDA repository for Debian
        if build == "precompiled":
            raise PlanError("module_build", "NVIDIA's Debian repository has no precompiled modules; accepted for Debian: dkms, none")
        if variant == "full":
            if build == "none":
                raise PlanError("module_build", "cuda-drivers and nvidia-open include the kernel module; accepted with variant full: dkms")
            packages = [f"nvidia-open-{branch}" if is_open else f"cuda-drivers-{branch}"]
            versioned = carriers = list(packages)
        else:
            if int(branch) < PINNING_PACKAGE_FIRST_BRANCH:
                raise PlanError(
                    "variant",
                    f"headless from NVIDIA's Debian repository needs its nvidia-driver-pinning-<branch> package (branch "
                    f">= {PINNING_PACKAGE_FIRST_BRANCH}); accepted for branch {branch}: full",
                )
            if build == "dkms":
                kernel_module = ["nvidia-kernel-open-dkms" if is_open else "nvidia-kernel-dkms"]
            packages = [f"nvidia-driver-pinning-{branch}", "nvidia-driver-cuda", *kernel_module]
            versioned = list(packages)
    elif family == "ubuntu":
        # Ubuntu's archive and NVIDIA's Ubuntu repository share the per-branch package names;
        # the -server series (LTS-supported) exists only in Ubuntu's archive.
        series = "-server" if request.get("server_series", True) and source == "distribution" else ""
        flavour = f"{branch}{series}{'-open' if is_open else ''}"
        utils = [f"nvidia-utils-{branch}{series}"]
        if build == "precompiled":
            if source != "distribution":
                raise PlanError("module_build", "precompiled modules come from Ubuntu's archive; accepted with source cuda_repo: dkms, none")
            kernel_module = [f"linux-modules-nvidia-{flavour}-{kernel}"]
        if variant == "full":
            if build == "none":
                raise PlanError("module_build", "nvidia-driver-<branch> includes the kernel module; accepted with variant full: dkms, precompiled")
            userspace = [f"nvidia-driver-{flavour}"]
        elif build == "dkms":
            userspace = [f"nvidia-headless-{flavour}", *utils]
        else:
            userspace = [f"nvidia-headless-no-dkms-{flavour}", *utils]
        packages = kernel_module + userspace
        versioned = list(userspace)
        if not kernel_module and build == "dkms":
            carriers = userspace[:1]
    else:  # redhat: no driver in the distribution, NVIDIA's repository with module streams
        if source == "distribution":
            raise PlanError("source", "RHEL-family distributions ship no NVIDIA driver; accepted on this OS: cuda_repo")
        if variant != "full" or build == "none":
            raise PlanError("variant", "NVIDIA's RHEL module streams install the full driver; accepted on this OS: variant full with module_build dkms or precompiled")
        stream = {"dkms": f"{branch}-dkms", "precompiled": branch}[build]
        if is_open:
            stream = f"{branch}-open"
            if build == "precompiled":
                raise PlanError("module_build", "open kernel module streams are DKMS builds on RHEL; accepted with kernel_module_type open: dkms")
        packages = carriers = [f"@nvidia-driver:{stream}"]
        versioned = []
    # Packages that bring the kernel module (explicitly or as a dependency of a meta package).
    kernel_module_packages = [] if build == "none" else kernel_module + carriers
    return {"packages": packages, "versioned": versioned, "kernel_module_packages": kernel_module_packages, "key_package": packages[0]}


def upstream_version(package_version):
    """The driver version inside a package version: 1:535.261.03-1 -> 535.261.03."""
    match = _UPSTREAM_VERSION_RE.match(package_version or "")
    return match.group(1) if match else None


def version_matches(driver_version, request):
    if driver_version is None:
        return False
    if request["version"]:
        return driver_version == request["version"] or driver_version.startswith(request["version"] + ".")
    return driver_version.split(".")[0] == request["branch"]


def installed_driver_version(installed):
    """The driver version installed by packages, from any package that carries it."""
    for name in sorted(installed):
        if _DRIVER_MARKER_RE.match(name):
            version = upstream_version(installed[name])
            if version:
                return version, name
    return None, None


def decide(request, os_info, kernel, host):
    """The plan for this host. `host` is what gather() read:

    installed {package: version}, candidates {package: candidate or None}, versions {package: [available]},
    headers_installed, runfile_installed, loaded_version, nouveau_loaded, blacklist_current (text or None),
    persistence_enabled.
    """
    selection = select_packages(request, os_info, kernel)
    data = OS_DATA[os_info["family"]]
    current_version, marker = installed_driver_version(host["installed"])
    satisfied = version_matches(current_version, request)
    runfile = host.get("runfile_installed", False)

    if (current_version or runfile) and not satisfied:
        policy = request["existing_driver"]
        wanted = f"version {request['version']}" if request["version"] else f"branch {request['branch']}"
        found = f"driver {current_version} (package {marker})" if current_version else f"a driver installed by NVIDIA's .run installer ({RUNFILE_UNINSTALLER})"
        if policy == "refuse":
            raise PlanError(
                "existing_driver",
                f"{found} is installed but {wanted} was requested; existing_driver=refuse leaves it untouched; "
                "accepted: keep (leave it), upgrade (replace it), refuse",
            )
        if policy == "upgrade" and runfile:
            raise PlanError(
                "existing_driver",
                f"{found} cannot be replaced by packages; run {RUNFILE_UNINSTALLER} first; accepted for it: keep, refuse",
            )
        action = "keep" if policy == "keep" else "upgrade"
    elif satisfied:
        action = "satisfied"
    else:
        action = "install"

    install = []
    if action != "keep":
        for name in selection["packages"]:
            candidate = host["candidates"].get(name, "unknown")
            if candidate is None:
                raise PlanError(
                    "source",
                    f"package {name} has no installation candidate; with source {request['source']} enable "
                    + ("Debian's contrib and non-free components" if request["source"] == "distribution" else "NVIDIA's CUDA repository")
                    + " first (the nvidia_driver role does when nvidia_driver_manage_repository is true)",
                )
            spec = name
            if name in selection["versioned"]:
                if request["version"]:
                    available = [v for v in host["versions"].get(name, []) if version_matches(upstream_version(v), request)]
                    if not available:
                        raise PlanError("version", f"{name} is not available in version {request['version']}; available: {', '.join(host['versions'].get(name, [])) or 'none'}")
                    spec = f"{name}={available[0]}"
                elif name == selection["key_package"] and candidate not in (None, "unknown") and not version_matches(upstream_version(candidate), request):
                    raise PlanError(
                        "branch",
                        f"the {request['source']} source offers {name} {candidate}, not branch {request['branch']}; "
                        f"accepted with this source: branch {(upstream_version(candidate) or '?').split('.')[0]}, or source cuda_repo",
                    )
            current = host["installed"].get(name)
            if current is None or (name in selection["versioned"] and not version_matches(upstream_version(current), request)):
                install.append(spec)

    headers = None
    if request["module_build"] == "dkms" and action != "keep":
        headers = data["headers"].format(kernel=kernel)
        if not host["headers_installed"]:
            if host["candidates"].get(headers) is None:
                raise PlanError(
                    "module_build",
                    f"DKMS needs {headers} for the running kernel {kernel}, and it is neither installed nor installable; "
                    "boot a kernel whose headers the package manager offers, install them, or choose module_build "
                    "precompiled (Ubuntu) or none (kernel module provided elsewhere)",
                )
            install.insert(0, headers)

    persistence = _persistence_plan(request, host, install)
    blacklist_change = request["blacklist_nouveau"] and host["blacklist_current"] != BLACKLIST_CONTENT
    kernel_module_changes = bool(set(spec.split("=")[0] for spec in install) & set(selection["kernel_module_packages"]))
    reboot_reasons = []
    if kernel_module_changes and host.get("loaded_version") and not version_matches(host["loaded_version"], request):
        reboot_reasons.append(f"the loaded nvidia module is {host['loaded_version']}; the new one loads after a reboot")
    if blacklist_change and host.get("nouveau_loaded"):
        reboot_reasons.append("nouveau is loaded; the blacklist takes effect after a reboot")
    return {
        "os": os_info,
        "kernel": kernel,
        "package_manager": data["package_manager"],
        "packages": selection["packages"],
        "install": install,
        "headers_package": headers,
        "existing_driver": {"version": current_version, "package": marker, "runfile": runfile, "action": action},
        "nouveau_blacklist": {"path": BLACKLIST_PATH, "change": blacklist_change},
        "initramfs_command": data["initramfs"] if blacklist_change else None,
        "persistence_daemon": persistence,
        "reboot_required": bool(reboot_reasons),
        "reboot_reasons": reboot_reasons,
        "changed": bool(install) or blacklist_change or persistence["enable"] or persistence["disable"],
    }


def _persistence_plan(request, host, install):
    """Enable nvidia-persistenced where a GPU is; keep it off (and not failed) where none is.

    Debian's package enables and starts the daemon on install; without a device it fails at once,
    and a failed unit marks the whole host `degraded`. `gpu_devices` is None when the PCI bus could
    not be read: then the host is taken to have its GPUs, as before.
    """
    if host.get("gpu_devices") == []:
        touched = host.get("persistence_enabled", False) or host.get("persistence_failed", False) or bool(install)
        return {"enable": False, "disable": bool(touched), "reason": NO_DEVICE_PERSISTENCE_REASON}
    enable = request["persistence_daemon"] and not host.get("persistence_enabled", False)
    return {"enable": enable, "disable": False, "reason": None}


def nvidia_gpu_devices(list_dir, read_file):
    """PCI addresses of NVIDIA display and 3D controllers (vendor 0x10de, class 0x03xxxx), present
    whether or not a driver is loaded; None when the PCI bus cannot be read."""
    try:
        entries = sorted(list_dir(PCI_DEVICES))
    except OSError:
        return None
    found = []
    for entry in entries:
        try:
            vendor = read_file(f"{PCI_DEVICES}/{entry}/vendor").strip().lower()
            device_class = read_file(f"{PCI_DEVICES}/{entry}/class").strip().lower()
        except OSError:
            continue
        if vendor == NVIDIA_PCI_VENDOR and device_class.startswith("0x03"):
            found.append(entry)
    return found


def _parse_apt_policy(text):
    candidates, current = {}, None
    for line in text.splitlines():
        if line and not line.startswith(" ") and line.endswith(":"):
            current = line[:-1]
        elif current and line.strip().startswith("Candidate:"):
            value = line.split(":", 1)[1].strip()
            candidates[current] = None if value == "(none)" else value
    return candidates


def gather(run, request, os_info, kernel, read_file, path_exists, list_dir=None):
    """Read what decide() needs from the host (read-only commands, safe in check mode).

    `list_dir` lists a directory (os.listdir); without it the GPU devices are not looked up.
    """
    selection = select_packages(request, os_info, kernel)
    data = OS_DATA[os_info["family"]]
    headers = data["headers"].format(kernel=kernel)
    names = [name for name in selection["packages"] if not name.startswith("@")]
    installed = {}
    if data["package_manager"] == "apt":
        patterns = [*names, "nvidia-smi", "libcuda1", "nvidia-driver*", "cuda-drivers*", "nvidia-utils-*", "libnvidia-compute-*", "nvidia-open*", headers]
        _rc, out, _err = run(["dpkg-query", "-W", "-f=${Package}\t${Version}\t${db:Status-Status}\n", *patterns])
        for line in out.splitlines():
            parts = line.split("\t")
            if len(parts) == 3 and parts[2] == "installed":
                installed[parts[0]] = parts[1]
        _rc, out, _err = run(["apt-cache", "policy", *names, headers])
        # apt-cache policy prints nothing for a name no configured repository knows: no candidate.
        listed = _parse_apt_policy(out)
        candidates = {name: listed.get(name) for name in [*names, headers]}
        versions = {}
        if request["version"]:
            for name in selection["versioned"]:
                _rc, out, _err = run(["apt-cache", "madison", name])
                versions[name] = [line.split("|")[1].strip() for line in out.splitlines() if line.count("|") >= 2]
    else:
        _rc, out, _err = run(["rpm", "-qa", "--qf", "%{NAME}\t%{VERSION}\n", "nvidia-driver*", "cuda-drivers*", "kmod-nvidia*", "nvidia-open*", headers])
        for line in out.splitlines():
            name, _, version = line.partition("\t")
            if name:
                installed[name] = version
        candidates = {name: "module stream" for name in selection["packages"]}
        rc, _out, _err = run(["dnf", "-q", "list", "--available", headers])
        candidates[headers] = "available" if rc == 0 else None
        versions = {}
    try:
        loaded_version = read_file("/sys/module/nvidia/version").strip() or None
    except OSError:
        loaded_version = None
    try:
        blacklist_current = read_file(BLACKLIST_PATH)
    except OSError:
        blacklist_current = None
    rc, out, _err = run(["systemctl", "is-enabled", PERSISTENCE_SERVICE])
    persistence_enabled = rc == 0 and out.strip() == "enabled"
    gpu_devices = nvidia_gpu_devices(list_dir, read_file) if list_dir is not None else None
    persistence_failed = False
    if gpu_devices == []:
        _rc, failed_out, _err = run(["systemctl", "is-failed", PERSISTENCE_SERVICE])
        persistence_failed = failed_out.strip() == "failed"
    return {
        "installed": installed,
        "candidates": candidates,
        "versions": versions,
        "headers_installed": headers in installed,
        "runfile_installed": path_exists(RUNFILE_UNINSTALLER),
        "loaded_version": loaded_version,
        "nouveau_loaded": path_exists("/sys/module/nouveau"),
        "blacklist_current": blacklist_current,
        "persistence_enabled": persistence_enabled,
        "persistence_failed": persistence_failed,
        "gpu_devices": gpu_devices,
    }


class ApplyError(Exception):
    """A command failed while applying the plan; the message carries its output."""


def apply(plan, run, write_file):
    """Carry out the plan: blacklist, packages, initramfs, persistence daemon. Returns commands run."""
    commands = []

    def must(argv, env=None):
        commands.append(argv)
        rc, out, err = run(argv, env)
        if rc != 0:
            raise ApplyError(f"{' '.join(argv)} failed (rc={rc}): {(err or out).strip()[-2000:]}")
        return out

    if plan["nouveau_blacklist"]["change"]:
        write_file(BLACKLIST_PATH, BLACKLIST_CONTENT)
    if plan["install"]:
        if plan["package_manager"] == "apt":
            must(
                ["apt-get", "install", "-y", "--no-install-recommends", "--allow-downgrades",
                 "-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold"] + plan["install"],
                {"DEBIAN_FRONTEND": "noninteractive"},
            )
        else:
            must(["dnf", "install", "-y"] + plan["install"])
    if plan["initramfs_command"]:
        must(plan["initramfs_command"])
    if plan["persistence_daemon"]["enable"]:
        must(["systemctl", "enable", PERSISTENCE_SERVICE])
    if plan["persistence_daemon"].get("disable"):
        # Asked after the install: the package's own scripts may just have enabled and started it.
        _rc, state, _err = run(["systemctl", "is-enabled", PERSISTENCE_SERVICE], None)
        if state.strip() == "enabled":
            must(["systemctl", "disable", "--now", PERSISTENCE_SERVICE])
        _rc, state, _err = run(["systemctl", "is-failed", PERSISTENCE_SERVICE], None)
        if state.strip() == "failed":
            must(["systemctl", "reset-failed", PERSISTENCE_SERVICE])
    return commands


def read_text(path):
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def write_text(path, content):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_atomically(path, content, new_file_mode=0o644)
