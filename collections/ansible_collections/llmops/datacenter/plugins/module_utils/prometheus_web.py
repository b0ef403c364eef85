# Copyright: llmops maintainers
# Apache-2.0 (see galaxy.yml)
"""Build Prometheus' web configuration (basic auth users, optional TLS).

Passwords are stored as bcrypt hashes. A hash is recomputed only when the stored one no longer
matches the password, so a second run with the same password changes nothing.
Runs on the target host: standard library only; the bcrypt functions are passed in.
"""

from __future__ import annotations

import json
import re

from ansible_collections.llmops.datacenter.plugins.module_utils.prometheus_files import (
    PrometheusFileError,
    dump_yaml,
)

_USERNAME = re.compile(r"^[^\s:\"]+$")


def existing_password_hashes(text):
    """Read ``basic_auth_users`` from a web config this module wrote; unknown layouts yield {}."""
    hashes = {}
    if not text:
        return hashes
    in_users = False
    for line in text.splitlines():
        if line.startswith("basic_auth_users:"):
            in_users = True
            continue
        if in_users:
            if not line.startswith("  "):
                break
            key, separator, value = line.strip().partition(": ")
            if not separator:
                continue
            try:
                username = json.loads(key) if key.startswith('"') else key
                hashes[username] = json.loads(value)
            except ValueError:
                continue
    return hashes


def build_web_config(users, current_text, hash_password, check_password, tls_cert_file=None, tls_key_file=None):
    """The web config text.

    ``hash_password(password) -> str`` and ``check_password(password, hashed) -> bool`` wrap bcrypt.
    """
    if not users:
        raise PrometheusFileError("users: at least one user with a password is required; there is no default password")
    if bool(tls_cert_file) != bool(tls_key_file):
        raise PrometheusFileError("tls_cert_file, tls_key_file: set both to enable TLS, or neither")
    existing = existing_password_hashes(current_text)
    hashed_users = {}
    for username in sorted(users):
        password = users[username]
        if not _USERNAME.match(str(username)):
            raise PrometheusFileError(f"users: {username!r} is not a valid user name (no spaces, colons or quotes)")
        if not isinstance(password, str) or not password:
            raise PrometheusFileError(f"users.{username}: a non-empty password is required")
        stored = existing.get(username)
        if stored and check_password(password, stored):
            hashed_users[username] = stored
        else:
            hashed_users[username] = hash_password(password)
    config = {}
    if tls_cert_file:
        config["tls_server_config"] = {"cert_file": tls_cert_file, "key_file": tls_key_file}
    config["basic_auth_users"] = hashed_users
    return "# Managed by llmops.datacenter.prometheus_web_config: local edits are overwritten.\n" + dump_yaml(config)
