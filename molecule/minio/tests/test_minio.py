"""The minio role on one host: what it installed and wrote, and bad input refused before any change.

The server itself is not started (no MinIO binary can be obtained here; see molecule.yml), so
the checks are on the pinned artifact, the user, the drives, the environment file MinIO reads,
the TLS files against the generated CA, and the unit as systemd itself verifies and loads it.
"""

import json
import os
import pathlib
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

EPHEMERAL = pathlib.Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
SCENARIO = pathlib.Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"])
PIN = "c2dd32a2b3d4f633fe09ab432901e53fa2cb5dcf9aa7f8e79381d0a7d5216012"
BINARY = f"/opt/minio/{PIN[:16]}/minio"
DRIVES = [f"/var/lib/minio/pool1-disk{i}" for i in range(1, 5)] + [f"/var/lib/minio/pool2-disk{i}" for i in range(1, 7)]
SNAPSHOT = ("find /etc/minio /opt/minio /var/lib/minio /etc/systemd/system/minio.service /usr/local/bin/minio "
            "-printf '%p %m %u %g %s %T@\\n' 2>/dev/null | sort; getent passwd minio; "
            "md5sum /etc/minio/minio.env /etc/systemd/system/minio.service")


def secret(name):
    return (EPHEMERAL / name).read_text(encoding="utf-8").split()[0]


def run(host, command):
    result = host.run(command)
    assert result.rc == 0, result.stderr
    return result.stdout


# Each host call is a round trip through Ansible: the checks batch what they read.
def test_pinned_binary_installed_under_its_checksum_and_linked(host):
    out = run(host, f"stat -c '%U %a' {BINARY}; sha256sum {BINARY}; readlink /usr/local/bin/minio").split()
    assert out[:2] == ["root", "755"]
    assert out[2] == PIN
    assert out[4] == BINARY


def test_dedicated_system_user_without_login(host):
    _, _, uid, gid, _, _, shell = run(host, "getent passwd minio").strip().split(":")
    assert int(uid) < 1000 and shell == "/usr/sbin/nologin"
    assert run(host, f"getent group {gid}").split(":")[0] == "minio"


def test_every_drive_of_both_pools_exists_for_the_minio_user_only(host):
    lines = run(host, "stat -c '%n %F %U %a' " + " ".join(DRIVES)).splitlines()
    assert lines == [f"{path} directory minio 750" for path in DRIVES]


def test_environment_file_is_root_only_and_holds_the_layout_and_credentials(host):
    meta, _, content = run(host, "stat -c '%U %G %a' /etc/minio/minio.env; echo; cat /etc/minio/minio.env").partition("\n\n")
    assert meta.split() == ["root", "root", "600"]
    values = dict(line.split("=", 1) for line in content.splitlines() if line and not line.startswith("#"))
    assert values["MINIO_VOLUMES"] == '"/var/lib/minio/pool1-disk{1...4} /var/lib/minio/pool2-disk{1...6}"'
    assert values["MINIO_ROOT_USER"] == f'"{secret("minio-root-user")}"'
    assert values["MINIO_ROOT_PASSWORD"] == f'"{secret("minio-root-password")}"'
    assert values["MINIO_OPTS"] == '"--address :9000 --console-address :9001 --certs-dir /etc/minio/certs"'
    # The erasure sets MinIO will form, as the preflight computed them.
    assert "Pools: 1 set(s) of 4 drives, parity 2; 1 set(s) of 6 drives, parity 3." in content


def test_certificate_is_signed_by_the_generated_ca_for_this_host_and_the_key_is_private(host):
    ca_pem = (EPHEMERAL / "pki" / "ca.pem").read_bytes()
    ca = x509.load_pem_x509_certificate(ca_pem)
    cert = x509.load_pem_x509_certificate(host.file("/etc/minio/certs/public.crt").content)
    cert.verify_directly_issued_by(ca)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {"minio-1", "localhost"} <= set(names.get_values_for_type(x509.DNSName))
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in usage
    meta, _, public_key = run(host, "stat -c '%U %G %a' /etc/minio/certs/private.key; "
                                    "openssl pkey -in /etc/minio/certs/private.key -pubout").partition("\n")
    assert meta.split() == ["root", "minio", "640"]
    # The key on the host is the certificate's key.
    assert public_key.strip() == cert.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode().strip()
    assert host.file("/etc/minio/certs/CAs/llmops-ca.crt").content.strip() == ca_pem.strip()


def test_unit_passes_systemd_verification_and_loads_hardened(host):
    verify = host.run("systemd-analyze verify /etc/systemd/system/minio.service")
    assert verify.rc == 0, verify.stderr
    shown = host.run("systemctl show minio -p LoadState,Type,User,Group,NoNewPrivileges,ProtectSystem,ProtectHome,"
                     "PrivateTmp,PrivateDevices,EnvironmentFiles,ExecStart,ReadWritePaths,CapabilityBoundingSet")
    state = dict(line.split("=", 1) for line in shown.stdout.splitlines())
    assert state["LoadState"] == "loaded" and state["Type"] == "notify"
    assert state["User"] == "minio" and state["Group"] == "minio"
    assert state["NoNewPrivileges"] == "yes" and state["ProtectSystem"] == "strict"
    assert state["ProtectHome"] == "yes" and state["PrivateTmp"] == "yes" and state["PrivateDevices"] == "yes"
    assert state["CapabilityBoundingSet"] == ""
    assert state["EnvironmentFiles"].startswith("/etc/minio/minio.env")
    assert f"path={BINARY} ; argv[]={BINARY} server $MINIO_OPTS $MINIO_VOLUMES" in state["ExecStart"]
    assert sorted(state["ReadWritePaths"].split()) == sorted(DRIVES)


def playbook(*extra_args):
    """Run this scenario's converge again against the same instance, the way a user re-runs site.yml."""
    inventory = os.path.dirname(os.environ["MOLECULE_INVENTORY_FILE"])
    result = subprocess.run(
        ["ansible-playbook", "-i", inventory, str(SCENARIO / "converge.yml"), "--skip-tags", "run", *extra_args],
        capture_output=True, text=True, env=os.environ, check=False, timeout=300,
    )
    return result.returncode, " ".join((result.stdout + result.stderr).split())


# One bad input on the installed host (each run of the role costs a minute); every other bad input
# is refused by the same preflight in tests/artifacts/test_minio_role_input.py.
@pytest.mark.parametrize(("extra", "message"), [
    ({"minio_server_artifact_sha256": "0" * 64},
     "minio_server_artifact_sha256: " + str(SCENARIO / "files" / "minio-placeholder") + f" has sha256 {PIN}"),
])
def test_bad_input_fails_naming_the_field_and_changes_nothing(host, extra, message):
    before = host.run(SNAPSHOT).stdout
    extra_file = EPHEMERAL / "bad-input.json"
    extra_file.write_text(json.dumps(extra), encoding="utf-8")
    code, output = playbook("-e", f"@{extra_file}")
    assert code != 0
    assert message in output, output[-3000:]
    assert host.run(SNAPSHOT).stdout == before
