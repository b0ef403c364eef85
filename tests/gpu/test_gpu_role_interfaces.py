"""Each GPU role's defaults/main.yml and meta/argument_specs.yml describe the same variables."""

from pathlib import Path

import pytest
import yaml

ROLES = Path(__file__).resolve().parents[2] / "collections/ansible_collections/llmops/datacenter/roles"


@pytest.mark.parametrize("role", ["nvidia_driver", "nvidia_container_toolkit"])
def test_defaults_and_argument_specs_agree(role):
    defaults = yaml.safe_load((ROLES / role / "defaults/main.yml").read_text())
    options = yaml.safe_load((ROLES / role / "meta/argument_specs.yml").read_text())["argument_specs"]["main"]["options"]
    assert sorted(defaults) == sorted(options)
    for name, value in defaults.items():
        assert options[name]["default"] == value, name
        assert name.startswith(f"{role}_"), name
    text = (ROLES / role / "defaults/main.yml").read_text().splitlines()
    for name in defaults:
        line = next(index for index, content in enumerate(text) if content.startswith(f"{name}:"))
        assert text[line - 1].startswith("#"), f"{name} has no comment"
