"""The gateway's routing data, rendered from the serving spec.

`gateway_routes(spec, api_keys)` returns plain data that the `gateway` role writes next to its
Nginx configuration: one upstream per served model (its replicas with integer Nginx weights from
the plan's traffic weights), the model -> upstream map the njs router reads, the models every
tenant may call, and the tenants' API keys as SHA-256 digests (the key itself never reaches the
gateway host). `scrape_targets(spec)` returns the Prometheus model-server targets with the labels
rules and dashboards select on (model, tenant, GPU type, zone).

Pure functions: no files, no network. Bad input raises GatewayConfigError listing every problem,
each naming the field.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, is_dataclass
from typing import Any

# Nginx weights are integers; 100 steps keep a 1 % traffic share distinguishable.
WEIGHT_SCALE = 100
UPSTREAM_PREFIX = "llmops_"
KEY_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}$")
# Model names end up in Nginx upstream names and in JSON; keep them to what the planner accepts.
_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,126}$")
# Labels every model-server target carries, taken from the replica's spec labels.
SCRAPE_LABELS = ("model", "tenant", "gpu_type", "zone", "replica", "node")
MIN_KEY_LENGTH = 20


class GatewayConfigError(ValueError):
    """Invalid gateway input; `problems` holds one 'field: message' line each."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


def _as_dict(spec: Any) -> dict[str, Any]:
    if is_dataclass(spec):
        return spec.to_dict() if hasattr(spec, "to_dict") else asdict(spec)
    if isinstance(spec, Mapping):
        return dict(spec)
    raise GatewayConfigError([f"spec: expected a serving spec (llmops.serving.ServingSpec or its to_dict()), got {type(spec).__name__}"])


def upstream_name(model: str) -> str:
    """Nginx upstream (and named location) for a model: letters, digits and underscores only."""
    return UPSTREAM_PREFIX + re.sub(r"[^A-Za-z0-9]", "_", model)


def nginx_weights(weights: list[float]) -> list[int]:
    """Traffic shares as Nginx integer weights (at least 1, so no listed replica is starved)."""
    total = sum(weights)
    if total <= 0:
        return [1] * len(weights)
    return [max(1, round(WEIGHT_SCALE * weight / total)) for weight in weights]


