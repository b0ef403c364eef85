# Copyright: llmops maintainers
# Apache License 2.0 (see galaxy.yml)
"""Buckets, users and policies on a MinIO deployment, through the `minio` Python SDK.

Bucket operations use the S3 API (`minio.Minio`); quotas, users and policies use MinIO's admin
API (`minio.MinioAdmin`, /minio/admin/v3/...). Every function reads the current state first,
compares it with the desired one and writes only what differs (nothing in check mode). The
contract with the modules is narrow: params in, a result dict out, MinioInputError (naming
the option and the accepted values) or MinioServerError on failure.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import re
from urllib.parse import urlsplit

from ansible.module_utils.basic import missing_required_lib

try:
    import certifi
    import urllib3
    from minio import Minio, MinioAdmin
    from minio.commonconfig import DISABLED, ENABLED, Filter
    from minio.credentials import StaticProvider
    from minio.error import MinioAdminException, S3Error
    from minio.lifecycleconfig import (
        AbortIncompleteMultipartUpload,
        Expiration,
        LifecycleConfig,
        NoncurrentVersionExpiration,
        Rule,
    )
    from minio.versioningconfig import SUSPENDED, VersioningConfig

    HAS_MINIO = True
    MINIO_IMPORT_ERROR = None
except ImportError as error:  # pragma: no cover - exercised by missing_required_lib
    HAS_MINIO = False
    MINIO_IMPORT_ERROR = error
    MinioAdminException = S3Error = Exception

CONNECTION_OPTIONS = {
    "endpoint_url": {"type": "str", "required": True},
    "access_key": {"type": "str", "required": True, "no_log": True},
    "secret_key": {"type": "str", "required": True, "no_log": True},
    "region": {"type": "str", "default": "us-east-1"},
    "ca_cert": {"type": "path", "aliases": ["ca_file"]},
    "validate_certs": {"type": "bool", "default": True},
    "timeout": {"type": "float", "default": 60},
}

# MinIO's built-in policies: they exist on every deployment and cannot be rewritten.
BUILTIN_POLICIES = ("consoleAdmin", "diagnostics", "readonly", "readwrite", "writeonly")

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
BUCKET_RULES = ("3-63 characters of lowercase letters, digits, '.' and '-', starting and ending with a letter or "
                "digit, no '..', '.-' or '-.', not an IP address, not starting with 'xn--' nor ending with '-s3alias'")
_NAME = re.compile(r"^[A-Za-z0-9_.@=,+-]{1,128}$")


class MinioInputError(ValueError):
    """Bad module input; the message names the option and what is accepted."""


class MinioServerError(RuntimeError):
    """The server refused or failed a request."""


def check_bucket_name(name, option="name"):
    bad = (not _BUCKET.match(name or "") or ".." in name or ".-" in name or "-." in name
           or name.startswith("xn--") or name.endswith("-s3alias"))
    if not bad:
        try:
            ipaddress.IPv4Address(name)
            bad = True
        except ValueError:
            pass
    if bad:
        raise MinioInputError(f"{option}: {name!r} is not a valid S3 bucket name ({BUCKET_RULES})")


def _check_name(value, option, what):
    if not _NAME.match(value or ""):
        raise MinioInputError(f"{option}: {value!r} is not a valid {what} (1-128 letters, digits and _.@=,+-)")


def connect(params):
    """The S3 and admin clients for the module's connection options."""
    url = urlsplit(params["endpoint_url"] or "")
    if url.scheme not in ("http", "https") or not url.netloc or url.path not in ("", "/"):
        raise MinioInputError(f"endpoint_url: {params['endpoint_url']!r} must be http(s)://host:port with no path")
    timeout = params.get("timeout") or 60
    secure = url.scheme == "https"
    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=timeout, read=timeout),
        cert_reqs="CERT_REQUIRED" if params.get("validate_certs", True) else "CERT_NONE",
        ca_certs=params.get("ca_cert") or certifi.where(),
        retries=urllib3.Retry(total=3, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]),
    )
    s3 = Minio(url.netloc, access_key=params["access_key"], secret_key=params["secret_key"], secure=secure,
               region=params.get("region") or "us-east-1", http_client=http)
    admin = MinioAdmin(endpoint=url.netloc, credentials=StaticProvider(params["access_key"], params["secret_key"]),
                       region=params.get("region") or "us-east-1", secure=secure, http_client=http)
    return s3, admin


