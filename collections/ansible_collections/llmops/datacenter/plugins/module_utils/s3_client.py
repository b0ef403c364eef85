# Copyright: llmops maintainers
# Apache-2.0 (see galaxy.yml)
"""A minimal S3 reader for target hosts: signed (AWS Signature V4) GET and HEAD, path-style URLs.

Runs on GPU nodes with the Python standard library only, so a node needs no boto3 to fetch a
model. Works against any S3 store the collection installs (SeaweedFS, MinIO) or a cloud bucket.
One S3Client per thread: it keeps one HTTP(S) connection alive between requests.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import http.client
import ssl
import urllib.parse
import xml.etree.ElementTree as ElementTree

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


class S3Error(Exception):
    """A request the store refused or could not answer; ``code`` is S3's error code or a local one."""

    def __init__(self, message: str, status: int | None = None, code: str = ""):
        super().__init__(message)
        self.status = status
        self.code = code


def _sign(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


def quote_key(key: str) -> str:
    """URI-encode an object key as SigV4 wants it: every byte but unreserved ones and '/'."""
    return urllib.parse.quote(key, safe="/~")


def signature_v4_headers(method, host, path, query, access_key, secret_key, region, now=None, extra=None):
    """The headers that authenticate one request with an empty body (GET/HEAD) under SigV4."""
    now = now or datetime.datetime.now(datetime.UTC)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    day = amz_date[:8]
    headers = {"host": host, "x-amz-content-sha256": EMPTY_SHA256, "x-amz-date": amz_date}
    for name, value in (extra or {}).items():
        headers[name.lower()] = value
    signed = sorted(headers)
    canonical_query = "&".join(
        f"{urllib.parse.quote(k, safe='~')}={urllib.parse.quote(v, safe='~')}" for k, v in sorted(query.items())
    )
    canonical = "\n".join(
        [
            method,
            path,
            canonical_query,
            "".join(f"{name}:{str(headers[name]).strip()}\n" for name in signed),
            ";".join(signed),
            EMPTY_SHA256,
        ]
    )
    scope = f"{day}/{region}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = _sign(_sign(_sign(_sign(f"AWS4{secret_key}".encode(), day), region), "s3"), "aws4_request")
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, SignedHeaders={';'.join(signed)}, Signature={signature}"
    )
    return headers


def _error_from(response, body: bytes, what: str) -> S3Error:
    code, message = "", ""
    if body:
        try:
            root = ElementTree.fromstring(body)
            code = root.findtext("Code") or ""
            message = root.findtext("Message") or ""
        except ElementTree.ParseError:
            message = body[:200].decode("utf-8", "replace")
    if not code:
        code = {403: "AccessDenied", 404: "NoSuchKey"}.get(response.status, f"HTTP{response.status}")
    detail = f": {message}" if message else ""
    return S3Error(f"{what}: {response.status} {code}{detail}", response.status, code)


class S3Client:
    """Signed GET/HEAD against one endpoint. Not thread-safe: one client per worker thread."""

    def __init__(self, endpoint_url, access_key, secret_key, region="us-east-1", ca_file=None,
                 validate_certs=True, timeout=60.0):
        parsed = urllib.parse.urlsplit(endpoint_url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise S3Error(f"endpoint_url {endpoint_url!r} is not an http:// or https:// URL", code="BadEndpoint")
        self.scheme = parsed.scheme
        self.hostname = parsed.hostname
        self.port = parsed.port or (443 if parsed.scheme == "https" else 80)
        default_port = self.port == (443 if parsed.scheme == "https" else 80)
        self.host_header = self.hostname if default_port else f"{self.hostname}:{self.port}"
        self.base_path = parsed.path.rstrip("/")
        self.access_key, self.secret_key, self.region = access_key, secret_key, region
        self.timeout = timeout
        self._context = None
        if self.scheme == "https":
            self._context = ssl.create_default_context(cafile=ca_file)
            if not validate_certs:
                self._context.check_hostname = False
                self._context.verify_mode = ssl.CERT_NONE
        self._connection = None

    def _connect(self):
        if self._connection is None:
            if self.scheme == "https":
                self._connection = http.client.HTTPSConnection(
                    self.hostname, self.port, timeout=self.timeout, context=self._context
                )
            else:
                self._connection = http.client.HTTPConnection(self.hostname, self.port, timeout=self.timeout)
        return self._connection

    def close(self):
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def request(self, method, bucket, key="", query=None, headers=None):
        """Send one signed request; returns the open response (status < 300) or raises S3Error."""
        query = query or {}
        path = f"{self.base_path}/{bucket}" + (f"/{quote_key(key)}" if key else "")
        signed = signature_v4_headers(
            method, self.host_header, path, query, self.access_key, self.secret_key, self.region, extra=headers
        )
        url = path + ("?" + urllib.parse.urlencode(sorted(query.items()), quote_via=urllib.parse.quote) if query else "")
        what = f"s3://{bucket}/{key}" if key else f"s3://{bucket}"
        # A kept-alive connection the server closed in between is retried once on a fresh one.
        for attempt in (1, 2):
            connection = self._connect()
            try:
                connection.request(method, url, headers=signed)
                response = connection.getresponse()
                break
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as error:
                self.close()
                if attempt == 2:
                    raise S3Error(f"{what}: connection failed: {error}", code="ConnectionError") from error
            except ssl.SSLError as error:
                self.close()
                raise S3Error(f"{what}: TLS failed: {error}", code="TLSError") from error
            except OSError as error:
                self.close()
                raise S3Error(f"{what}: cannot reach {self.scheme}://{self.host_header}: {error}",
                              code="ConnectionError") from error
        if response.status >= 300:
            body = response.read() if method != "HEAD" else b""
            raise _error_from(response, body, what)
        return response

    def get_bytes(self, bucket, key, limit=64 * 1024 * 1024) -> bytes:
        """A small object's whole content (manifests); refuses anything larger than ``limit``."""
        response = self.request("GET", bucket, key)
        body = response.read(limit + 1)
        if len(body) > limit:
            self.close()
            raise S3Error(f"s3://{bucket}/{key}: larger than {limit} bytes", code="TooLarge")
        return body

    def head(self, bucket, key) -> dict:
        response = self.request("HEAD", bucket, key)
        response.read()
        return {name.lower(): value for name, value in response.getheaders()}
