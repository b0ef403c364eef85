# Copyright: llmops maintainers
# Apache-2.0 (see galaxy.yml)
"""Load an OCI image archive into a registry with skopeo, only when the registry holds another image.

Host side, standard library only. The contract with the caller is one function, ``run(argv)`` returning
``(rc, stdout, stderr)``, so this tests without Ansible.

A registry push compresses the archive's layers, so the manifest in the registry differs from the one
in the archive; the image configuration does not (its digest is the image ID). Equal configuration
digests mean the registry already serves this image.
"""

from __future__ import annotations

import json
import tarfile

MANIFEST_UNKNOWN = ("manifest unknown", "name unknown", "not found")


class OciMirrorError(Exception):
    """A problem the module reports with fail_json, naming the archive or the reference."""


def archive_config_digest(path):
    """The configuration digest of the single image in an OCI archive (``podman save --format oci-archive``)."""
    try:
        with tarfile.open(path) as archive:
            index = _json_member(archive, "index.json", path)
            manifests = index.get("manifests") or []
            if len(manifests) != 1:
                raise OciMirrorError(f"{path}: holds {len(manifests)} images, expected one")
            manifest = _json_member(archive, _blob_name(manifests[0].get("digest", ""), path), path)
    except (OSError, tarfile.TarError) as exc:
        raise OciMirrorError(f"{path}: not a readable OCI archive ({exc})") from exc
    digest = (manifest.get("config") or {}).get("digest")
    if not digest:
        raise OciMirrorError(f"{path}: its manifest names no image configuration")
    return digest


def _blob_name(digest, path):
    algorithm, _, hex_digest = digest.partition(":")
    if not algorithm or not hex_digest or "/" in hex_digest:
        raise OciMirrorError(f"{path}: index.json names a malformed digest {digest!r}")
    return f"blobs/{algorithm}/{hex_digest}"


def _json_member(archive, name, path):
    try:
        member = archive.extractfile(name)
    except KeyError:
        member = None
    if member is None:
        raise OciMirrorError(f"{path}: {name} is missing; not an OCI archive")
    try:
        return json.loads(member.read())
    except ValueError as exc:
        raise OciMirrorError(f"{path}: {name} is not JSON ({exc})") from exc


def _auth_args(authfile, cert_dir, cert_flag):
    args = []
    if authfile:
        args += ["--authfile", authfile]
    if cert_dir:
        args += [cert_flag, cert_dir]
    return args


def registry_config_digest(run, skopeo, reference, authfile=None, cert_dir=None):
    """The configuration digest the registry serves for ``reference``, or None when it has no such tag."""
    rc, out, err = run([skopeo, "inspect", "--raw", "--retry-times", "2",
                        *_auth_args(authfile, cert_dir, "--cert-dir"), f"docker://{reference}"])
    if rc != 0:
        if any(marker in err.lower() for marker in MANIFEST_UNKNOWN):
            return None
        raise OciMirrorError(f"{reference}: skopeo inspect failed: {err.strip()}")
    try:
        manifest = json.loads(out)
    except ValueError as exc:
        raise OciMirrorError(f"{reference}: the registry answered a manifest that is not JSON ({exc})") from exc
    return (manifest.get("config") or {}).get("digest")


def sync_image(run, skopeo, archive, reference, authfile=None, cert_dir=None, check_mode=False):
    """Make ``reference`` serve the image in ``archive``. Returns changed and the digests before and after."""
    wanted = archive_config_digest(archive)
    current = registry_config_digest(run, skopeo, reference, authfile, cert_dir)
    result = {"changed": current != wanted, "before": current, "after": wanted, "config_digest": wanted}
    if not result["changed"] or check_mode:
        return result
    rc, _, err = run([skopeo, "copy", "--quiet", "--retry-times", "2",
                      *_auth_args(authfile, cert_dir, "--dest-cert-dir"),
                      f"oci-archive:{archive}", f"docker://{reference}"])
    if rc != 0:
        raise OciMirrorError(f"{reference}: skopeo copy from {archive} failed: {err.strip()}")
    pushed = registry_config_digest(run, skopeo, reference, authfile, cert_dir)
    if pushed != wanted:
        raise OciMirrorError(f"{reference}: after the copy the registry serves {pushed}, expected {wanted}")
    return result
