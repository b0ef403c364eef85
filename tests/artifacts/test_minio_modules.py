"""minio_bucket, minio_user and minio_policy logic over HTTP.

S3 operations (bucket create/remove, versioning, object lock, lifecycle) run against the real
SeaweedFS of conftest.py; boto3 (another client) checks what landed there. Admin-API operations
(users, policies, attachments, quotas) run against minio_admin_api_replay: MinIO's documented
admin responses on loopback, with signatures verified and encrypted bodies decrypted. No MinIO
server runs here.
"""

from __future__ import annotations

import pytest
from ansible_collections.llmops.datacenter.plugins.module_utils import minio_manage as mm
from conftest import boto3_client
from minio_admin_api_replay import AdminApiReplay

RULES = [
    {"id": "noncurrent-7d", "noncurrent_expiration_days": 7},
    {"id": "tmp-3d", "prefix": "tmp/", "expiration_days": 3},
    {"id": "abort-uploads", "abort_incomplete_multipart_days": 2},
]
TEAM_A_READ = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"],
     "Resource": ["arn:aws:s3:::llmops-team-a", "arn:aws:s3:::llmops-team-a/*"]}]}


@pytest.fixture
def replay(store):
    admin = store.identities["admin"]
    server = AdminApiReplay(admin.access_key, admin.secret_key, s3_upstream=store.endpoint_url).start()
    yield server
    server.stop()


def connection(replay, **overrides):
    params = {"endpoint_url": replay.endpoint_url, "access_key": replay.access_key, "secret_key": replay.secret_key,
              "region": "us-east-1", "ca_cert": None, "validate_certs": True, "timeout": 20}
    params.update(overrides)
    return mm.connect(params)


def bucket(name, **options):
    return {"name": name, "state": "present", "versioning": None, "object_lock": None, "quota": None,
            "lifecycle_rules": None, **options}


def user(name, **options):
    return {"name": name, "secret": None, "state": "present", "status": "enabled", "policies": None,
            "update_secret": "on_create", **options}


def policy(name, **options):
    return {"name": name, "policy": None, "state": "present", "users": [], "groups": [], **options}


# --- buckets: S3 on the real SeaweedFS ------------------------------------------------------------

