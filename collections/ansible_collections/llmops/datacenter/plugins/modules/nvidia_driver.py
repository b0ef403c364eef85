#!/usr/bin/python
# Copyright: llmops maintainers
# Apache License 2.0 (see galaxy.yml)

DOCUMENTATION = r"""
---
module: nvidia_driver
short_description: Install a pinned NVIDIA driver branch or version, blacklist nouveau, enable persistence
version_added: "0.1.0"
description:
  - Decides an install plan from the request and the host (OS, running kernel, installed driver,
    package candidates, kernel headers) and applies it with the package manager.
  - Package names come from a table per OS family and source (Debian non-free, Ubuntu's archive,
    NVIDIA's CUDA repository; RHEL family through NVIDIA's module streams).
  - Writes C(/etc/modprobe.d/blacklist-nouveau.conf) and rebuilds the initramfs when that file
    changes, and enables C(nvidia-persistenced).
  - Never loads or unloads kernel modules; it reports RV(reboot_required) instead.
  - Repositories are not configured here; the C(llmops.datacenter.nvidia_driver) role does that.
author:
  - llmops maintainers
options:
  branch:
    description: Driver branch, three digits (for example C(535), C(570), C(580)). Mutually exclusive with O(version).
    type: str
  version:
    description: Exact driver version (for example C(580.95.05)). Mutually exclusive with O(branch).
    type: str
  source:
    description:
      - C(distribution) installs the OS's own packages (Debian contrib and non-free, Ubuntu restricted); the
        distribution decides which branch it offers and a different O(branch) fails naming it.
      - C(cuda_repo) installs from NVIDIA's CUDA repository, configured beforehand.
    type: str
    choices: [distribution, cuda_repo]
    default: distribution
  kernel_module_type:
    description: Open GPU kernel modules (required for Blackwell, recommended from Turing on) or the proprietary ones.
    type: str
    choices: [open, proprietary]
    default: open
  module_build:
    description:
      - C(dkms) builds the module for the running kernel; its headers must be installed or installable.
      - C(precompiled) uses Ubuntu's signed C(linux-modules-nvidia-*) packages for the running kernel.
      - C(none) installs the user-space driver only (the kernel module comes from elsewhere,
        for example a driver container or a custom kernel build).
    type: str
    choices: [dkms, precompiled, none]
    default: dkms
  variant:
    description: C(headless) for compute servers (no X11 pieces), C(full) for the complete driver.
    type: str
    choices: [headless, full]
    default: headless
  server_series:
    description: On Ubuntu with source C(distribution), use the C(-server) packages (longer support).
    type: bool
    default: true
  existing_driver:
    description:
      - What to do when a driver other than the requested one is installed.
      - C(keep) leaves it and changes no package, C(upgrade) replaces it, C(refuse) fails naming it.
    type: str
    choices: [keep, upgrade, refuse]
    default: refuse
  blacklist_nouveau:
    description: Write the nouveau blacklist and rebuild the initramfs when it changes.
    type: bool
    default: true
  persistence_daemon:
    description:
      - Enable C(nvidia-persistenced) (starting it needs a GPU; the role does that).
      - On a host with no NVIDIA GPU on its PCI bus (vendor C(0x10de)), such as a lab container, the
        daemon is kept disabled and not failed whatever this says, because it cannot start there and
        a failed unit leaves systemd C(degraded).
    type: bool
    default: true
  kernel_release:
    description: Kernel to plan for (headers, precompiled modules). Defaults to the running kernel.
    type: str
  os_release_path:
    description: Where the OS identification is read from.
    type: path
    default: /etc/os-release
attributes:
  check_mode:
    support: full
    details: Reads the host with read-only commands and returns the plan without changing anything.
  diff_mode:
    support: full
    details: Shows the blacklist file and the package set before and after.
notes:
  - Bad input fails before anything on the host is changed, naming the field and the accepted values.
"""

EXAMPLES = r"""
- name: Debian 12's own driver (branch 535) with open modules built by DKMS
  llmops.datacenter.nvidia_driver:
    branch: "535"
    source: distribution

- name: Branch 580 from NVIDIA's repository, replacing whatever is installed
  llmops.datacenter.nvidia_driver:
    branch: "580"
    source: cuda_repo
    existing_driver: upgrade
  register: driver

- name: Reboot when the new module cannot be loaded in place
  ansible.builtin.reboot:
  when: driver.reboot_required
"""

