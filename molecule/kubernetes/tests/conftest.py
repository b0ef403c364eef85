"""Serving checks first: test_kubernetes.py's drain evicts a model server, whose replacement would
need vLLM's start again (a minute or more) before the serving checks could begin."""


def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: 0 if item.path.name == "test_serving.py" else 1)