def test_bucket_created_with_versioning_and_lifecycle_then_second_run_writes_nothing(store, replay):
    s3, admin = connection(replay)
    result = mm.ensure_bucket(s3, admin, bucket("llmops-mb-one", versioning="enabled", lifecycle_rules=RULES), False)
    assert result["changed"]
    assert result["actions"] == ["create bucket", "set versioning enabled", "set lifecycle rules"]

    check = boto3_client(store, "admin")
    assert check.get_bucket_versioning(Bucket="llmops-mb-one")["Status"] == "Enabled"
    stored = {r["ID"]: r for r in check.get_bucket_lifecycle_configuration(Bucket="llmops-mb-one")["Rules"]}
    assert set(stored) == {"noncurrent-7d", "tmp-3d", "abort-uploads"}
    assert stored["tmp-3d"]["Expiration"]["Days"] == 3
    assert stored["noncurrent-7d"]["NoncurrentVersionExpiration"]["NoncurrentDays"] == 7
    assert stored["abort-uploads"]["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] == 2

    replay.clear()
    again = mm.ensure_bucket(s3, admin, bucket("llmops-mb-one", versioning="enabled", lifecycle_rules=RULES), False)
    assert not again["changed"] and again["actions"] == []
    assert replay.s3_writes() == [] and replay.admin_requests(mutating_only=True) == []


def test_bucket_settings_change_only_what_differs(store, replay):
    s3, admin = connection(replay)
    mm.ensure_bucket(s3, admin, bucket("llmops-mb-two", versioning="enabled", lifecycle_rules=RULES), False)
    replay.clear()
    result = mm.ensure_bucket(s3, admin, bucket("llmops-mb-two", versioning="suspended",
                                                lifecycle_rules=RULES[1:]), False)
    assert result["actions"] == ["set versioning suspended", "set lifecycle rules"]
    assert [m for m, _ in replay.s3_writes()] == ["PUT", "PUT"]
    check = boto3_client(store, "admin")
    assert check.get_bucket_versioning(Bucket="llmops-mb-two")["Status"] == "Suspended"
    assert {r["ID"] for r in check.get_bucket_lifecycle_configuration(Bucket="llmops-mb-two")["Rules"]} == {
        "tmp-3d", "abort-uploads"}
    assert result["diff"]["before"]["versioning"] == "enabled" and result["diff"]["after"]["versioning"] == "suspended"

    removed = mm.ensure_bucket(s3, admin, bucket("llmops-mb-two", lifecycle_rules=[]), False)
    assert removed["actions"] == ["remove lifecycle rules"]
    assert mm.ensure_bucket(s3, admin, bucket("llmops-mb-two", lifecycle_rules=[]), False)["actions"] == []


@pytest.mark.parametrize("state", ["present", "absent"])
def test_check_mode_sends_no_write(store, replay, state):
    s3, admin = connection(replay)
    mm.ensure_bucket(s3, admin, bucket("llmops-mb-check-old"), False)
    replay.clear()
    name = "llmops-mb-check-new" if state == "present" else "llmops-mb-check-old"
    result = mm.ensure_bucket(s3, admin, bucket(name, state=state, versioning="enabled", quota=1 << 30,
                                                lifecycle_rules=RULES), True)
    assert result["changed"]
    assert replay.s3_writes() == [] and replay.admin_requests(mutating_only=True) == []
    assert s3.bucket_exists("llmops-mb-check-old") and not s3.bucket_exists("llmops-mb-check-new")


def test_object_lock_is_set_at_creation_and_cannot_change_later(store, replay):
    s3, admin = connection(replay)
    created = mm.ensure_bucket(s3, admin, bucket("llmops-mb-lock", object_lock=True), False)
    assert created["actions"] == ["create bucket with object lock"]
    check = boto3_client(store, "admin")
    assert check.get_object_lock_configuration(Bucket="llmops-mb-lock")["ObjectLockConfiguration"][
        "ObjectLockEnabled"] == "Enabled"
    assert not mm.ensure_bucket(s3, admin, bucket("llmops-mb-lock", object_lock=True), False)["changed"]
    mm.ensure_bucket(s3, admin, bucket("llmops-mb-nolock"), False)
    replay.clear()
    with pytest.raises(mm.MinioInputError, match=r"object_lock: bucket llmops-mb-nolock was created with object lock off"):
        mm.ensure_bucket(s3, admin, bucket("llmops-mb-nolock", object_lock=True), False)
    assert replay.s3_writes() == []


def test_bucket_absent_removes_it_once(store, replay):
    s3, admin = connection(replay)
    mm.ensure_bucket(s3, admin, bucket("llmops-mb-gone"), False)
    assert mm.ensure_bucket(s3, admin, bucket("llmops-mb-gone", state="absent"), False)["actions"] == ["remove bucket"]
    assert not s3.bucket_exists("llmops-mb-gone")
    assert mm.ensure_bucket(s3, admin, bucket("llmops-mb-gone", state="absent"), False)["changed"] is False


@pytest.mark.parametrize("name", ["Team_Models", "ab", "a" * 64, "-lead", "trail-", "two..dots", "dot.-dash",
                                  "192.168.1.1", "xn--punycode", "bucket-s3alias"])
def test_bad_bucket_name_fails_naming_the_rules_before_any_request(replay, name):
    s3, admin = connection(replay)
    with pytest.raises(mm.MinioInputError) as error:
        mm.ensure_bucket(s3, admin, bucket(name), False)
    assert str(error.value).startswith(f"name: {name!r} is not a valid S3 bucket name (3-63 characters")
    assert replay.forwarded == [] and replay.log == []


@pytest.mark.parametrize(("rules", "message"), [
    ([{"id": "x"}], r"lifecycle_rules\[0\]: give at least one of expiration_days"),
    ([{"expiration_days": 3}], r"lifecycle_rules\[0\]\.id: every rule needs an id"),
    ([{"id": "x", "expiration_days": 0}], r"lifecycle_rules\[0\]\.expiration_days: 0 must be a whole number"),
    ([{"id": "x", "expiration_days": 1, "status": "on"}], r"status: 'on'; accepted values: Enabled, Disabled"),
    ([{"id": "x", "expiration_days": 1}, {"id": "x", "expiration_days": 2}], r"rule ids must be unique"),
])
def test_bad_lifecycle_rule_fails_naming_it(replay, rules, message):
    s3, admin = connection(replay)
    with pytest.raises(mm.MinioInputError, match=message):
        mm.ensure_bucket(s3, admin, bucket("llmops-mb-rules", lifecycle_rules=rules), False)
    assert replay.forwarded == []


# --- quota: admin API replay (SeaweedFS holds the bucket) -------------------------------------------

def test_quota_set_changed_and_cleared_through_the_admin_api(store, replay):
    s3, admin = connection(replay)
    first = mm.ensure_bucket(s3, admin, bucket("llmops-mb-quota", quota=5 << 30), False)
    assert first["actions"] == ["create bucket", "set quota 5368709120"]
    [request] = replay.admin_requests(mutating_only=True)
    assert (request.method, request.command, request.query, request.body) == (
        "PUT", "set-bucket-quota", {"bucket": "llmops-mb-quota"}, {"quota": 5 << 30, "quotatype": "hard"})
    replay.clear()
    assert mm.ensure_bucket(s3, admin, bucket("llmops-mb-quota", quota=5 << 30), False)["actions"] == []
    assert [r.command for r in replay.log] == ["get-bucket-quota"]
    cleared = mm.ensure_bucket(s3, admin, bucket("llmops-mb-quota", quota=0), False)
    assert cleared["actions"] == ["clear quota"] and replay.quotas["llmops-mb-quota"] == 0
    assert mm.ensure_bucket(s3, admin, bucket("llmops-mb-quota", quota=0), False)["actions"] == []


# --- users -----------------------------------------------------------------------------------------

def test_user_created_encrypted_with_policies_then_unchanged(replay):
    _, admin = connection(replay)
    result = mm.ensure_user(admin, user("team-a-read", secret="team-a-secret-1", policies=["readonly"]), False)
    assert result["actions"] == ["create user", "attach readonly"]
    add, attach = replay.admin_requests(mutating_only=True)
    assert (add.method, add.command, add.query, add.body) == (
        "PUT", "add-user", {"accessKey": "team-a-read"}, {"status": "enabled", "secretKey": "team-a-secret-1"})
    assert (attach.method, attach.command, attach.body) == (
        "POST", "idp/builtin/policy/attach", {"policies": ["readonly"], "user": "team-a-read"})
    assert replay.users["team-a-read"] == {"secretKey": "team-a-secret-1", "status": "enabled", "policies": ["readonly"]}
    replay.clear()
    again = mm.ensure_user(admin, user("team-a-read", secret="team-a-secret-1", policies=["readonly"]), False)
    assert not again["changed"] and replay.admin_requests(mutating_only=True) == []
    assert "team-a-secret-1" not in repr(again)


def test_user_status_and_policies_follow_the_input_exactly(replay):
    _, admin = connection(replay)
    mm.ensure_user(admin, user("publisher", secret="publisher-secret", policies=["readwrite", "diagnostics"]), False)
    replay.clear()
    result = mm.ensure_user(admin, user("publisher", status="disabled", policies=["readwrite", "writeonly"]), False)
    assert result["actions"] == ["set status disabled", "attach writeonly", "detach diagnostics"]
    assert [(r.command, r.query, r.body) for r in replay.admin_requests(mutating_only=True)] == [
        ("set-user-status", {"accessKey": "publisher", "status": "disabled"}, None),
        ("idp/builtin/policy/attach", {}, {"policies": ["writeonly"], "user": "publisher"}),
        ("idp/builtin/policy/detach", {}, {"policies": ["diagnostics"], "user": "publisher"}),
    ]
    assert result["diff"]["before"]["policies"] == ["diagnostics", "readwrite"]
    assert replay.users["publisher"]["status"] == "disabled"
    # Policies unset: not managed; enabling again touches only the status.
    replay.clear()
    assert mm.ensure_user(admin, user("publisher"), False)["actions"] == ["set status enabled"]


def test_update_secret_always_rewrites_and_keeps_a_disabled_user_disabled(replay):
    _, admin = connection(replay)
    mm.ensure_user(admin, user("rotated", secret="first-secret-1", status="disabled"), False)
    replay.clear()
    result = mm.ensure_user(admin, user("rotated", secret="second-secret-2", status="disabled",
                                        update_secret="always"), False)
    assert result["actions"] == ["set secret", "set status disabled"]
    assert replay.users["rotated"]["secretKey"] == "second-secret-2" and replay.users["rotated"]["status"] == "disabled"
    replay.clear()
    assert mm.ensure_user(admin, user("rotated", secret="second-secret-2", status="disabled"), False)["actions"] == []


def test_user_check_mode_and_removal(replay):
    _, admin = connection(replay)
    planned = mm.ensure_user(admin, user("temp-user", secret="temp-secret-1", policies=["readonly"]), True)
    assert planned["actions"] == ["create user", "attach readonly"] and "temp-user" not in replay.users
    assert replay.admin_requests(mutating_only=True) == []
    mm.ensure_user(admin, user("temp-user", secret="temp-secret-1"), False)
    assert mm.ensure_user(admin, user("temp-user", state="absent"), True)["changed"] and "temp-user" in replay.users
    assert mm.ensure_user(admin, user("temp-user", state="absent"), False)["actions"] == ["remove user"]
    assert "temp-user" not in replay.users
    assert not mm.ensure_user(admin, user("temp-user", state="absent"), False)["changed"]


@pytest.mark.parametrize(("options", "message"), [
    ({"name": "ab", "secret": "long-enough-1"}, r"name: 'ab' must be 3-128 characters"),
    ({"name": "new-user", "secret": "short"}, r"secret: must be 8-40 characters"),
    ({"name": "new-user"}, r"secret: user new-user does not exist; a secret"),
    ({"name": "new-user", "secret": "long-enough-1", "policies": ["no-such-policy"]},
     r"policies: no-such-policy: no such policy on the server"),
])
def test_bad_user_input_fails_naming_the_option(replay, options, message):
    _, admin = connection(replay)
    with pytest.raises(mm.MinioInputError, match=message):
        mm.ensure_user(admin, user(**options), False)


def test_wrong_admin_secret_is_refused_by_signature_and_nothing_changes(replay):
    _, admin = connection(replay, secret_key="not-the-admin-secret")
    with pytest.raises(mm.MinioServerError, match="SignatureDoesNotMatch"):
        mm.ensure_user(admin, user("intruder", secret="intruder-secret"), False)
    assert replay.rejected and replay.users == {} and replay.log == []


# --- policies -------------------------------------------------------------------------------------

def test_custom_policy_created_attached_then_unchanged_despite_server_formatting(replay):
    _, admin = connection(replay)
    mm.ensure_user(admin, user("team-a-read", secret="team-a-secret-1"), False)
    replay.groups["readers"] = {"members": ["team-a-read"], "status": "enabled", "policies": []}
    replay.clear()
    result = mm.ensure_policy(admin, policy("team-a-read", policy=TEAM_A_READ, users=["team-a-read"],
                                            groups=["readers"]), False)
    assert result["actions"] == ["create policy", "attach to group readers", "attach to user team-a-read"]
    put = replay.admin_requests(mutating_only=True)[0]
    assert (put.command, put.query) == ("add-canned-policy", {"name": "team-a-read"})
    assert put.body["Statement"][0]["Action"] == ["s3:GetObject", "s3:ListBucket"]
    assert replay.groups["readers"]["policies"] == ["team-a-read"]
    assert replay.users["team-a-read"]["policies"] == ["team-a-read"]
    # The same document written with single strings and another statement order is no change.
    loose = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Resource": ["arn:aws:s3:::llmops-team-a/*", "arn:aws:s3:::llmops-team-a"],
         "Action": ["s3:ListBucket", "s3:GetObject"]}]}
    replay.clear()
    again = mm.ensure_policy(admin, policy("team-a-read", policy=loose, users=["team-a-read"],
                                           groups=["readers"]), False)
    assert not again["changed"] and replay.admin_requests(mutating_only=True) == []


def test_policy_document_change_rewrites_it_and_absent_detaches_then_removes(replay):
    _, admin = connection(replay)
    mm.ensure_user(admin, user("writer", secret="writer-secret-1"), False)
    mm.ensure_policy(admin, policy("writers", policy=TEAM_A_READ, users=["writer"]), False)
    changed = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::llmops-team-a/*"}]}
    replay.clear()
    result = mm.ensure_policy(admin, policy("writers", policy=changed, users=["writer"]), False)
    assert result["actions"] == ["update policy"]
    assert replay.policies["writers"]["Statement"][0]["Action"] == ["s3:PutObject"]
    replay.clear()
    gone = mm.ensure_policy(admin, policy("writers", state="absent", users=["writer"]), False)
    assert gone["actions"] == ["detach from user writer", "remove policy"]
    assert [r.command for r in replay.admin_requests(mutating_only=True)] == [
        "idp/builtin/policy/detach", "remove-canned-policy"]
    assert "writers" not in replay.policies and replay.users["writer"]["policies"] == []
    assert not mm.ensure_policy(admin, policy("writers", state="absent"), False)["changed"]


def test_builtin_policy_attaches_but_cannot_be_rewritten(replay):
    _, admin = connection(replay)
    mm.ensure_user(admin, user("auditor", secret="auditor-secret"), False)
    assert mm.ensure_policy(admin, policy("readonly", users=["auditor"]), False)["actions"] == ["attach to user auditor"]
    assert "add-canned-policy" not in [r.command for r in replay.log]
    with pytest.raises(mm.MinioInputError, match="name: readonly is a built-in policy"):
        mm.ensure_policy(admin, policy("readonly", policy=TEAM_A_READ), False)


@pytest.mark.parametrize(("options", "message"), [
    ({"name": "p", "policy": {"Statement": []}}, r"policy: a policy document needs a non-empty Statement"),
    ({"name": "p", "policy": "{not json"}, r"policy: not valid JSON"),
    ({"name": "p", "policy": {"Statement": [{"Effect": "Permit", "Action": "s3:*"}]}},
     r"policy\.Statement\[0\]\.Effect: accepted values: Allow, Deny"),
    ({"name": "unknown-policy"}, r"policy: unknown-policy does not exist on the server; give its document"),
    ({"name": "readonly", "users": ["nobody"]}, r"users: nobody does not exist on the server"),
    ({"name": "readonly", "groups": ["nogroup"]}, r"groups: nogroup does not exist on the server"),
])
def test_bad_policy_input_fails_naming_the_option_and_writes_nothing(replay, options, message):
    _, admin = connection(replay)
    with pytest.raises(mm.MinioInputError, match=message):
        mm.ensure_policy(admin, policy(**options), False)
    assert replay.admin_requests(mutating_only=True) == []


def test_policy_check_mode_writes_nothing(replay):
    _, admin = connection(replay)
    mm.ensure_user(admin, user("planner", secret="planner-secret"), False)
    replay.clear()
    result = mm.ensure_policy(admin, policy("planned", policy=TEAM_A_READ, users=["planner"]), True)
    assert result["actions"] == ["create policy", "attach to user planner"]
    assert replay.admin_requests(mutating_only=True) == [] and "planned" not in replay.policies


# --- the modules as Ansible runs them ------------------------------------------------------------

def test_modules_through_ansible_check_mode_then_apply_then_unchanged(store, replay, tmp_path):
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    connection_vars = {"endpoint_url": replay.endpoint_url, "access_key": replay.access_key,
                       "secret_key": replay.secret_key}
    tasks = [
        {"name": "bucket", "llmops.datacenter.minio_bucket": {
            "name": "llmops-mb-ansible", "versioning": "enabled", "quota": 1 << 30,
            "lifecycle_rules": [{"id": "abort-uploads", "abort_incomplete_multipart_days": 2}], **connection_vars}},
        {"name": "user", "llmops.datacenter.minio_user": {
            "name": "ansible-reader", "secret": "ansible-reader-secret", **connection_vars}},
        {"name": "policy", "llmops.datacenter.minio_policy": {
            "name": "ansible-read", "policy": TEAM_A_READ, "users": ["ansible-reader"], **connection_vars}},
    ]
    playbook = tmp_path / "minio.yml"
    playbook.write_text(json.dumps([{"hosts": "localhost", "gather_facts": False, "connection": "local",
                                     "vars": {"ansible_python_interpreter": sys.executable}, "tasks": tasks}]))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(root / "collections"), ANSIBLE_HOME=str(root / ".ansible"),
               ANSIBLE_CONFIG=str(root / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_STDOUT_CALLBACK="json")

    def run(*args):
        result = subprocess.run([str(root / ".venv" / "bin" / "ansible-playbook"), "-i", "localhost,", str(playbook),
                                 *args], capture_output=True, text=True, env=env, check=False, timeout=300)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        assert replay.secret_key not in result.stdout and "ansible-reader-secret" not in result.stdout
        report = json.JSONDecoder().raw_decode(result.stdout)[0]  # the run report callback prints a line after
        return {t["task"]["name"]: t["hosts"]["localhost"] for t in report["plays"][0]["tasks"]}

    planned = run("--check", "--diff")
    assert all(r["changed"] for r in planned.values())
    assert planned["bucket"]["actions"] == ["create bucket", "set versioning enabled", "set lifecycle rules",
                                           "set quota 1073741824"]
    assert not s3_bucket_exists(replay, "llmops-mb-ansible") and "ansible-reader" not in replay.users
    assert replay.admin_requests(mutating_only=True) == [] and replay.s3_writes() == []

    applied = run("--diff")
    assert all(r["changed"] for r in applied.values())
    assert applied["policy"]["policy"]["users"] == ["ansible-reader"]
    assert replay.users["ansible-reader"]["policies"] == ["ansible-read"]
    replay.clear()
    again = run()
    assert not any(r["changed"] for r in again.values())
    assert replay.admin_requests(mutating_only=True) == [] and replay.s3_writes() == []


def s3_bucket_exists(replay, name):
    s3, _ = connection(replay)
    return s3.bucket_exists(name)
