#!/usr/bin/python
# Copyright: llmops maintainers
# Apache License 2.0 (see galaxy.yml)

DOCUMENTATION = r"""
---
module: container_runtime_nvidia
short_description: Register the NVIDIA container runtime with containerd or CRI-O
version_added: "0.1.0"
description:
  - For containerd, edits C(/etc/containerd/config.toml) in place so that the CRI plugin has a
    runtime named O(runtime_name) running O(binary_path) (and, with O(set_as_default), makes it the
    default). Config C(version = 2) (containerd 1.x) and C(version = 3) (containerd 2.x) are handled;
    a missing file is created.
  - For CRI-O, writes the drop-in C(/etc/crio/crio.conf.d/99-nvidia.conf).
  - The edit is text based and section aware; comments and unrelated settings are kept. The
    result is parsed back as TOML and must contain the managed values before it is written.
  - Restarting the runtime is left to the caller (RV(restart_required)).
author:
  - llmops maintainers
options:
  runtime:
    description: Container runtime to configure.
    type: str
    choices: [containerd, crio]
    default: containerd
  config_path:
    description: File to edit. Defaults to C(/etc/containerd/config.toml) or the CRI-O drop-in.
    type: path
  config_version:
    description:
      - containerd config format. C(auto) takes the file's C(version), or for a new file 3 when
        C(containerd --version) reports 2.x and 2 otherwise.
    type: str
    choices: [auto, "2", "3"]
    default: auto
  runtime_name:
    description: Name of the runtime handler (what a Kubernetes RuntimeClass's C(handler) names).
    type: str
    default: nvidia
  binary_path:
    description: The NVIDIA container runtime binary.
    type: path
    default: /usr/bin/nvidia-container-runtime
  set_as_default:
    description: Make the NVIDIA runtime the default for every container.
    type: bool
    default: false
  register_runtime:
    description:
      - Register the NVIDIA runtime. C(false) on hosts without one, where only O(settings) and
        O(secret_settings) are applied.
    type: bool
    default: true
  settings:
    description:
      - "Further settings of the same file, as a dict of dotted table name to a dict of key and value,
        set the same way (e.g. the CRI plugin's C(sandbox_image), runc's C(SystemdCgroup), a registry's CA file)."
      - Values are strings, integers or booleans.
    type: dict
    default: {}
  secret_settings:
    description: Like O(settings), for values kept out of logs (a registry password).
    type: dict
    default: {}
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
"""

EXAMPLES = r"""
- name: Make the NVIDIA runtime containerd's default
  llmops.datacenter.container_runtime_nvidia:
    runtime: containerd
    set_as_default: true
  register: runtime_config

- name: CRI settings on a host without the NVIDIA runtime
  llmops.datacenter.container_runtime_nvidia:
    register_runtime: false
    settings:
      plugins."io.containerd.grpc.v1.cri":
        sandbox_image: mirror.example:5000/kubernetes/pause:3.2
      plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options:
        SystemdCgroup: true

- name: Restart containerd when its config changed
  ansible.builtin.systemd_service:
    name: containerd
    state: restarted
  when: runtime_config.restart_required
"""

RETURN = r"""
config_path:
  description: The file edited.
  returned: always
  type: str
  sample: /etc/containerd/config.toml
config_version:
  description: containerd config format used (null for CRI-O).
  returned: always
  type: int
  sample: 2
restart_required:
  description: The runtime must be restarted to pick up the change.
  returned: always
  type: bool
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.llmops.datacenter.plugins.module_utils.container_runtime_nvidia import (
    CONTAINERD_CONFIG,
    CRIO_DROP_IN,
    RuntimeConfigError,
    containerd_major_version,
    render,
)
from ansible_collections.llmops.datacenter.plugins.module_utils.managed_file import ensure_file, read_text


def _merged_settings(settings, secret_settings):
    merged = {table: dict(values) if isinstance(values, dict) else values for table, values in settings.items()}
    for table, values in secret_settings.items():
        if isinstance(values, dict) and isinstance(merged.get(table, {}), dict):
            merged.setdefault(table, {}).update(values)
        else:
            merged[table] = values
    return merged


def main():
    module = AnsibleModule(
        argument_spec=dict(
            runtime=dict(type="str", default="containerd", choices=["containerd", "crio"]),
            config_path=dict(type="path"),
            config_version=dict(type="str", default="auto", choices=["auto", "2", "3"]),
            runtime_name=dict(type="str", default="nvidia"),
            binary_path=dict(type="path", default="/usr/bin/nvidia-container-runtime"),
            set_as_default=dict(type="bool", default=False),
            register_runtime=dict(type="bool", default=True),
            settings=dict(type="dict", default={}),
            secret_settings=dict(type="dict", default={}, no_log=True),
        ),
        supports_check_mode=True,
    )
    params = module.params
    path = params["config_path"] or (CONTAINERD_CONFIG if params["runtime"] == "containerd" else CRIO_DROP_IN)
    current = read_text(path)

    requested_version = None if params["config_version"] == "auto" else int(params["config_version"])
    if params["runtime"] == "containerd" and requested_version is None and not (current or "").strip():
        binary = module.get_bin_path("containerd")
        if binary:
            _rc, out, _err = module.run_command([binary, "--version"])
            requested_version = 3 if containerd_major_version(out) == 2 else 2
    try:
        desired, version = render(
            current,
            params["runtime"],
            requested_version,
            params["runtime_name"],
            params["binary_path"],
            params["set_as_default"],
            params["register_runtime"],
            _merged_settings(params["settings"], params["secret_settings"]),
        )
    except RuntimeConfigError as error:
        module.fail_json(msg=str(error), config_path=path)

    if not module.check_mode:
        os.makedirs(os.path.dirname(path), exist_ok=True)
    result = ensure_file(path, desired, module.check_mode, new_file_mode=0o644)
    module.exit_json(**result, config_path=path, config_version=version, restart_required=result["changed"])


if __name__ == "__main__":
    main()
