"""Roll rendered objects out to a cluster: server-side apply, prune by label, check-mode diff, wait.

Shaped like kubernetes.core's `k8s` runner: for each object fetch the live state, build the
desired state, compare, and act only on a difference. An object is up to date when the live one
holds every field we render with its value and our field manager owns no field we no longer
render (its managedFields), and it carries the hash of the rendering it was last applied from
(annotation `llmops.io/rendered-sha256`: a value removed from inside an atomic list, such as a
LimitRange's `limits`, leaves every rendered field in place and our manager owning the whole list,
so only the hash tells); only then is nothing sent. Otherwise it is applied server-side (a
dry run in check mode) and the server's answer is the diff's "after". Asking the server every
time would not do on 1.20 (seen against a 1.20.2 API server): a repeated apply rewrites the
object to bump its managedFields timestamp, and a dry-run apply of an unchanged
autoscaling/v2beta2 HPA answers with its metrics list doubled, which a real apply never stores.

The cluster is reached through `ClusterApi`, a narrow contract (get, list by label, apply,
delete, version, kind present); `DynamicClusterApi` maps it onto the `kubernetes` client's
DynamicClient, as kubernetes.core builds it from the usual auth options. Tests drive `rollout` through a fake at that boundary; nothing here needs a cluster to
import.

Rules:
* apply with one field manager (`llmops` by default); a conflict with another manager fails the
  object unless force_conflicts is set, and names the conflict;
* a workload that an autoscaler we render scales keeps its live replica count: the HPA/KEDA owns
  it, its bounds come from the plan; the plan's count is used only when the workload is created;
* prune deletes only objects carrying our labels (`app.kubernetes.io/managed-by=llmops` and
  `llmops.io/plan=<plan>`) that the rendering no longer holds, dependents first; namespaces are
  left in place unless prune_namespaces is set (deleting one deletes everything in it);
* check mode: dry-run applies and deletes only (the server validates each change); the diff
  holds the objects that would change, the live object with our fields laid over it;
* wait: after applying, every Deployment/LeaderWorkerSet must report all its replicas updated and
  available (or ready) within the timeout.
"""

from __future__ import annotations

import copy
import hashlib
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from .render import KIND_ORDER, MANAGED_BY, PLAN_LABEL, object_key

# Fields the API server fills in that say nothing about what we asked for.
_VOLATILE_METADATA = (
    "managedFields",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "uid",
    "selfLink",
)
RENDERED_HASH_ANNOTATION = "llmops.io/rendered-sha256"
# Bookkeeping the diff leaves out (ours included: the fields it stands for show themselves).
_VOLATILE_ANNOTATIONS = ("deployment.kubernetes.io/revision", RENDERED_HASH_ANNOTATION)
WORKLOAD_KINDS = ("Deployment", "LeaderWorkerSet")
AUTOSCALER_KINDS = ("HorizontalPodAutoscaler", "ScaledObject")
_ZERO_VALUES = (False, 0, "", None, [], {})


class RolloutError(Exception):
    """The rollout cannot proceed or did not finish; `problems` names each object at fault."""

    def __init__(self, problems: list[str], result: dict[str, Any] | None = None):
        super().__init__("\n".join(problems))
        self.problems = problems
        self.result = result or {}


class ApiError(Exception):
    """An API call failed; `status` is the HTTP status (409 for an apply conflict), `reason` the server's text."""

    def __init__(self, status: int, reason: str):
        super().__init__(f"{status}: {reason}")
        self.status = status
        self.reason = reason


class ClusterApi(Protocol):
    def server_version(self) -> str: ...

    def has_kind(self, api_version: str, kind: str) -> bool: ...

    def get(self, api_version: str, kind: str, name: str, namespace: str | None) -> dict[str, Any] | None: ...

    def list(self, api_version: str, kind: str, label_selector: str) -> list[dict[str, Any]]: ...

    def apply(
        self, obj: dict[str, Any], field_manager: str, force_conflicts: bool, dry_run: bool
    ) -> dict[str, Any]: ...

    def delete(
        self, api_version: str, kind: str, name: str, namespace: str | None, dry_run: bool
    ) -> None: ...


