"""Recorded/documented MinIO admin API responses, served on loopback. Not a MinIO server.

No MinIO server binary can be obtained on the machines this project is built on, so the admin-API
paths of the minio_* modules are tested at the HTTP boundary against this replay: it answers
/minio/admin/v3/... with the response shapes MinIO documents (madmin-go's UserInfo, GroupDesc,
BucketQuota, PolicyAssociationResp; MinIO's admin error codes), keeps just enough state for a
second run to see the first run's effect, and

- refuses any request whose AWS Signature V4 does not verify against the admin credentials
  (403 SignatureDoesNotMatch, as MinIO answers) or whose x-amz-content-sha256 is not the body's;
- decrypts the bodies the SDK encrypts with the caller's secret key (add-user, policy
  attach/detach: argon2id + AES-GCM/ChaCha20 in MinIO's sio format) and encrypts the responses
  MinIO encrypts, with the SDK's own helpers, so a wrong key or format fails the test;
- records every request (method, command, query, decoded body) for the tests to assert on.

Every other path (the S3 API) is forwarded unchanged, Host header included so signatures still
verify, to a real S3 store (the tests' SeaweedFS) when one is given.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import io
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from minio.crypto import decrypt, encrypt

PREFIX = "/minio/admin/v3/"
BUILTIN_POLICIES = {
    # MinIO ships these; the documents are abbreviated but shaped like the server's answers.
    "readonly": {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:GetBucketLocation", "s3:GetObject"], "Resource": ["arn:aws:s3:::*"]}]},
    "readwrite": {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:*"], "Resource": ["arn:aws:s3:::*"]}]},
    "writeonly": {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:PutObject"], "Resource": ["arn:aws:s3:::*"]}]},
    "diagnostics": {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["admin:Profiling", "admin:ServerInfo"], "Resource": ["arn:minio:admin:::*"]}]},
    "consoleAdmin": {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["admin:*"]}, {"Effect": "Allow", "Action": ["s3:*"], "Resource": ["arn:aws:s3:::*"]}]},
}
# MinIO's admin API errors (cmd/admin-handlers*.go, toAdminAPIErr): status, code, message.
ERRORS = {
    "no_user": (404, "XMinioAdminNoSuchUser", "The specified user does not exist."),
    "no_group": (404, "XMinioAdminNoSuchGroup", "The specified group does not exist."),
    "no_policy": (404, "XMinioAdminNoSuchPolicy", "The canned policy does not exist."),
    "no_quota": (404, "XMinioAdminNoSuchQuotaConfiguration", "The quota configuration does not exist"),
    "already": (400, "XMinioAdminPolicyChangeAlreadyApplied", "The specified policy change is already in effect."),
    "bad_request": (400, "XMinioAdminInvalidArgument", "Invalid arguments specified."),
    "signature": (403, "SignatureDoesNotMatch",
                  "The request signature we calculated does not match the signature you provided."),
    "access": (403, "AccessDenied", "Access Denied."),
}
MUTATING = {"add-user", "set-user-status", "remove-user", "add-canned-policy", "remove-canned-policy",
            "idp/builtin/policy/attach", "idp/builtin/policy/detach", "set-bucket-quota"}
UPDATED_AT = "2026-01-01T00:00:00Z"


def _normal_policy(document: dict) -> dict:
    """What MinIO stores and answers: single Action/Resource values become lists."""
    statements = []
    for statement in document.get("Statement", []):
        normal = dict(statement)
        for key in ("Action", "NotAction", "Resource", "NotResource"):
            if isinstance(normal.get(key), str):
                normal[key] = [normal[key]]
        statements.append(normal)
    return {"Version": document.get("Version", "2012-10-17"), "Statement": statements}


@dataclass
class Recorded:
    method: str
    command: str
    query: dict
    body: object = None

    @property
    def mutating(self) -> bool:
        return self.command in MUTATING


@dataclass
class AdminApiReplay:
    access_key: str
    secret_key: str = field(repr=False)
    s3_upstream: str = ""
    region: str = "us-east-1"
    users: dict = field(default_factory=dict)      # access key -> {secretKey, status, policies}
    groups: dict = field(default_factory=dict)     # name -> {members, status, policies}
    policies: dict = field(default_factory=lambda: {k: _normal_policy(v) for k, v in BUILTIN_POLICIES.items()})
    quotas: dict = field(default_factory=dict)     # bucket -> bytes
    log: list = field(default_factory=list)
    rejected: list = field(default_factory=list)
    forwarded: list = field(default_factory=list)  # (method, path) of S3 requests passed to the store
    server: ThreadingHTTPServer | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def admin_requests(self, mutating_only: bool = False) -> list[Recorded]:
        return [r for r in self.log if r.mutating or not mutating_only]

    def s3_writes(self) -> list[tuple[str, str]]:
        return [(m, p) for m, p in self.forwarded if m in ("PUT", "POST", "DELETE")]

    def clear(self) -> None:
        self.log.clear()
        self.forwarded.clear()

    def start(self) -> AdminApiReplay:
        replay = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _body(self) -> bytes:
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def _handle(self):
                body = self._body()
                url = urlsplit(self.path)
                if not url.path.startswith(PREFIX):
                    return self._forward(body)
                problem = replay.check_signature(self.command, url.path, url.query, self.headers, body)
                if problem:
                    replay.rejected.append((self.command, url.path, problem))
                    return self._error("signature")
                status, payload, encrypted = replay.dispatch(self.command, url.path[len(PREFIX):],
                                                             dict(parse_qsl(url.query, keep_blank_values=True)), body)
                if isinstance(payload, str) and payload in ERRORS:
                    return self._error(payload)
                data = b"" if payload is None else (payload if isinstance(payload, bytes) else json.dumps(payload).encode())
                if encrypted and data:
                    data = encrypt(data, replay.secret_key)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _error(self, name):
                status, code, message = ERRORS[name]
                data = json.dumps({"Code": code, "Message": message, "Resource": urlsplit(self.path).path,
                                   "RequestId": "1800000000000000", "HostId": ""}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _forward(self, body):
                if not replay.s3_upstream:
                    return self._error("access")
                replay.forwarded.append((self.command, self.path))
                upstream = urlsplit(replay.s3_upstream)
                conn = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=60)
                conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                for key, value in self.headers.items():
                    conn.putheader(key, value)
                conn.endheaders(body or None)
                response = conn.getresponse()
                data = response.read()
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in ("content-length", "transfer-encoding", "connection", "server", "date"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                conn.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()

    # --- AWS Signature V4, computed independently of the SDK from AWS's specification -----------
    def check_signature(self, method, path, query, headers, body) -> str:
        auth = headers.get("Authorization", "")
        match = re.match(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/s3/aws4_request, "
                         r"SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$", auth)
        if not match:
            return "no SigV4 Authorization header"
        access_key, day, region, signed, signature = match.groups()
        if access_key != self.access_key:
            return f"unknown access key {access_key}"
        if region != self.region:
            return f"region {region}"
        payload_hash = headers.get("x-amz-content-sha256", "")
        if payload_hash != hashlib.sha256(body).hexdigest():
            return "x-amz-content-sha256 is not the body's hash"
        pairs = sorted(p.split("=", 1) if "=" in p else [p, ""] for p in query.split("&") if p)
        canonical_query = "&".join(f"{k}={v}" for k, v in pairs)
        names = signed.split(";")
        canonical_headers = "".join(f"{n}:{' '.join((headers.get(n) or '').split())}\n" for n in names)
        canonical = "\n".join([method, path, canonical_query, canonical_headers, signed, payload_hash])
        amz_date = headers.get("x-amz-date", "")
        scope = f"{day}/{region}/s3/aws4_request"
        to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
        key = ("AWS4" + self.secret_key).encode()
        for part in (day, region, "s3", "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature):
            return "signature does not verify"
        if "host" not in names or "x-amz-date" not in names:
            return "host and x-amz-date must be signed"
        return ""

    def _decrypt(self, body: bytes) -> dict:
        class _Response(io.BytesIO):
            def release_conn(self):
                pass
        return json.loads(decrypt(_Response(body), self.secret_key))

    # --- the admin API ------------------------------------------------------------------------
    def dispatch(self, method, command, query, body):
        """(status, payload or error name, encrypt response?)"""
        decoded = None
        if command in ("add-user", "idp/builtin/policy/attach", "idp/builtin/policy/detach") and body:
            try:
                decoded = self._decrypt(body)
            except Exception:
                self.rejected.append((method, command, "body does not decrypt with the secret key"))
                return 400, "bad_request", False
        elif body:
            decoded = json.loads(body)
        self.log.append(Recorded(method, command, query, decoded))
        route = (method, command)
        if route == ("GET", "user-info"):
            user = self.users.get(query.get("accessKey"))
            if user is None:
                return 404, "no_user", False
            member_of = sorted(g for g, d in self.groups.items() if query["accessKey"] in d["members"])
            # madmin.UserInfo: the secret is never returned.
            return 200, {"policyName": ",".join(user["policies"]), "status": user["status"],
                         "memberOf": member_of, "updatedAt": UPDATED_AT}, False
        if route == ("PUT", "add-user"):
            if not isinstance(decoded, dict) or "secretKey" not in decoded or "accessKey" not in query:
                return 400, "bad_request", False
            old = self.users.get(query["accessKey"], {"policies": []})
            self.users[query["accessKey"]] = {"secretKey": decoded["secretKey"],
                                              "status": decoded.get("status", "enabled"), "policies": old["policies"]}
            return 200, None, False
        if route == ("PUT", "set-user-status"):
            user = self.users.get(query.get("accessKey"))
            if user is None:
                return 404, "no_user", False
            if query.get("status") not in ("enabled", "disabled"):
                return 400, "bad_request", False
            user["status"] = query["status"]
            return 200, None, False
        if route == ("DELETE", "remove-user"):
            if self.users.pop(query.get("accessKey"), None) is None:
                return 404, "no_user", False
            return 200, None, False
        if route == ("GET", "group"):
            group = self.groups.get(query.get("group"))
            if group is None:
                return 404, "no_group", False
            # madmin.GroupDesc
            return 200, {"name": query["group"], "status": group["status"], "members": group["members"],
                         "policy": ",".join(group["policies"]), "updatedAt": UPDATED_AT}, False
        if route == ("PUT", "add-canned-policy"):
            if not isinstance(decoded, dict) or not decoded.get("Statement") or not query.get("name"):
                return 400, "bad_request", False
            self.policies[query["name"]] = _normal_policy(decoded)
            return 200, None, False
        if route == ("GET", "info-canned-policy"):
            policy = self.policies.get(query.get("name"))
            if policy is None:
                return 404, "no_policy", False
            return 200, policy, False   # without v=2 MinIO answers the bare document
        if route == ("DELETE", "remove-canned-policy"):
            if self.policies.pop(query.get("name"), None) is None:
                return 404, "no_policy", False
            return 200, None, False
        if route in (("POST", "idp/builtin/policy/attach"), ("POST", "idp/builtin/policy/detach")):
            return self._attach_detach(command.endswith("attach"), decoded)
        if route == ("GET", "get-bucket-quota"):
            if query.get("bucket") not in self.quotas:
                return 404, "no_quota", False
            size = self.quotas[query["bucket"]]
            return 200, {"quota": size, "size": size, "quotatype": "hard"}, False
        if route == ("PUT", "set-bucket-quota"):
            if not isinstance(decoded, dict) or decoded.get("quotatype") != "hard" or not query.get("bucket"):
                return 400, "bad_request", False
            self.quotas[query["bucket"]] = int(decoded.get("size") or decoded.get("quota") or 0)
            return 200, None, False
        return 400, "bad_request", False

    def _attach_detach(self, attach, decoded):
        if not isinstance(decoded, dict) or not decoded.get("policies") or not (decoded.get("user") or decoded.get("group")):
            return 400, "bad_request", False
        if decoded.get("user"):
            entity = self.users.get(decoded["user"])
            missing = "no_user"
        else:
            entity = self.groups.get(decoded["group"])
            missing = "no_group"
        if entity is None:
            return 404, missing, False
        for name in decoded["policies"]:
            if name not in self.policies:
                return 404, "no_policy", False
        current = set(entity["policies"])
        wanted = set(decoded["policies"])
        changed = wanted - current if attach else wanted & current
        if not changed:
            return 400, "already", False
        entity["policies"] = sorted(current | wanted if attach else current - wanted)
        key = "policiesAttached" if attach else "policiesDetached"
        return 200, {"updatedAt": UPDATED_AT, key: sorted(changed)}, True
