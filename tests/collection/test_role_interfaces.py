"""A role's interface is its defaults and its argument spec: the two must never drift apart.

Every variable in defaults/main.yml is documented in meta/argument_specs.yml and the other way
round, except required variables (secrets such as passwords), which have no default by design.
Every role also has a molecule scenario of the same name.
"""

from pathlib import Path

import pytest
import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[2]
COLLECTION = PROJECT_ROOT / "collections" / "ansible_collections" / "llmops" / "datacenter"

ROLES = sorted(p.name for p in (COLLECTION / "roles").iterdir() if p.is_dir())


def _load(path: Path):
    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle) or {}


def test_collection_has_roles():
    assert ROLES


@pytest.mark.parametrize("role", ROLES)
def test_defaults_and_argument_specs_agree(role):
    role_dir = COLLECTION / "roles" / role
    defaults = _load(role_dir / "defaults" / "main.yml")
    spec = _load(role_dir / "meta" / "argument_specs.yml")["argument_specs"]["main"]
    options = spec.get("options", {})
    assert spec.get("short_description"), "argument spec has no short_description"

    undocumented = sorted(set(defaults) - set(options))
    assert not undocumented, f"defaults without an argument spec entry: {undocumented}"
    for name, option in options.items():
        assert option.get("description"), f"{name} has no description"
        if name not in defaults:
            assert option.get("required"), f"{name} is neither defaulted nor required"
        else:
            assert not option.get("required"), f"{name} is required but also has a default"
            if "default" in option:
                assert option["default"] == defaults[name], f"{name}: argument spec default differs from defaults/main.yml"
        assert name.startswith(f"{role}_"), f"{name} is not prefixed with the role name"


@pytest.mark.parametrize("role", ROLES)
def test_defaults_are_commented(role):
    lines = (COLLECTION / "roles" / role / "defaults" / "main.yml").read_text(encoding="utf-8").splitlines()
    uncommented = [
        line.split(":")[0]
        for index, line in enumerate(lines)
        if line and not line.startswith((" ", "#", "-")) and ":" in line
        and not (index and lines[index - 1].startswith("#"))
    ]
    assert not uncommented, f"defaults/main.yml: no comment directly above {uncommented}"


@pytest.mark.parametrize("role", ROLES)
def test_role_has_a_molecule_scenario(role):
    scenario = PROJECT_ROOT / "molecule" / role
    assert (scenario / "molecule.yml").is_file(), f"molecule/{role}/molecule.yml is missing"
    assert list((scenario / "tests").glob("test_*.py")), f"molecule/{role} has no testinfra tests"