RETURN = r"""
plan:
  description: What was (or, in check mode, would be) done.
  returned: success
  type: dict
  sample:
    packages: [nvidia-smi, libcuda1, nvidia-persistenced, nvidia-open-kernel-dkms, firmware-misc-nonfree]
    install: [linux-headers-6.1.0-28-amd64, nvidia-smi, libcuda1]
    headers_package: linux-headers-6.1.0-28-amd64
    existing_driver: {version: null, package: null, runfile: false, action: install}
    nouveau_blacklist: {path: /etc/modprobe.d/blacklist-nouveau.conf, change: true}
    initramfs_command: [update-initramfs, -u, -k, all]
    persistence_daemon: {enable: true, disable: false, reason: null}
    reboot_required: false
installed_driver_version:
  description: Driver version installed by packages before this run.
  returned: success
  type: str
  sample: 535.261.03
reboot_required:
  description: A reboot is needed for the new kernel module or the nouveau blacklist to take effect.
  returned: success
  type: bool
reboot_reasons:
  description: Why a reboot is needed.
  returned: success
  type: list
  elements: str
commands:
  description: Commands run to apply the plan (empty in check mode).
  returned: success
  type: list
  elements: list
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.llmops.datacenter.plugins.module_utils.nvidia_driver import (
    ACCEPTED,
    BLACKLIST_CONTENT,
    BLACKLIST_PATH,
    ApplyError,
    PlanError,
    apply,
    decide,
    gather,
    parse_os_release,
    read_text,
    validate,
    write_text,
)


def build_diff(plan, host):
    diff = []
    if plan["nouveau_blacklist"]["change"]:
        diff.append(
            {
                "before_header": BLACKLIST_PATH,
                "after_header": BLACKLIST_PATH,
                "before": host["blacklist_current"] or "",
                "after": BLACKLIST_CONTENT,
            }
        )
    if plan["install"]:
        installed = sorted(f"{name}={version}" for name, version in host["installed"].items())
        diff.append(
            {
                "before_header": "installed driver packages",
                "after_header": "after install",
                "before": "\n".join(installed) + "\n",
                "after": "\n".join(installed + [f"+ {spec}" for spec in plan["install"]]) + "\n",
            }
        )
    return diff


def main():
    module = AnsibleModule(
        argument_spec=dict(
            branch=dict(type="str"),
            version=dict(type="str"),
            source=dict(type="str", default="distribution", choices=list(ACCEPTED["source"])),
            kernel_module_type=dict(type="str", default="open", choices=list(ACCEPTED["kernel_module_type"])),
            module_build=dict(type="str", default="dkms", choices=list(ACCEPTED["module_build"])),
            variant=dict(type="str", default="headless", choices=list(ACCEPTED["variant"])),
            server_series=dict(type="bool", default=True),
            existing_driver=dict(type="str", default="refuse", choices=list(ACCEPTED["existing_driver"])),
            blacklist_nouveau=dict(type="bool", default=True),
            persistence_daemon=dict(type="bool", default=True),
            kernel_release=dict(type="str"),
            os_release_path=dict(type="path", default="/etc/os-release"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    kernel = params["kernel_release"] or os.uname().release

    def run(argv, env=None):
        return module.run_command(argv, environ_update=env or {})

    try:
        os_info = parse_os_release(read_text(params["os_release_path"]))
        request = validate(params, os_info)
        host = gather(run, request, os_info, kernel, read_text, os.path.exists, os.listdir)
        plan = decide(request, os_info, kernel, host)
    except PlanError as error:
        module.fail_json(msg=str(error), field=error.field)
    except OSError as error:
        module.fail_json(msg=f"os_release_path: cannot read {params['os_release_path']}: {error}")

    if plan["existing_driver"]["action"] == "keep":
        module.warn(
            f"existing_driver=keep: driver {plan['existing_driver']['version'] or '(runfile)'} left in place "
            f"although {'version ' + request['version'] if request['version'] else 'branch ' + request['branch']} was requested"
        )
    commands = []
    if plan["changed"] and not module.check_mode:
        try:
            commands = apply(plan, run, write_text)
        except ApplyError as error:
            module.fail_json(msg=str(error), plan=plan)
    module.exit_json(
        changed=plan["changed"],
        plan=plan,
        installed_driver_version=plan["existing_driver"]["version"],
        reboot_required=plan["reboot_required"],
        reboot_reasons=plan["reboot_reasons"],
        commands=commands,
        diff=build_diff(plan, host),
    )


if __name__ == "__main__":
    main()
