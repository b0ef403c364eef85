"""Shared paths for the collection-wide checks."""

import os
import shutil
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def ansible_env() -> dict[str, str]:
    """Environment in which ansible-doc and ansible-inventory find this checkout's collection."""
    env = dict(os.environ)
    env["ANSIBLE_COLLECTIONS_PATH"] = str(PROJECT_ROOT / "collections")
    env["ANSIBLE_HOME"] = str(PROJECT_ROOT / ".ansible")
    env["ANSIBLE_CONFIG"] = str(PROJECT_ROOT / "ansible.cfg")
    return env

@pytest.fixture(scope="session")
def ansible_doc() -> str:
    path = shutil.which("ansible-doc")
    if path is None:
        pytest.fail("ansible-doc is not installed: run scripts/setup.sh")
    return path
