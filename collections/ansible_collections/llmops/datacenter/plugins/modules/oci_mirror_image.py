#!/usr/bin/python
# Copyright: llmops maintainers
# Apache-2.0 (see galaxy.yml)

DOCUMENTATION = r"""
module: oci_mirror_image
short_description: Load an OCI image archive into a registry, only when the registry serves another image
version_added: 0.1.0
description:
  - Reads the image configuration digest (the image ID) from an OCI archive such as
    C(podman save --format oci-archive) writes, asks the registry with C(skopeo inspect --raw) which
    image the reference serves, and pushes the archive with C(skopeo copy) only when they differ.
  - Configuration digests are compared, not manifest digests, because the registry push compresses
    layers and so changes the manifest, never the configuration.
  - After a push the registry is asked again; a registry that serves another image fails the task.
  - A missing or malformed archive fails naming it, before the registry is contacted.
author:
  - llmops maintainers
options:
  archive:
    description: Path of the OCI archive on the host, holding exactly one image.
    type: path
    required: true
  reference:
    description: Destination C(registry:port/repository:tag), without a transport prefix.
    type: str
    required: true
  authfile:
    description: containers-auth.json(5) file with the registry credentials; the password never appears on a command line.
    type: path
  cert_dir:
    description: Directory holding C(ca.crt) that signed the registry's certificate.
    type: path
  skopeo:
    description: The skopeo executable.
    type: path
    default: skopeo
attributes:
  check_mode:
    support: full
    description: Compares the digests and reports whether a push would happen, without pushing.
  diff_mode:
    support: full
    description: Shows the configuration digest the registry serves before and after.
requirements:
  - skopeo on the host
"""

EXAMPLES = r"""
- name: Serve the pause image from the site mirror
  llmops.datacenter.oci_mirror_image:
    archive: /var/lib/site-mirror/archives/pause_3.2.oci.tar
    reference: 127.0.0.1:5000/kubernetes/pause:3.2
    authfile: /etc/site-mirror/auth.json
    cert_dir: /etc/site-mirror/trust
"""

RETURN = r"""
config_digest:
  description: Configuration digest (image ID) of the image in the archive, which the registry now serves.
  returned: success
  type: str
  sample: sha256:80d28bedfe5dec59da9ebf8e6260224ac9008ab5c11dbbe16ee3ba3e4439ac2c
reference:
  description: The reference the image is served under.
  returned: success
  type: str
  sample: 127.0.0.1:5000/kubernetes/pause:3.2
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.llmops.datacenter.plugins.module_utils.oci_mirror import OciMirrorError, sync_image


def main():
    module = AnsibleModule(
        argument_spec={
            "archive": {"type": "path", "required": True},
            "reference": {"type": "str", "required": True},
            "authfile": {"type": "path"},
            "cert_dir": {"type": "path"},
            "skopeo": {"type": "path", "default": "skopeo"},
        },
        supports_check_mode=True,
    )
    params = module.params
    if "://" in params["reference"] or ":" not in params["reference"].rsplit("/", 1)[-1]:
        module.fail_json(msg=f"reference {params['reference']!r} must be registry:port/repository:tag, "
                             "without a transport prefix")
    skopeo = module.get_bin_path(params["skopeo"], required=True)

    def run(argv):
        return module.run_command(argv)

    try:
        result = sync_image(run, skopeo, params["archive"], params["reference"], params["authfile"],
                            params["cert_dir"], module.check_mode)
    except OciMirrorError as exc:
        module.fail_json(msg=str(exc), archive=params["archive"], reference=params["reference"])
    module.exit_json(
        changed=result["changed"],
        config_digest=result["config_digest"],
        reference=params["reference"],
        diff={"before": f"{params['reference']}: {result['before'] or 'absent'}\n",
              "after": f"{params['reference']}: {result['after']}\n"},
    )


if __name__ == "__main__":
    main()
