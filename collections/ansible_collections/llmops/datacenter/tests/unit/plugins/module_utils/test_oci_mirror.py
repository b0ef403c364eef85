"""module_utils.oci_mirror: archive digests from real OCI archives, skopeo at the run_command boundary."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile

import pytest
from ansible_collections.llmops.datacenter.plugins.module_utils import oci_mirror

CONFIG = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}).encode()
CONFIG_DIGEST = "sha256:" + hashlib.sha256(CONFIG).hexdigest()


def write_archive(path, manifests=1, config=True):
    """An OCI image layout in a tar, as `podman save --format oci-archive` writes one."""
    manifest = json.dumps({"schemaVersion": 2, "config": {"digest": CONFIG_DIGEST, "size": len(CONFIG)} if config
                           else {}, "layers": []}).encode()
    manifest_digest = hashlib.sha256(manifest).hexdigest()
    index = json.dumps({"schemaVersion": 2, "manifests": [{"digest": f"sha256:{manifest_digest}"}] * manifests})
    with tarfile.open(path, "w") as archive:
        for name, data in [("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'), ("index.json", index.encode()),
                           (f"blobs/sha256/{manifest_digest}", manifest),
                           (f"blobs/sha256/{CONFIG_DIGEST.split(':')[1]}", CONFIG)]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return str(path)


class Skopeo:
    """Answers skopeo calls like a registry holding `served` (a config digest, or None for no such tag)."""

    def __init__(self, served=None, inspect_error=""):
        self.served = served
        self.inspect_error = inspect_error
        self.calls = []

    def __call__(self, argv):
        self.calls.append(argv)
        if argv[1] == "inspect":
            if self.inspect_error:
                return 1, "", self.inspect_error
            if self.served is None:
                return 1, "", "Error: reading manifest 1 in 127.0.0.1:5000/x: manifest unknown: manifest unknown"
            return 0, json.dumps({"config": {"digest": self.served}}), ""
        if argv[1] == "copy":
            self.served = CONFIG_DIGEST
            return 0, "", ""
        raise AssertionError(argv)


def test_config_digest_is_read_from_the_archive(tmp_path):
    assert oci_mirror.archive_config_digest(write_archive(tmp_path / "a.oci.tar")) == CONFIG_DIGEST


@pytest.mark.parametrize(("kwargs", "message"), [({"manifests": 2}, "holds 2 images, expected one"),
                                                  ({"config": False}, "names no image configuration")])
def test_malformed_archives_fail_naming_the_archive(tmp_path, kwargs, message):
    path = write_archive(tmp_path / "bad.oci.tar", **kwargs)
    with pytest.raises(oci_mirror.OciMirrorError, match=message) as error:
        oci_mirror.archive_config_digest(path)
    assert path in str(error.value)


def test_a_missing_archive_fails_naming_it_before_the_registry_is_asked(tmp_path):
    skopeo = Skopeo()
    with pytest.raises(oci_mirror.OciMirrorError, match=r"missing\.oci\.tar"):
        oci_mirror.sync_image(skopeo, "skopeo", str(tmp_path / "missing.oci.tar"), "127.0.0.1:5000/k/p:3.2")
    assert skopeo.calls == []


@pytest.mark.parametrize("check_mode", [False, True])
def test_an_absent_image_is_pushed_outside_check_mode_only(tmp_path, check_mode):
    skopeo = Skopeo()
    result = oci_mirror.sync_image(skopeo, "skopeo", write_archive(tmp_path / "a.oci.tar"), "127.0.0.1:5000/k/p:3.2",
                                   authfile="/etc/site-mirror/auth.json", cert_dir="/etc/site-mirror/trust",
                                   check_mode=check_mode)
    assert result["changed"] is True and result["before"] is None and result["after"] == CONFIG_DIGEST
    copies = [call for call in skopeo.calls if call[1] == "copy"]
    assert len(copies) == (0 if check_mode else 1)
    if copies:
        assert copies[0][-2:] == [f"oci-archive:{tmp_path / 'a.oci.tar'}", "docker://127.0.0.1:5000/k/p:3.2"]
        assert "--authfile" in copies[0] and "--dest-cert-dir" in copies[0]


def test_the_same_image_is_not_pushed_again(tmp_path):
    skopeo = Skopeo(served=CONFIG_DIGEST)
    result = oci_mirror.sync_image(skopeo, "skopeo", write_archive(tmp_path / "a.oci.tar"), "127.0.0.1:5000/k/p:3.2")
    assert result["changed"] is False
    assert [call[1] for call in skopeo.calls] == ["inspect"]


def test_another_image_under_the_tag_is_replaced(tmp_path):
    skopeo = Skopeo(served="sha256:" + "0" * 64)
    result = oci_mirror.sync_image(skopeo, "skopeo", write_archive(tmp_path / "a.oci.tar"), "127.0.0.1:5000/k/p:3.2")
    assert result["changed"] is True and result["before"] == "sha256:" + "0" * 64
    assert [call[1] for call in skopeo.calls] == ["inspect", "copy", "inspect"]


def test_a_registry_error_other_than_no_such_tag_fails_naming_the_reference(tmp_path):
    skopeo = Skopeo(inspect_error="Error: unauthorized: authentication required")
    with pytest.raises(oci_mirror.OciMirrorError, match=r"127\.0\.0\.1:5000/k/p:3\.2: skopeo inspect failed: .*unauthorized"):
        oci_mirror.sync_image(skopeo, "skopeo", write_archive(tmp_path / "a.oci.tar"), "127.0.0.1:5000/k/p:3.2")
    assert [call[1] for call in skopeo.calls] == ["inspect"]