def _admin_error(error):
    """(http status, MinIO error code) of an admin API failure."""
    code = ""
    with contextlib.suppress(ValueError, AttributeError):
        code = json.loads(error._body).get("Code", "")
    return str(getattr(error, "_code", "")), code


def _admin_json(call, *args, missing=(), **kwargs):
    """Call an admin API method and parse its JSON; None when the error code is in ``missing``."""
    try:
        text = call(*args, **kwargs)
    except MinioAdminException as error:
        if _admin_error(error)[1] in missing:
            return None
        raise MinioServerError(str(error)) from error
    return json.loads(text) if text else {}


def _admin_call(call, *args, **kwargs):
    try:
        return call(*args, **kwargs)
    except MinioAdminException as error:
        raise MinioServerError(str(error)) from error


def _s3_call(call, *args, **kwargs):
    try:
        return call(*args, **kwargs)
    except S3Error as error:
        raise MinioServerError(f"{error.code}: {error.message} ({call.__name__})") from error


def _split(text):
    return sorted(p for p in (text or "").split(",") if p)


# --- buckets -----------------------------------------------------------------------------------

_RULE_KEYS = {"id", "prefix", "status", "expiration_days", "noncurrent_expiration_days",
              "abort_incomplete_multipart_days"}
_RULE_ACTIONS = ("expiration_days", "noncurrent_expiration_days", "abort_incomplete_multipart_days")


def normalize_rules(rules, option="lifecycle_rules"):
    """The lifecycle rules as plain dicts sorted by id, every key present; input errors name the rule."""
    result = []
    for index, rule in enumerate(rules):
        where = f"{option}[{index}]"
        if not isinstance(rule, dict):
            raise MinioInputError(f"{where}: each rule is a mapping with keys {sorted(_RULE_KEYS)}")
        unknown = sorted(set(rule) - _RULE_KEYS)
        if unknown:
            raise MinioInputError(f"{where}: unknown keys {unknown}; accepted keys: {sorted(_RULE_KEYS)}")
        if not rule.get("id"):
            raise MinioInputError(f"{where}.id: every rule needs an id (it is how rules are compared)")
        status = rule.get("status", "Enabled")
        if status not in ("Enabled", "Disabled"):
            raise MinioInputError(f"{where}.status: {status!r}; accepted values: Enabled, Disabled")
        normal = {"id": str(rule["id"]), "prefix": rule.get("prefix") or "", "status": status}
        for key in _RULE_ACTIONS:
            value = rule.get(key)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise MinioInputError(f"{where}.{key}: {value!r} must be a whole number of days, at least 1")
            normal[key] = value
        if all(normal[key] is None for key in _RULE_ACTIONS):
            raise MinioInputError(f"{where}: give at least one of {', '.join(_RULE_ACTIONS)}")
        result.append(normal)
    ids = [r["id"] for r in result]
    if len(set(ids)) != len(ids):
        raise MinioInputError(f"{option}: rule ids must be unique, got {ids}")
    return sorted(result, key=lambda r: r["id"])


def _rules_from_config(config):
    rules = []
    for rule in (config.rules if config else []):
        prefix = ""
        if rule.rule_filter is not None and rule.rule_filter.prefix is not None:
            prefix = rule.rule_filter.prefix
        expiration = rule.expiration.days if rule.expiration else None
        noncurrent = rule.noncurrent_version_expiration.noncurrent_days if rule.noncurrent_version_expiration else None
        abort = (rule.abort_incomplete_multipart_upload.days_after_initiation
                 if rule.abort_incomplete_multipart_upload else None)
        rules.append({"id": rule.rule_id or "", "prefix": prefix, "status": rule.status,
                      "expiration_days": expiration, "noncurrent_expiration_days": noncurrent,
                      "abort_incomplete_multipart_days": abort})
    return sorted(rules, key=lambda r: r["id"])


def _config_from_rules(rules):
    return LifecycleConfig([
        Rule(
            ENABLED if r["status"] == "Enabled" else DISABLED,
            rule_filter=Filter(prefix=r["prefix"]),
            rule_id=r["id"],
            expiration=Expiration(days=r["expiration_days"]) if r["expiration_days"] else None,
            noncurrent_version_expiration=(NoncurrentVersionExpiration(noncurrent_days=r["noncurrent_expiration_days"])
                                           if r["noncurrent_expiration_days"] else None),
            abort_incomplete_multipart_upload=(
                AbortIncompleteMultipartUpload(days_after_initiation=r["abort_incomplete_multipart_days"])
                if r["abort_incomplete_multipart_days"] else None),
        )
        for r in rules
    ])