def key_digest(key: str) -> str:
    """What the gateway stores and compares for an API key: its SHA-256, hex."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _format_address(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def _upstreams(models: Mapping[str, Any], problems: list[str]) -> tuple[list[dict], dict[str, str | None], dict[str, dict]]:
    upstreams, routes, catalogue = [], {}, {}
    names: dict[str, str] = {}
    for model, route in sorted(models.items()):
        field = f"spec.models.{model}"
        if not isinstance(model, str) or not _MODEL_NAME.match(model):
            problems.append(f"{field}: {model!r} is not a model name ([A-Za-z0-9._-], at most 127 characters)")
            continue
        catalogue[model] = {"owned_by": (route or {}).get("tenant") or "llmops"}
        targets = (route or {}).get("targets") or []
        if not targets:
            routes[model] = None  # known but unserved: 503, not 404
            continue
        name = upstream_name(model)
        if name in names:
            problems.append(f"{field}: upstream name {name!r} collides with model {names[name]!r}")
            continue
        names[name] = model
        servers, weights = [], []
        for index, target in enumerate(targets):
            where = f"{field}.targets[{index}]"
            address, port, weight = target.get("address"), target.get("port"), target.get("weight")
            if not isinstance(address, str) or not address or any(c in address for c in " ;{}'\""):
                problems.append(f"{where}.address: {address!r} is not a host name or IP address")
                continue
            if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
                problems.append(f"{where}.port: {port!r} is not a TCP port (1-65535)")
                continue
            if isinstance(weight, bool) or not isinstance(weight, int | float) or weight < 0:
                problems.append(f"{where}.weight: {weight!r} must be a number >= 0")
                continue
            servers.append({"address": _format_address(address, port), "replica": target.get("replica", "")})
            weights.append(float(weight))
        for server, weight in zip(servers, nginx_weights(weights), strict=True):
            server["weight"] = weight
        if servers:
            upstreams.append({"name": name, "model": model, "servers": servers})
            routes[model] = name
        else:
            routes[model] = None
    return upstreams, routes, catalogue


def _keys(api_keys: Iterable[Mapping[str, Any]], tenants: Mapping[str, Any], problems: list[str]) -> dict[str, dict]:
    keys: dict[str, dict] = {}
    seen_ids: dict[str, int] = {}
    for index, entry in enumerate(api_keys or []):
        where = f"api_keys[{index}]"
        if not isinstance(entry, Mapping):
            problems.append(f"{where}: expected a mapping with id, tenant and key (or key_sha256)")
            continue
        unknown = sorted(set(entry) - {"id", "tenant", "key", "key_sha256"})
        if unknown:
            problems.append(f"{where}: unknown option(s) {', '.join(unknown)}; accepted: id, tenant, key, key_sha256")
        key_id, tenant = entry.get("id"), entry.get("tenant")
        if not isinstance(key_id, str) or not KEY_ID_PATTERN.match(key_id):
            problems.append(f"{where}.id: {key_id!r} is not a key id ([A-Za-z0-9._-], 1-63 characters); it is logged, the key is not")
            continue
        if key_id in seen_ids:
            problems.append(f"{where}.id: {key_id!r} is already used by api_keys[{seen_ids[key_id]}]")
            continue
        seen_ids[key_id] = index
        if tenant not in tenants:
            problems.append(f"{where}.tenant: unknown tenant {tenant!r}; accepted: {', '.join(sorted(tenants)) or '(no tenants in the spec)'}")
            continue
        key, digest = entry.get("key"), entry.get("key_sha256")
        if (key is None) == (digest is None):
            problems.append(f"{where}: set exactly one of key and key_sha256")
            continue
        if key is not None:
            # The value is a secret: never echo it, only say what is wrong with it.
            if not isinstance(key, str) or len(key) < MIN_KEY_LENGTH or any(c.isspace() for c in key):
                problems.append(f"{where}.key: must be a string of at least {MIN_KEY_LENGTH} characters without spaces")
                continue
            digest = key_digest(key)
        elif not isinstance(digest, str) or not SHA256_PATTERN.match(digest):
            problems.append(f"{where}.key_sha256: must be 64 lower-case hex digits (sha256 of the key)")
            continue
        if digest in keys:
            problems.append(f"{where}: the same key is already given to {keys[digest]['id']!r}")
            continue
        keys[digest] = {"id": key_id, "tenant": tenant, "models": list(tenants[tenant].get("models") or [])}
    return keys


def gateway_routes(spec: Any, api_keys: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Everything the gateway routes by, as data.

    spec: a ServingSpec or its to_dict() (only `models` and `tenants` are read).
    api_keys: [{id, tenant, key}] or [{id, tenant, key_sha256}]; ids are logged, keys never are.
    Returns {upstreams: [{name, model, servers: [{address, weight, replica}]}],
             routes: {model: upstream name or None}, models: {model: {owned_by}},
             keys: {sha256: {id, tenant, models}}, tenants: {tenant: [models]}}.
    """
    data = _as_dict(spec)
    problems: list[str] = []
    models = data.get("models") or {}
    tenants = data.get("tenants") or {}
    if not isinstance(models, Mapping) or not isinstance(tenants, Mapping):
        raise GatewayConfigError(["spec: `models` and `tenants` must be mappings (a ServingSpec's to_dict())"])
    upstreams, routes, catalogue = _upstreams(models, problems)
    for tenant, access in sorted(tenants.items()):
        for model in (access or {}).get("models") or []:
            if model not in models:
                problems.append(f"spec.tenants.{tenant}.models: unknown model {model!r}")
    keys = _keys(api_keys, tenants, problems)
    if problems:
        raise GatewayConfigError(problems)
    return {
        "upstreams": upstreams,
        "routes": routes,
        "models": catalogue,
        "keys": keys,
        "tenants": {tenant: list((access or {}).get("models") or []) for tenant, access in sorted(tenants.items())},
    }


def scrape_targets(spec: Any) -> list[dict[str, Any]]:
    """Model-server scrape targets, one entry per replica, in the prometheus role's format.

    [{model, targets: [host:port], labels: {tenant, gpu_type, zone, replica, node}}]; the prometheus
    role adds `model` itself. Empty label values are left out (Prometheus drops them anyway).
    """
    data = _as_dict(spec)
    entries = []
    for replica in data.get("replicas") or []:
        labels = dict(replica.get("labels") or {})
        labels.setdefault("model", replica.get("model"))
        selected = {name: str(labels[name]) for name in SCRAPE_LABELS if labels.get(name) not in (None, "") and name != "model"}
        entries.append(
            {
                "model": replica["model"],
                "targets": [_format_address(replica["address"], replica["port"])],
                "labels": selected,
            }
        )
    return sorted(entries, key=lambda entry: (entry["model"], entry["targets"][0]))
