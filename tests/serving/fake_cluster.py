"""An in-memory stand-in for a cluster at the ClusterApi boundary (no cluster exists in the lab yet).

It keeps objects by kind, namespace and name, answers a dry-run apply with what it would store
(the applied object, server bookkeeping and one defaulted field, so that comparing with the
rendered object alone would be wrong), writes only on a real apply that changes something (an
unchanged apply is a no-op, as on the API server), lists by label selector,
refuses a namespaced object in a missing namespace (404) and a field owned by another manager
(409, unless forced), and lets a test play the controllers that make workloads ready.
What it does not model (real field ownership, defaulting of every field, admission, scheduling)
needs a live cluster; see docs/kubernetes-serving.md.
"""

from __future__ import annotations

import copy
from typing import Any

from llmops.serving.kubernetes.rollout import ApiError

CLUSTER_SCOPED = {"Namespace", "PriorityClass"}
BASE_KINDS = {
    ("v1", "Namespace"), ("v1", "ResourceQuota"), ("v1", "LimitRange"), ("v1", "Service"),
    ("scheduling.k8s.io/v1", "PriorityClass"), ("networking.k8s.io/v1", "NetworkPolicy"),
    ("apps/v1", "Deployment"), ("policy/v1", "PodDisruptionBudget"), ("autoscaling/v2", "HorizontalPodAutoscaler"),
}  # fmt: skip
CRD_KINDS = {("leaderworkerset.x-k8s.io/v1", "LeaderWorkerSet"), ("keda.sh/v1alpha1", "ScaledObject")}


class FakeCluster:
    def __init__(self, served=BASE_KINDS | CRD_KINDS, version="v1.33.1", ready_after_polls=1):
        self.served = set(served)
        self.version = version
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.calls: list[tuple] = []
        self.written: list[tuple] = []
        self.conflicts: set[tuple[str, str, str]] = set()
        self.ready_after_polls = ready_after_polls
        self._polls: dict[tuple[str, str, str], int] = {}
        self._version = 0

    # --- helpers for tests ---
    @staticmethod
    def key(kind: str, namespace: str | None, name: str) -> tuple[str, str, str]:
        return kind, namespace or "", name

    def put(self, obj: dict[str, Any]) -> None:
        """Place an object as if someone created it earlier (no call recorded)."""
        obj = copy.deepcopy(obj)
        self._version += 1
        obj["metadata"].update(resourceVersion=str(self._version), uid=f"uid-{self._version}", generation=1)
        meta = obj["metadata"]
        self.objects[self.key(obj["kind"], meta.get("namespace"), meta["name"])] = obj

    @property
    def writes(self) -> list[tuple]:
        """Real changes: applies that stored something different, and deletes (dry runs and no-ops aside)."""
        return list(self.written)

    # --- ClusterApi ---
    def server_version(self) -> str:
        return self.version

    def has_kind(self, api_version: str, kind: str) -> bool:
        return (api_version, kind) in self.served

    def get(self, api_version, kind, name, namespace):
        self.calls.append(("get", kind, namespace, name))
        key = self.key(kind, namespace, name)
        obj = self.objects.get(key)
        if obj is None:
            return None
        if kind in ("Deployment", "LeaderWorkerSet"):
            self._polls[key] = self._polls.get(key, 0) + 1
            if self.ready_after_polls is not None and self._polls[key] > self.ready_after_polls:
                replicas = obj["spec"].get("replicas", 1)
                obj["status"] = {
                    "observedGeneration": obj["metadata"]["generation"],
                    "replicas": replicas,
                    "updatedReplicas": replicas,
                    "availableReplicas": replicas,
                    "readyReplicas": replicas,
                }
        return copy.deepcopy(obj)

    def list(self, api_version, kind, label_selector):
        self.calls.append(("list", kind, label_selector))
        wanted = dict(part.split("=", 1) for part in label_selector.split(","))
        return [
            copy.deepcopy(o)
            for (k, _, _), o in sorted(self.objects.items())
            if k == kind and all(o["metadata"].get("labels", {}).get(a) == b for a, b in wanted.items())
        ]

    def apply(self, obj, field_manager, force_conflicts, dry_run):
        meta = obj["metadata"]
        key = self.key(obj["kind"], meta.get("namespace"), meta["name"])
        self.calls.append(("apply", obj["kind"], meta.get("namespace"), meta["name"], field_manager, dry_run))
        namespace = meta.get("namespace")
        if obj["kind"] not in CLUSTER_SCOPED and self.key("Namespace", None, namespace) not in self.objects:
            raise ApiError(404, f'namespaces "{namespace}" not found')
        if key in self.conflicts and not force_conflicts:
            raise ApiError(
                409, f'Apply failed with 1 conflict: conflict with "kubectl-edit": .spec ({obj["kind"]})'
            )
        live = self.objects.get(key)
        stored = copy.deepcopy(obj)
        if obj["kind"] == "Deployment":
            stored["spec"].setdefault("progressDeadlineSeconds", 600)  # server-side defaulting
        stored_meta = stored["metadata"]
        if live is None:
            stored_meta.update(uid="uid-new", generation=1)
        else:
            stored_meta.update(uid=live["metadata"]["uid"], generation=live["metadata"]["generation"])
            if live.get("spec") != stored.get("spec"):
                stored_meta["generation"] += 1
            if "status" in live:
                stored["status"] = live["status"]
        stored_meta["managedFields"] = [{"manager": field_manager, "operation": "Apply"}]
        unchanged = live is not None and _content(live) == _content(stored)
        if dry_run or unchanged:
            # As the API server: an apply that changes nothing writes nothing.
            stored_meta["resourceVersion"] = live["metadata"]["resourceVersion"] if live else "0"
            if unchanged:
                stored_meta["managedFields"] = live["metadata"].get("managedFields")
        else:
            self._version += 1
            stored_meta["resourceVersion"] = str(self._version)
            self.objects[key] = stored
            self._polls.pop(key, None)
            self.written.append(("apply", obj["kind"], meta.get("namespace"), meta["name"]))
        return copy.deepcopy(stored)

    def delete(self, api_version, kind, name, namespace, dry_run):
        self.calls.append(("delete", kind, namespace, name, dry_run))
        key = self.key(kind, namespace, name)
        if key not in self.objects:
            raise ApiError(404, f"{kind} {name} not found")
        if not dry_run:
            del self.objects[key]
            self.written.append(("delete", kind, namespace, name))


def _content(obj: dict[str, Any]) -> dict[str, Any]:
    meta = {k: v for k, v in obj["metadata"].items() if k not in ("resourceVersion", "managedFields")}
    return {**{k: v for k, v in obj.items() if k not in ("status", "metadata")}, "metadata": meta}
