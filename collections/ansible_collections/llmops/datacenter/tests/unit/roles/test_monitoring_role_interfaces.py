"""The monitoring roles' interface: defaults/main.yml and meta/argument_specs.yml must not drift apart."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROLES = Path(__file__).resolve().parents[3] / "roles"


@pytest.mark.parametrize("role", ["prometheus", "node_exporter"])
def test_every_default_is_documented_with_the_same_value(role):
    defaults = yaml.safe_load((ROLES / role / "defaults" / "main.yml").read_text())
    options = yaml.safe_load((ROLES / role / "meta" / "argument_specs.yml").read_text())["argument_specs"]["main"]["options"]

    assert sorted(defaults) == sorted(name for name, spec in options.items() if not spec.get("required"))
    for name, value in defaults.items():
        assert name.startswith(role + "_"), name
        assert options[name].get("description"), name
        if isinstance(value, str) and "{{" in value:
            # Computed from the inventory; the spec describes it instead of repeating the template.
            assert "default" not in options[name], name
        else:
            assert options[name].get("default") == value, name


def test_the_admin_password_is_required_and_has_no_default():
    defaults = yaml.safe_load((ROLES / "prometheus" / "defaults" / "main.yml").read_text())
    spec = yaml.safe_load((ROLES / "prometheus" / "meta" / "argument_specs.yml").read_text())
    password = spec["argument_specs"]["main"]["options"]["prometheus_web_admin_password"]
    assert "prometheus_web_admin_password" not in defaults
    assert password["required"] is True and password["no_log"] is True and "default" not in password