def _bucket_state(s3, admin, name, want):
    if not _s3_call(s3.bucket_exists, name):
        return None
    state = {"name": name}
    if want["versioning"] is not None:
        state["versioning"] = _s3_call(s3.get_bucket_versioning, name).status_string.lower()
    if want["object_lock"] is not None:
        try:
            s3.get_object_lock_config(name)
            state["object_lock"] = True
        except S3Error as error:
            if error.code != "ObjectLockConfigurationNotFoundError":
                raise MinioServerError(f"{error.code}: {error.message} (get_object_lock_config)") from error
            state["object_lock"] = False
    if want["lifecycle_rules"] is not None:
        state["lifecycle_rules"] = _rules_from_config(_s3_call(s3.get_bucket_lifecycle, name))
    if want["quota"] is not None:
        quota = _admin_json(admin.bucket_quota_get, name, missing=("XMinioAdminNoSuchQuotaConfiguration",)) or {}
        state["quota"] = int(quota.get("size") or quota.get("quota") or 0)
    return state


def ensure_bucket(s3, admin, params, check_mode):
    """Make the bucket match ``params``; options left unset (None) are not managed."""
    name = params["name"]
    check_bucket_name(name)
    want = {"versioning": params.get("versioning"), "object_lock": params.get("object_lock"),
            "quota": params.get("quota"),
            "lifecycle_rules": None if params.get("lifecycle_rules") is None else normalize_rules(params["lifecycle_rules"])}
    if want["quota"] is not None and want["quota"] < 0:
        raise MinioInputError(f"quota: {want['quota']} must be 0 (no quota) or a size in bytes")
    if want["object_lock"] and want["versioning"] == "suspended":
        raise MinioInputError("versioning: a bucket with object_lock keeps versioning enabled; accepted: enabled or unset")
    before = _bucket_state(s3, admin, name, want)
    actions = []
    if params["state"] == "absent":
        if before is not None:
            actions.append("remove bucket")
            if not check_mode:
                _s3_call(s3.remove_bucket, name)
        return {"changed": bool(actions), "actions": actions, "diff": {"before": before or {}, "after": {}}}

    after = dict(before or {"name": name})
    if before is None:
        actions.append("create bucket" + (" with object lock" if want["object_lock"] else ""))
        if not check_mode:
            _s3_call(s3.make_bucket, name, object_lock=bool(want["object_lock"]))
        current = {"versioning": "enabled" if want["object_lock"] else "off", "object_lock": bool(want["object_lock"]),
                   "lifecycle_rules": [], "quota": 0}
        after.update({k: current[k] for k, v in want.items() if v is not None})
        before_known = current
    else:
        before_known = before
        if want["object_lock"] is not None and before["object_lock"] != want["object_lock"]:
            raise MinioInputError(f"object_lock: bucket {name} was created with object lock "
                                  f"{'on' if before['object_lock'] else 'off'}; S3 sets it only at creation "
                                  f"(accepted: {str(before['object_lock']).lower()} or unset)")
    if want["versioning"] is not None and before_known["versioning"] != want["versioning"]:
        actions.append(f"set versioning {want['versioning']}")
        if not check_mode:
            _s3_call(s3.set_bucket_versioning, name,
                     VersioningConfig(ENABLED if want["versioning"] == "enabled" else SUSPENDED))
        after["versioning"] = want["versioning"]
    if want["lifecycle_rules"] is not None and before_known["lifecycle_rules"] != want["lifecycle_rules"]:
        actions.append("set lifecycle rules" if want["lifecycle_rules"] else "remove lifecycle rules")
        if not check_mode:
            if want["lifecycle_rules"]:
                _s3_call(s3.set_bucket_lifecycle, name, _config_from_rules(want["lifecycle_rules"]))
            else:
                _s3_call(s3.delete_bucket_lifecycle, name)
        after["lifecycle_rules"] = want["lifecycle_rules"]
    if want["quota"] is not None and before_known["quota"] != want["quota"]:
        actions.append(f"set quota {want['quota']}" if want["quota"] else "clear quota")
        if not check_mode:
            _admin_call(admin.bucket_quota_set, name, want["quota"])
        after["quota"] = want["quota"]
    return {"changed": bool(actions), "actions": actions, "diff": {"before": before or {}, "after": after}}


