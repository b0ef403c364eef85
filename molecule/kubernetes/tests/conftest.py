"""Serving checks first, in the order the lab's module defines them: test_kubernetes.py's drain
evicts a model server, whose replacement would need vLLM's start again (a minute or more) before
the serving checks could begin."""

import pathlib
import sys

# The project runs pytest with --import-mode=importlib, which leaves sys.path alone: the test modules
# import the scenario's shared helpers (kube_bundle.py) from here.
sys.path.insert(0, str(pathlib.Path(__file__).parent))


def _order(item):
    if item.path.name == "test_serving.py":
        return 0, item.function.__code__.co_firstlineno
    return 1, 0


def pytest_collection_modifyitems(items):
    items.sort(key=_order)
