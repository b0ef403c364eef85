"""The Kubernetes bundle this scenario's cluster was built from (scripts/kube-build.sh)."""

import json
import os
import pathlib


def kubectl_path() -> str:
    """The bundle's kubectl: the one matching the cluster's version (exec, logs and drain need it)."""
    path = os.environ.get("LLMOPS_KUBE_BUNDLE") or (
        pathlib.Path(os.environ["MOLECULE_PROJECT_DIRECTORY"]) / ".cache/kubernetes-1.20.2/bundle.json"
    )
    bundle = json.loads(pathlib.Path(path).read_text())
    return next(b["path"] for b in bundle["binaries"] if b["name"] == "kubectl")