@dataclass
class RolloutResult:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    kept_namespaces: list[str] = field(default_factory=list)
    ready: dict[str, str] = field(default_factory=dict)
    before: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.pruned)

    def to_dict(self) -> dict[str, Any]:
        return {
            "changed": self.changed,
            "created": self.created,
            "updated": self.updated,
            "unchanged": len(self.unchanged),
            "pruned": self.pruned,
            "kept_namespaces": self.kept_namespaces,
            "ready": self.ready,
        }


def describe(key: tuple[str, str, str, str]) -> str:
    """`Kind namespace/name` (cluster-scoped: `Kind name`), as results and messages name objects."""
    _, kind, namespace, name = key
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"


def owner_selector(plan_name: str) -> str:
    return ",".join(f"{k}={v}" for k, v in {**MANAGED_BY, PLAN_LABEL: plan_name}.items())


def normalized(obj: dict[str, Any] | None) -> dict[str, Any] | None:
    """The object without server bookkeeping and status: what a diff should show."""
    if obj is None:
        return None
    clean = copy.deepcopy(obj)
    clean.pop("status", None)
    meta = clean.get("metadata", {})
    for key in _VOLATILE_METADATA:
        meta.pop(key, None)
    annotations = meta.get("annotations")
    if annotations:
        for key in _VOLATILE_ANNOTATIONS:
            annotations.pop(key, None)
        if not annotations:
            meta.pop("annotations")
    return clean


def contains(live: Any, desired: Any) -> bool:
    """Whether `live` holds every field of `desired` with its value (defaults the server added aside).

    A field the server omits is its zero value (Kubernetes drops false, 0, "" and empty fields
    from its answers). Lists must have the same length and hold the desired elements in order:
    every list we render is either atomic or keyed by a name we set, so a reordering is a change.
    """
    if isinstance(desired, dict):
        if not isinstance(live, dict):
            return False
        return all(contains(live[k], v) if k in live else v in _ZERO_VALUES for k, v in desired.items())
    if isinstance(desired, list):
        return isinstance(live, list) and len(live) == len(desired) and all(map(contains, live, desired))
    if isinstance(desired, bool) or isinstance(live, bool):
        return live is desired  # True == 1 in Python, not in Kubernetes
    return live == desired


def overlay(live: Any, desired: Any) -> Any:
    """`desired` laid over `live`: what an apply of `desired` leaves, server defaults kept."""
    if isinstance(desired, dict) and isinstance(live, dict):
        return {**live, **{k: overlay(live.get(k), v) for k, v in desired.items()}}
    if isinstance(desired, list) and isinstance(live, list) and len(live) == len(desired):
        return [overlay(old, new) for old, new in zip(live, desired, strict=True)]
    return copy.deepcopy(desired)


def _owned_but_not_rendered(fields: Any, desired: Any) -> bool:
    """Whether a managedFields `fieldsV1` tree names a field that `desired` no longer has."""
    if not isinstance(fields, dict):
        return False
    for key, sub in fields.items():
        if key == ".":
            continue
        if key.startswith("f:"):
            if not isinstance(desired, dict) or key[2:] not in desired:
                return True
            if _owned_but_not_rendered(sub, desired[key[2:]]):
                return True
        elif key.startswith("k:"):
            ident = json.loads(key[2:])
            candidates = desired if isinstance(desired, list) else []
            match = next(
                (
                    e
                    for e in candidates
                    if isinstance(e, dict) and all(e.get(k) == v for k, v in ident.items())
                ),
                None,
            )
            if match is None or _owned_but_not_rendered(sub, match):
                return True
        elif key.startswith("v:") and (not isinstance(desired, list) or json.loads(key[2:]) not in desired):
            return True
    return False


def up_to_date(live: dict[str, Any], desired: dict[str, Any], field_manager: str) -> bool:
    """Whether applying `desired` would change nothing: live holds every field we render, and every
    field our manager applied before is still rendered (else the apply would remove it)."""
    if not contains(live, desired):
        return False
    ours = [
        entry.get("fieldsV1") or {}
        for entry in (live.get("metadata") or {}).get("managedFields") or []
        if entry.get("manager") == field_manager and entry.get("operation") == "Apply"
    ]
    return not any(_owned_but_not_rendered(fields, desired) for fields in ours)