# --- users -------------------------------------------------------------------------------------

def _user_state(admin, access_key):
    info = _admin_json(admin.user_info, access_key, missing=("XMinioAdminNoSuchUser",))
    if info is None:
        return None
    return {"access_key": access_key, "status": info.get("status", "enabled"),
            "policies": _split(info.get("policyName"))}


def ensure_user(admin, params, check_mode):
    access_key = params["name"]
    if not access_key or len(access_key) < 3 or len(access_key) > 128:
        raise MinioInputError(f"name: {access_key!r} must be 3-128 characters (MinIO's access key length rules)")
    before = _user_state(admin, access_key)
    actions = []
    if params["state"] == "absent":
        if before is not None:
            actions.append("remove user")
            if not check_mode:
                _admin_call(admin.user_remove, access_key)
        return {"changed": bool(actions), "actions": actions, "diff": {"before": before or {}, "after": {}}}

    secret = params.get("secret")
    if secret is not None and not (8 <= len(secret) <= 40):
        raise MinioInputError("secret: must be 8-40 characters (MinIO's secret key length rules)")
    policies = None if params.get("policies") is None else sorted(set(params["policies"]))
    for policy in policies or []:
        _check_name(policy, "policies", "policy name")
    after = dict(before or {"access_key": access_key, "status": "enabled", "policies": []})
    current = dict(after)
    if before is None:
        if secret is None:
            raise MinioInputError(f"secret: user {access_key} does not exist; a secret (8-40 characters) creates it")
        actions.append("create user")
        if not check_mode:
            _admin_call(admin.user_add, access_key, secret)
    elif secret is not None and params.get("update_secret") == "always":
        # The admin API sets secret and status together (status enabled); the status step below re-applies it.
        actions.append("set secret")
        current["status"] = "enabled"
        if not check_mode:
            _admin_call(admin.user_add, access_key, secret)
    if current["status"] != params["status"]:
        actions.append(f"set status {params['status']}")
        if not check_mode:
            _admin_call(admin.user_enable if params["status"] == "enabled" else admin.user_disable, access_key)
    after["status"] = params["status"]
    if policies is not None and policies != current["policies"]:
        attach = sorted(set(policies) - set(current["policies"]))
        detach = sorted(set(current["policies"]) - set(policies))
        if attach:
            actions.append(f"attach {', '.join(attach)}")
            if not check_mode:
                _attach(admin.attach_policy, attach, "policies", user=access_key)
        if detach:
            actions.append(f"detach {', '.join(detach)}")
            if not check_mode:
                _admin_call(admin.detach_policy, detach, user=access_key)
        after["policies"] = policies
    return {"changed": bool(actions), "actions": actions, "diff": {"before": before or {}, "after": after}}


def _attach(call, policies, option, **entity):
    try:
        return call(policies, **entity)
    except MinioAdminException as error:
        code = _admin_error(error)[1]
        if code == "XMinioAdminNoSuchPolicy":
            raise MinioInputError(f"{option}: {', '.join(policies)}: no such policy on the server "
                                  f"(create it with minio_policy first)") from error
        raise MinioServerError(str(error)) from error


# --- policies ----------------------------------------------------------------------------------

def normalize_policy(document, option="policy"):
    """A policy document in a comparable form: single values as sorted lists, statements sorted."""
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except ValueError as error:
            raise MinioInputError(f"{option}: not valid JSON ({error})") from error
    if not isinstance(document, dict) or not isinstance(document.get("Statement"), list) or not document["Statement"]:
        raise MinioInputError(f"{option}: a policy document needs a non-empty Statement list "
                              f"(Version 2012-10-17, each statement with Effect, Action and Resource)")
    statements = []
    for index, statement in enumerate(document["Statement"]):
        if not isinstance(statement, dict) or statement.get("Effect") not in ("Allow", "Deny"):
            raise MinioInputError(f"{option}.Statement[{index}].Effect: accepted values: Allow, Deny")
        if not (statement.get("Action") or statement.get("NotAction")):
            raise MinioInputError(f"{option}.Statement[{index}]: give Action (e.g. s3:GetObject) or NotAction")
        normal = {}
        for key, value in statement.items():
            if key in ("Action", "NotAction", "Resource", "NotResource", "Principal"):
                value = sorted([value] if isinstance(value, str) else list(value)) \
                    if not isinstance(value, dict) else value
            normal[key] = value
        statements.append(normal)
    statements.sort(key=lambda s: json.dumps(s, sort_keys=True))
    return {"Version": document.get("Version", "2012-10-17"), "Statement": statements}


