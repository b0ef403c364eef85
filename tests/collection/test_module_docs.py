"""Every module documents itself completely: `ansible-doc` renders it, with check and diff mode."""

import json
import subprocess
from pathlib import Path

import pytest
import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[2]
COLLECTION = PROJECT_ROOT / "collections" / "ansible_collections" / "llmops" / "datacenter"

MODULES = sorted(p.stem for p in (COLLECTION / "plugins" / "modules").glob("*.py") if p.stem != "__init__")


def test_collection_has_modules():
    assert MODULES, "no modules found under plugins/modules"


@pytest.mark.parametrize("module", MODULES)
def test_ansible_doc_renders_full_documentation(module, ansible_doc, ansible_env):
    name = f"llmops.datacenter.{module}"
    result = subprocess.run(
        [ansible_doc, "--json", name], capture_output=True, text=True, env=ansible_env, check=False
    )
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)[name]
    documentation = doc["doc"]
    assert documentation["short_description"]
    assert documentation.get("description"), "description is empty"
    assert documentation.get("author"), "author is missing"
    for option, spec in documentation.get("options", {}).items():
        assert spec.get("description"), f"option {option} has no description"
    attributes = documentation.get("attributes", {})
    for attribute in ("check_mode", "diff_mode"):
        assert attribute in attributes, f"attributes.{attribute} is not documented"
        assert attributes[attribute].get("support") in {"full", "partial", "none"}
    examples = yaml.safe_load(doc["examples"])
    assert isinstance(examples, list) and examples, "EXAMPLES must be a non-empty list of tasks"
    assert any(name in task for task in examples), f"no example calls {name} by its FQCN"
    assert doc.get("return"), "RETURN is empty"