def _autoscaled_workloads(objects: Iterable[dict[str, Any]]) -> set[tuple[str, str, str]]:
    return {
        (o["metadata"]["namespace"], o["spec"]["scaleTargetRef"]["kind"], o["spec"]["scaleTargetRef"]["name"])
        for o in objects
        if o["kind"] in AUTOSCALER_KINDS
    }


def rendered_hash(obj: dict[str, Any]) -> str:
    """sha256 of the rendered object (canonical JSON): what `_body` records on every applied object."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _body(obj: dict[str, Any], live: dict[str, Any] | None, autoscaled: set) -> dict[str, Any]:
    body = copy.deepcopy(obj)
    # The rendering's hash, not the body's: an autoscaler moving the live replicas changes nothing here.
    body["metadata"].setdefault("annotations", {})[RENDERED_HASH_ANNOTATION] = rendered_hash(obj)
    meta = obj["metadata"]
    if live is not None and (meta.get("namespace"), obj["kind"], meta["name"]) in autoscaled:
        live_replicas = (live.get("spec") or {}).get("replicas")
        if live_replicas is not None:
            body["spec"]["replicas"] = live_replicas
    return body


def _missing_kinds(api: ClusterApi, objects: list[dict[str, Any]]) -> list[str]:
    kinds = sorted({(o["apiVersion"], o["kind"]) for o in objects})
    return [
        f"{kind} ({api_version}) is not served by the cluster: install its CRD/controller first"
        + (" (LeaderWorkerSet: kubernetes-sigs/lws)" if kind == "LeaderWorkerSet" else "")
        + (" (ScaledObject: KEDA)" if kind == "ScaledObject" else "")
        for api_version, kind in kinds
        if not api.has_kind(api_version, kind)
    ]


def _workload_ready(obj: dict[str, Any]) -> tuple[bool, str]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    wanted = spec.get("replicas", 1)
    generation = (obj.get("metadata") or {}).get("generation")
    observed = status.get("observedGeneration")
    if obj["kind"] == "Deployment":
        updated, available = status.get("updatedReplicas", 0), status.get("availableReplicas", 0)
        current = status.get("replicas", 0)
        done = (
            (generation is None or observed == generation)
            and updated == wanted
            and available == wanted
            and current == wanted
        )
        return done, f"{available}/{wanted} available, {updated} updated"
    ready, updated = status.get("readyReplicas", 0), status.get("updatedReplicas", 0)
    return ready == wanted and updated == wanted, f"{ready}/{wanted} groups ready, {updated} updated"


def rollout(
    api: ClusterApi,
    objects: list[dict[str, Any]],
    *,
    plan_name: str,
    field_manager: str = "llmops",
    force_conflicts: bool = False,
    prune: bool = True,
    prune_namespaces: bool = False,
    check_mode: bool = False,
    wait: bool = True,
    wait_timeout: float = 900,
    poll_interval: float = 5,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> RolloutResult:
    """Bring the cluster to `objects`; see the module docstring for the rules."""
    problems = _missing_kinds(api, objects)
    foreign = [
        describe(object_key(o))
        for o in objects
        if any(
            o["metadata"].get("labels", {}).get(k) != v
            for k, v in {**MANAGED_BY, PLAN_LABEL: plan_name}.items()
        )
    ]
    problems += [f"{name}: lacks the ownership labels of plan {plan_name!r}" for name in foreign]
    if problems:
        raise RolloutError(problems)

    result = RolloutResult()
    autoscaled = _autoscaled_workloads(objects)
    wanted = {object_key(o) for o in objects}
    new_namespaces: set[str] = set()
    for obj in objects:
        key = object_key(obj)
        name = describe(key)
        api_version, kind, namespace, obj_name = key
        if check_mode and namespace in new_namespaces:
            # Its namespace does not exist yet, so the server cannot dry-run it: it would be created as rendered.
            result.created.append(name)
            result.before[name], result.after[name] = None, normalized(obj)
            continue
        live = api.get(api_version, kind, obj_name, namespace or None)
        body = _body(obj, live, autoscaled)
        before = normalized(live)
        if live is not None and up_to_date(live, body, field_manager):
            result.unchanged.append(name)
            continue
        try:
            after = normalized(api.apply(body, field_manager, force_conflicts, dry_run=check_mode))
            if check_mode and live is not None:
                # The dry run validated the change; the diff shows the live object with our fields
                # laid over it (1.20's dry run doubles an unchanged HPA's metrics list).
                after = normalized(overlay(live, body))
            if before == after:
                result.unchanged.append(name)
                continue
        except ApiError as error:
            hint = (
                " (another field manager owns a field we set; see force_conflicts)"
                if error.status == 409
                else ""
            )
            problems.append(f"{name}: apply failed: {error.reason}{hint}")
            continue
        (result.created if live is None else result.updated).append(name)
        result.before[name] = before
        result.after[name] = after
        if kind == "Namespace" and live is None:
            new_namespaces.add(obj_name)
    if problems:
        raise RolloutError(problems, result.to_dict())

    if prune:
        _prune(
            api,
            result,
            wanted,
            plan_name,
            prune_namespaces,
            check_mode,
            {(o["apiVersion"], o["kind"]) for o in objects},
        )

    if wait and not check_mode:
        _wait(
            api,
            result,
            [k for k in wanted if k[1] in WORKLOAD_KINDS],
            wait_timeout,
            poll_interval,
            sleep,
            clock,
        )
    return result


def _prune(
    api: ClusterApi,
    result: RolloutResult,
    wanted: set,
    plan_name: str,
    prune_namespaces: bool,
    check_mode: bool,
    rendered_kinds: set[tuple[str, str]],
) -> None:
    selector = owner_selector(plan_name)
    # Every kind we render, in any API version we may have rendered it with.
    candidates = {
        ("v1", "Namespace"), ("v1", "ResourceQuota"), ("v1", "LimitRange"), ("v1", "Service"),
        ("scheduling.k8s.io/v1", "PriorityClass"), ("networking.k8s.io/v1", "NetworkPolicy"),
        ("apps/v1", "Deployment"), ("leaderworkerset.x-k8s.io/v1", "LeaderWorkerSet"),
        ("policy/v1", "PodDisruptionBudget"), ("policy/v1beta1", "PodDisruptionBudget"),
        ("autoscaling/v2", "HorizontalPodAutoscaler"), ("autoscaling/v2beta2", "HorizontalPodAutoscaler"),
        ("keda.sh/v1alpha1", "ScaledObject"),
    } | rendered_kinds  # fmt: skip
    order = {kind: index for index, kind in enumerate(KIND_ORDER)}
    # One API version per kind: the one we render with when we do, else the newest the cluster serves.
    chosen: dict[str, str] = {kind: version for version, kind in rendered_kinds}
    for version, kind in sorted(candidates, reverse=True):
        if kind not in chosen and api.has_kind(version, kind):
            chosen[kind] = version
    stale = []
    for kind, version in chosen.items():
        for live in api.list(version, kind, selector):
            if live["metadata"].get("deletionTimestamp"):
                continue  # already going (foreground deletion waits for its dependents)
            key = object_key({**live, "apiVersion": version, "kind": kind})
            if (key[1], key[2], key[3]) not in {(k[1], k[2], k[3]) for k in wanted}:
                stale.append(key)
    # Dependents before what they depend on: autoscalers, then workloads, ... namespaces last.
    for key in sorted(stale, key=lambda k: (-order.get(k[1], 0), k[2], k[3])):
        name = describe(key)
        if key[1] == "Namespace" and not prune_namespaces:
            result.kept_namespaces.append(key[3])
            continue
        try:
            api.delete(key[0], key[1], key[3], key[2] or None, dry_run=check_mode)
        except ApiError as error:
            if error.status != 404:  # gone meanwhile (its owner's deletion took it): what prune wanted
                raise RolloutError([f"{name}: delete failed: {error.reason}"], result.to_dict()) from error
        result.pruned.append(name)
        result.before[name] = {"apiVersion": key[0], "kind": key[1], "metadata": {"name": key[3]}}
        result.after[name] = None


def _wait(
    api: ClusterApi,
    result: RolloutResult,
    keys: list[tuple[str, str, str, str]],
    timeout: float,
    interval: float,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
) -> None:
    deadline = clock() + timeout
    pending = sorted(keys)
    while True:
        still = []
        for key in pending:
            live = api.get(key[0], key[1], key[3], key[2] or None)
            done, state = _workload_ready(live) if live else (False, "not found")
            result.ready[describe(key)] = state
            if not done:
                still.append(key)
        if not still:
            return
        if clock() >= deadline:
            raise RolloutError(
                [
                    f"{describe(k)}: not rolled out within {timeout:g}s ({result.ready[describe(k)]})"
                    for k in still
                ],
                result.to_dict(),
            )
        pending = still
        sleep(interval)


class DynamicClusterApi:
    """ClusterApi over the `kubernetes` client's DynamicClient (as kubernetes.core's get_api_client returns)."""

    def __init__(self, client: Any):
        from kubernetes.dynamic.exceptions import ResourceNotFoundError

        self.client = client
        self._not_found = ResourceNotFoundError

    def _resource(self, api_version: str, kind: str):
        return self.client.resources.get(api_version=api_version, kind=kind)

    @staticmethod
    def _call(action: Callable[[], Any]) -> Any:
        from kubernetes.dynamic.exceptions import DynamicApiError

        try:
            return action()
        except DynamicApiError as error:
            raise ApiError(error.status, _reason(error)) from error

    def server_version(self) -> str:
        return self.client.version["kubernetes"]["gitVersion"]

    def has_kind(self, api_version: str, kind: str) -> bool:
        try:
            self._resource(api_version, kind)
        except self._not_found:
            return False
        return True

    def get(self, api_version: str, kind: str, name: str, namespace: str | None) -> dict[str, Any] | None:
        from kubernetes.dynamic.exceptions import DynamicApiError, NotFoundError

        resource = self._resource(api_version, kind)
        try:
            return self.client.get(resource, name=name, namespace=namespace).to_dict()
        except NotFoundError:
            return None
        except DynamicApiError as error:
            raise ApiError(error.status, _reason(error)) from error

    def list(self, api_version: str, kind: str, label_selector: str) -> list[dict[str, Any]]:
        resource = self._resource(api_version, kind)
        # Without a namespace the dynamic client lists across all namespaces.
        listed = self._call(lambda: self.client.get(resource, label_selector=label_selector))
        return [
            item.to_dict() if hasattr(item, "to_dict") else item for item in listed.to_dict().get("items", [])
        ]

    def apply(
        self, obj: dict[str, Any], field_manager: str, force_conflicts: bool, dry_run: bool
    ) -> dict[str, Any]:
        resource = self._resource(obj["apiVersion"], obj["kind"])
        kwargs: dict[str, Any] = {"field_manager": field_manager, "force_conflicts": force_conflicts}
        if dry_run:
            kwargs["dry_run"] = "All"
        applied = self._call(
            lambda: self.client.server_side_apply(
                resource,
                body=obj,
                name=obj["metadata"]["name"],
                namespace=obj["metadata"].get("namespace"),
                **kwargs,
            )
        )
        return applied.to_dict()

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None, dry_run: bool) -> None:
        resource = self._resource(api_version, kind)
        # Foreground: the object goes once its dependents (ReplicaSets, pods) are gone.
        kwargs: dict[str, Any] = {"propagation_policy": "Foreground"}
        if dry_run:
            kwargs["dry_run"] = "All"
        self._call(lambda: self.client.delete(resource, name=name, namespace=namespace, **kwargs))


def _reason(error: Any) -> str:
    summary = getattr(error, "summary", None)
    if callable(summary):
        return summary()
    return str(getattr(error, "body", None) or error)
