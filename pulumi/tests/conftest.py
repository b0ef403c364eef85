"""Make the Pulumi project importable as the Pulumi CLI would, and keep the real `pulumi` SDK in charge.

With `--import-mode=importlib` pytest names these files after their path (`pulumi.tests.<file>`) and
first registers the project folder `pulumi/` itself as a namespace package called `pulumi`, which
would shadow the Pulumi SDK for everything imported afterwards. Put the SDK back in sys.modules.
"""

import importlib
import sys
from pathlib import Path

TESTS_DIR = Path(__file__).resolve().parent
PROJECT_DIR = TESTS_DIR.parent

if getattr(sys.modules.get("pulumi"), "__file__", None) is None:
    sys.modules.pop("pulumi", None)
    importlib.import_module("pulumi")

for path in (PROJECT_DIR, PROJECT_DIR / "policy", TESTS_DIR):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))


def pytest_configure(config):
    # pulumi_aws warns about its own deprecated resource aliases while it loads; none of them is used here.
    config.addinivalue_line("filterwarnings", "ignore::DeprecationWarning:pulumi_aws.*")