def _group_policies(admin, group):
    info = _admin_json(admin.group_info, group, missing=("XMinioAdminNoSuchGroup",))
    if info is None:
        raise MinioInputError(f"groups: {group} does not exist on the server")
    return _split(info.get("policy"))


def ensure_policy(admin, params, check_mode):
    name = params["name"]
    _check_name(name, "name", "policy name")
    builtin = name in BUILTIN_POLICIES
    document = None if params.get("policy") is None else normalize_policy(params["policy"])
    if builtin and (document is not None or params["state"] == "absent"):
        raise MinioInputError(f"name: {name} is a built-in policy ({', '.join(BUILTIN_POLICIES)}); it can be "
                              f"attached, not rewritten or removed; choose another name for a custom document")
    raw = _admin_json(admin.policy_info, name, missing=("XMinioAdminNoSuchPolicy",))
    current = None
    if raw is not None:
        # Newer servers wrap the document ({PolicyName, Policy}); older ones answer the document itself.
        current = normalize_policy(raw.get("Policy", raw) if isinstance(raw, dict) else raw)
    users, groups = sorted(set(params.get("users") or [])), sorted(set(params.get("groups") or []))
    for user in users:
        _check_name(user, "users", "user name")
    for group in groups:
        _check_name(group, "groups", "group name")
    before = {"name": name, "policy": current} if current is not None else {}
    actions = []
    attached = {}
    # In check mode an earlier task of the same run may only have planned the user or group.
    for user in users:
        state = _user_state(admin, user)
        if state is None and not check_mode:
            raise MinioInputError(f"users: {user} does not exist on the server (create it with minio_user first)")
        attached[("user", user)] = state is not None and name in state["policies"]
    for group in groups:
        try:
            attached[("group", group)] = name in _group_policies(admin, group)
        except MinioInputError:
            if not check_mode:
                raise
            attached[("group", group)] = False
    before.update({"users": sorted(u for (k, u), on in attached.items() if k == "user" and on),
                   "groups": sorted(g for (k, g), on in attached.items() if k == "group" and on)} if attached else {})

    if params["state"] == "absent":
        for (kind, entity), on in sorted(attached.items()):
            if on:
                actions.append(f"detach from {kind} {entity}")
                if not check_mode:
                    _admin_call(admin.detach_policy, [name], **{kind: entity})
        if current is not None:
            actions.append("remove policy")
            if not check_mode:
                _admin_call(admin.policy_remove, name)
        return {"changed": bool(actions), "actions": actions, "diff": {"before": before, "after": {}}}

    if current is None and document is None:
        raise MinioInputError(f"policy: {name} does not exist on the server; give its document to create it")
    if document is not None and document != current:
        actions.append("create policy" if current is None else "update policy")
        if not check_mode:
            _admin_call(admin.policy_add, name, policy=document)
    for (kind, entity), on in sorted(attached.items()):
        if not on:
            actions.append(f"attach to {kind} {entity}")
            if not check_mode:
                _attach(admin.attach_policy, [name], "name", **{kind: entity})
    after = {"name": name, "policy": document or current}
    if attached:
        after.update({"users": users, "groups": groups})
    return {"changed": bool(actions), "actions": actions, "diff": {"before": before, "after": after}}


def run_module(module, ensure, result_key):
    """The body every minio_* module shares: connect, reconcile with ensure(s3, admin, params,
    check_mode), and report the object under result_key, or fail naming the problem."""
    if not HAS_MINIO:
        module.fail_json(msg=missing_required_lib("minio"), exception=str(MINIO_IMPORT_ERROR))
    try:
        s3, admin = connect(module.params)
        result = ensure(s3, admin, module.params, module.check_mode)
    except (MinioInputError, MinioServerError) as error:
        module.fail_json(msg=str(error))
    module.exit_json(changed=result["changed"], actions=result["actions"], diff=result["diff"],
                     **{result_key: result["diff"]["after"]})
