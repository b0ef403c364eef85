#!/usr/bin/python
# Copyright: llmops maintainers
# Apache License 2.0 (see galaxy.yml)

DOCUMENTATION = r"""
---
module: kubeadm
short_description: Initialise a Kubernetes control plane or join a node with kubeadm, once
version_added: "0.1.0"
description:
  - "Renders the kubeadm configuration for O(kubernetes_version) (API C(v1beta2) for 1.15-1.21,
    C(v1beta3) for 1.22-1.30, C(v1beta4) from 1.31) and runs C(kubeadm init) or C(kubeadm join) with it."
  - Idempotent by the node's state, never by re-running kubeadm and ignoring errors. A node with
    C(/etc/kubernetes/admin.conf) (control plane) or C(/etc/kubernetes/kubelet.conf) (worker) is
    left alone and reported unchanged.
  - The rendered configuration holds the join token or certificate key, so it is written to a
    file readable by root only for the duration of the command and removed afterwards.
  - C(crictl) (cri-tools) is what kubeadm's C(preflight) phase uses to talk to the container
    runtime; where it is not installed the phase is skipped with a warning (its image checks
    cannot run without it, everything else in kubeadm works).
author:
  - llmops maintainers
options:
  mode:
    description: C(init) the first control plane, or C(join) a worker or (with O(control_plane)) a further control plane.
    type: str
    choices: [init, join]
    required: true
  kubernetes_version:
    description: Kubernetes version, e.g. C(v1.20.2); chooses the config API version.
    type: str
    required: true
  node_name:
    description: The Node object's name.
    type: str
    required: true
  node_ip:
    description: The node's address (kubelet C(--node-ip); the API server's advertise address on control planes).
    type: str
    required: true
  pod_subnet:
    description: Cluster pod CIDR (O(mode=init)); each node gets a slice as its podCIDR.
    type: str
  service_subnet:
    description: Cluster Service CIDR (O(mode=init)).
    type: str
  image_repository:
    description: Registry prefix of the control plane images (O(mode=init)), e.g. C(mirror:5000/kubernetes).
    type: str
  etcd_image_tag:
    description: etcd image tag when it differs from kubeadm's default for the version.
    type: str
  control_plane_endpoint:
    description: Shared address (load balancer or DNS name, with port) of all control planes.
    type: str
  cluster_name:
    description: Cluster name written into kubeconfigs.
    type: str
    default: kubernetes
  cgroup_driver:
    description: The kubelet's cgroup driver; must match the container runtime's (containerd C(SystemdCgroup)).
    type: str
    choices: [systemd, cgroupfs]
    default: systemd
  join_command:
    description: Output of C(kubeadm token create --print-join-command) on a control plane (O(mode=join)).
    type: str
  control_plane:
    description: Join as a further control plane (needs O(certificate_key)).
    type: bool
    default: false
  certificate_key:
    description: Key of the certificates uploaded by C(kubeadm init --upload-certs) (further control planes).
    type: str
  skip_phases:
    description: kubeadm phases to skip, e.g. C(addon/coredns) where no CoreDNS image exists.
    type: list
    elements: str
    default: []
  ignore_preflight_errors:
    description: kubeadm preflight checks to report as warnings only.
    type: list
    elements: str
    default: []
  kubeadm_path:
    description: The kubeadm binary.
    type: path
    default: /usr/local/bin/kubeadm
attributes:
  check_mode:
    support: full
    details: Reports whether kubeadm would run; runs nothing.
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Initialise the first control plane
  llmops.datacenter.kubeadm:
    mode: init
    kubernetes_version: v1.20.2
    node_name: "{{ inventory_hostname }}"
    node_ip: "{{ ansible_default_ipv4.address }}"
    pod_subnet: 10.244.0.0/16
    service_subnet: 10.96.0.0/12
    image_repository: mirror.example:5000/kubernetes
    etcd_image_tag: 3.4.23-0
    skip_phases: [addon/coredns]

- name: Join a worker
  llmops.datacenter.kubeadm:
    mode: join
    kubernetes_version: v1.20.2
    node_name: "{{ inventory_hostname }}"
    node_ip: "{{ ansible_default_ipv4.address }}"
    join_command: "{{ join.stdout }}"
  no_log: true
"""

