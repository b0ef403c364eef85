"""The Prometheus role's secrets: required, never defaulted (drift between defaults and specs is
checked for every role in tests/collection/test_role_interfaces.py)."""

from __future__ import annotations

from pathlib import Path

import yaml

ROLES = Path(__file__).resolve().parents[3] / "roles"


def test_the_admin_password_is_required_and_has_no_default():
    defaults = yaml.safe_load((ROLES / "prometheus" / "defaults" / "main.yml").read_text())
    spec = yaml.safe_load((ROLES / "prometheus" / "meta" / "argument_specs.yml").read_text())
    password = spec["argument_specs"]["main"]["options"]["prometheus_web_admin_password"]
    assert "prometheus_web_admin_password" not in defaults
    assert password["required"] is True and password["no_log"] is True and "default" not in password
