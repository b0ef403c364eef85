"""The mirror serves images through TLS and htpasswd auth, and artifacts over HTTPS, from the host itself."""

import base64
import hashlib
import json
import os
import tarfile

import pytest

# podman exec directly: an Ansible run per command costs seconds each.
testinfra_hosts = ["podman://site-mirror"]
EPHEMERAL = os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]
SCENARIO = os.environ["MOLECULE_SCENARIO_DIRECTORY"]
REGISTRY = "site-mirror:5000"
TRUST = "/etc/site-mirror/trust"


def password(user):
    with open(os.path.join(EPHEMERAL, f"registry-{user}"), encoding="utf-8") as handle:
        return handle.read().split()[0]


def archive_config_digest(path):
    with tarfile.open(path) as archive:
        index = json.load(archive.extractfile("index.json"))
        algorithm, digest = index["manifests"][0]["digest"].split(":")
        manifest = json.load(archive.extractfile(f"blobs/{algorithm}/{digest}"))
    return manifest["config"]["digest"]


def skopeo(host, command, user=None, secret=None):
    """Run skopeo on the mirror host; credentials go through an auth file, as the role does, never argv."""
    if user is None:
        return host.run(f"skopeo {command} --no-creds")
    auth = base64.b64encode(f"{user}:{secret}".encode()).decode()
    authfile = json.dumps({"auths": {REGISTRY: {"auth": auth}}})
    return host.run(f"umask 077 && printf '%s' '{authfile}' > /tmp/verify-auth.json && "
                    f"skopeo {command} --authfile /tmp/verify-auth.json")


@pytest.mark.parametrize(("repository", "archive", "path", "content"), [
    ("llmops-test/hello:1", "hello_1.oci.tar", "hello.txt", "hello from the site mirror"),
    ("kubernetes/motd:2.0", "motd_2.0.oci.tar", "motd.txt", "a second image, other layers"),
])
def test_image_pulls_through_tls_and_auth_and_is_the_archived_image(host, repository, archive, path, content):
    pulled = skopeo(host, f"copy --src-cert-dir {TRUST} docker://{REGISTRY}/{repository} dir:/tmp/pulled-{path}",
                    "node", password("node"))
    assert pulled.rc == 0, pulled.stderr
    manifest = json.loads(host.file(f"/tmp/pulled-{path}/manifest.json").content_string)
    assert manifest["config"]["digest"] == archive_config_digest(os.path.join(EPHEMERAL, archive))
    # The layer itself came down: the file the image was built with, byte for byte.
    layer = manifest["layers"][-1]["digest"].split(":")[1]
    assert host.check_output(f"tar -xzOf /tmp/pulled-{path}/{layer} {path}") == content


def test_pull_without_credentials_is_refused(host):
    anonymous = skopeo(host, f"inspect --cert-dir {TRUST} docker://{REGISTRY}/llmops-test/hello:1")
    assert anonymous.rc != 0
    assert "unauthorized" in anonymous.stderr.lower() or "authentication required" in anonymous.stderr.lower()


def test_wrong_password_is_refused(host):
    wrong = skopeo(host, f"inspect --cert-dir {TRUST} docker://{REGISTRY}/llmops-test/hello:1",
                   "node", password("node") + "x")
    assert wrong.rc != 0
    assert "unauthorized" in wrong.stderr.lower() or "invalid username/password" in wrong.stderr.lower()


def test_registry_certificate_is_refused_without_the_ca(host):
    untrusted = skopeo(host, f"inspect docker://{REGISTRY}/llmops-test/hello:1", "node", password("node"))
    assert untrusted.rc != 0
    assert "certificate" in untrusted.stderr.lower()


def test_artifact_downloads_over_https_with_the_ca_and_matches_its_sha256(host):
    with open(os.path.join(SCENARIO, "files", "artifact.txt"), "rb") as handle:
        expected = hashlib.sha256(handle.read()).hexdigest()
    fetched = host.check_output(
        f"curl -sSf --cacert {TRUST}/ca.crt https://site-mirror:8443/kubernetes/v1.20.2/bin/artifact.txt | sha256sum")
    assert fetched.split()[0] == expected
    sums = host.check_output(f"curl -sSf --cacert {TRUST}/ca.crt https://site-mirror:8443/SHA256SUMS")
    assert f"{expected}  kubernetes/v1.20.2/bin/artifact.txt" in sums
    # Without the CA the certificate is not trusted; writes are refused.
    assert host.run("curl -sSf https://site-mirror:8443/SHA256SUMS").rc != 0
    put = host.check_output(f"curl -s -o /dev/null -w '%{{http_code}}' --cacert {TRUST}/ca.crt -X PUT "
                            "--data x https://site-mirror:8443/kubernetes/new.txt")
    assert put in {"403", "405"}


def test_ca_certificate_lies_on_the_controller():
    with open(os.path.join(EPHEMERAL, "pki", "ca.crt"), encoding="utf-8") as handle:
        assert "BEGIN CERTIFICATE" in handle.read()


def test_registry_users_are_bcrypt_and_unreadable_to_others(host):
    htpasswd = host.file("/etc/docker/registry/htpasswd")
    assert htpasswd.mode == 0o640 and htpasswd.group == "docker-registry"
    entries = dict(line.split(":", 1) for line in htpasswd.content_string.split())
    assert sorted(entries) == ["loader", "node"]
    assert all(value.startswith("$2y$10$") for value in entries.values())