RETURN = r"""
already_done:
  description: The node was initialised or joined before; nothing was run.
  returned: always
  type: bool
api_version:
  description: kubeadm config API version used.
  returned: always
  type: str
  sample: kubeadm.k8s.io/v1beta2
skipped_phases:
  description: Phases skipped (O(skip_phases), plus C(preflight) where crictl is missing).
  returned: always
  type: list
  elements: str
  sample: [addon/coredns]
stdout:
  description: kubeadm's output (empty when nothing ran).
  returned: always
  type: str
"""

import os
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.llmops.datacenter.plugins.module_utils.kubeadm_config import (
    KubeadmConfigError,
    api_version,
    init_documents,
    join_documents,
    parse_join_command,
    to_yaml,
)

ADMIN_CONF = "/etc/kubernetes/admin.conf"
KUBELET_CONF = "/etc/kubernetes/kubelet.conf"


def main():
    module = AnsibleModule(
        argument_spec=dict(
            mode=dict(type="str", required=True, choices=["init", "join"]),
            kubernetes_version=dict(type="str", required=True),
            node_name=dict(type="str", required=True),
            node_ip=dict(type="str", required=True),
            pod_subnet=dict(type="str"),
            service_subnet=dict(type="str"),
            image_repository=dict(type="str"),
            etcd_image_tag=dict(type="str"),
            control_plane_endpoint=dict(type="str"),
            cluster_name=dict(type="str", default="kubernetes"),
            cgroup_driver=dict(type="str", default="systemd", choices=["systemd", "cgroupfs"]),
            join_command=dict(type="str", no_log=True),
            control_plane=dict(type="bool", default=False),
            certificate_key=dict(type="str", no_log=True),
            skip_phases=dict(type="list", elements="str", default=[]),
            ignore_preflight_errors=dict(type="list", elements="str", default=[]),
            kubeadm_path=dict(type="path", default="/usr/local/bin/kubeadm"),
        ),
        required_if=[
            ("mode", "init", ("pod_subnet", "service_subnet", "image_repository")),
            ("mode", "join", ("join_command",)),
        ],
        supports_check_mode=True,
    )
    params = module.params
    try:
        api = api_version(params["kubernetes_version"])
        if params["mode"] == "init":
            documents = init_documents({**params, "advertise_address": params["node_ip"]})
        else:
            endpoint, token, hashes = parse_join_command(params["join_command"])
            documents = join_documents(
                {**params, "api_server_endpoint": endpoint, "token": token, "ca_cert_hashes": hashes}
            )
    except KubeadmConfigError as error:
        module.fail_json(msg=str(error))

    marker = ADMIN_CONF if params["mode"] == "init" or params["control_plane"] else KUBELET_CONF
    skip = list(params["skip_phases"])
    if not module.get_bin_path("crictl") and "preflight" not in skip:
        module.warn("crictl is not installed: kubeadm's preflight phase needs it and is skipped")
        skip.append("preflight")
    result = dict(changed=False, already_done=os.path.exists(marker), api_version=api, skipped_phases=skip, stdout="")
    if result["already_done"]:
        module.exit_json(**result)
    result["changed"] = True
    if module.check_mode:
        module.exit_json(**result)
    if not os.access(params["kubeadm_path"], os.X_OK):
        module.fail_json(msg=f"kubeadm_path: {params['kubeadm_path']} is not an executable", **result)

    argv = [params["kubeadm_path"], params["mode"]]
    if skip:
        argv.append("--skip-phases=" + ",".join(skip))
    if params["ignore_preflight_errors"]:
        argv.append("--ignore-preflight-errors=" + ",".join(params["ignore_preflight_errors"]))
    if params["mode"] == "init" and params["certificate_key"]:
        argv.append("--upload-certs")
    handle, config_path = tempfile.mkstemp(prefix="kubeadm-", suffix=".yaml", dir="/root" if os.geteuid() == 0 else None)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(to_yaml(documents))
        rc, out, err = module.run_command([*argv, "--config", config_path])
    finally:
        os.unlink(config_path)
    # init prints a join command with its bootstrap token: keep secrets out of the result.
    secret_flags = ("--token", "--discovery-token-ca-cert-hash", "--certificate-key")
    result["stdout"] = "\n".join(line for line in out.splitlines() if not any(flag in line for flag in secret_flags))
    if rc != 0:
        module.fail_json(msg=f"kubeadm {params['mode']} failed (rc={rc}): {err.strip()[-2000:]}", rc=rc, stderr=err, **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
