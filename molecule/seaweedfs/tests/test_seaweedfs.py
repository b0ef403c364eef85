"""The store answers S3 over TLS (certificate signed by the generated CA) with per-bucket permissions."""

import os
import time

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

testinfra_hosts = ["seaweedfs-store"]
EPHEMERAL = os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]


def secret(name):
    with open(os.path.join(EPHEMERAL, name), encoding="utf-8") as handle:
        return handle.read().split()[0]


@pytest.fixture(scope="module")
def endpoint(host):
    address = host.check_output("hostname -I").split()[0]
    return f"https://{address}:8333"


def client(endpoint, who):
    return boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id=secret(f"s3-{who}-access"), aws_secret_access_key=secret(f"s3-{who}-secret"),
        verify=os.path.join(EPHEMERAL, "pki", "ca.pem"),
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


def test_units_run_as_the_service_user_and_internal_ports_stay_on_loopback(host):
    # One round trip: unit states, the servers' users, and the listening sockets.
    out = host.check_output(
        "systemctl is-active seaweedfs-master seaweedfs-volume seaweedfs-filer seaweedfs-s3;"
        " echo ---; ps -o user= -C weed; echo ---; ss -ltnH"
    )
    states, users, sockets = out.split("---")
    assert states.split() == ["active"] * 4
    assert set(users.split()) == {"seaweedfs"} and len(users.split()) == 4
    listening = {line.split()[3] for line in sockets.strip().splitlines()}
    assert "127.0.0.1:9333" in listening and "127.0.0.1:8888" in listening
    assert not {"0.0.0.0:9333", "*:9333", "0.0.0.0:8888", "*:8888"} & listening
    assert {"0.0.0.0:8333", "*:8333"} & listening


def test_plain_http_is_not_served(host):
    out = host.run("curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8333/")
    assert out.stdout != "200"


def put_when_writable(s3, bucket, key, body):
    # A fresh bucket's first volume is grown asynchronously: retry the first write briefly.
    for attempt in range(30):
        try:
            s3.put_object(Bucket=bucket, Key=key, Body=body)
            return
        except ClientError:
            if attempt == 29:
                raise
            time.sleep(1)


def denied(call):
    with pytest.raises(ClientError) as error:
        call()
    return error.value.response["Error"]["Code"] == "AccessDenied"


def test_admin_writes_tenants_read_only_their_bucket(endpoint):
    admin = client(endpoint, "admin")
    assert {b["Name"] for b in admin.list_buckets()["Buckets"]} >= {"llmops-team-a", "llmops-team-b", "llmops-shared"}
    put_when_writable(admin, "llmops-team-a", "m/v1/manifest.json", b"{}")
    team_a, team_b = client(endpoint, "team-a"), client(endpoint, "team-b")
    assert team_a.get_object(Bucket="llmops-team-a", Key="m/v1/manifest.json")["Body"].read() == b"{}"
    assert [o["Key"] for o in team_a.list_objects_v2(Bucket="llmops-team-a")["Contents"]] == ["m/v1/manifest.json"]
    assert denied(lambda: team_b.get_object(Bucket="llmops-team-a", Key="m/v1/manifest.json"))
    assert denied(lambda: team_b.list_objects_v2(Bucket="llmops-team-a"))
    assert denied(lambda: team_a.put_object(Bucket="llmops-team-a", Key="x", Body=b"x"))


def test_identity_permissions_apply_per_bucket(endpoint):
    publisher = client(endpoint, "publisher")
    put_when_writable(publisher, "llmops-shared", "note", b"shared")
    assert publisher.get_object(Bucket="llmops-shared", Key="note")["Body"].read() == b"shared"
    assert denied(lambda: publisher.put_object(Bucket="llmops-team-b", Key="x", Body=b"x"))
    assert denied(lambda: publisher.list_objects_v2(Bucket="llmops-team-a"))


def test_certificate_is_checked(endpoint):
    wrong_ca = boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id="x", aws_secret_access_key="y", config=Config(retries={"max_attempts": 1}),
    )
    with pytest.raises(Exception, match=r"(?i)certificate"):
        wrong_ca.list_buckets()
