# Copyright: llmops contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""Glue of the k8s_serving module: parameters -> serving spec -> Kubernetes objects -> rollout.

Runs on the controller. The rendering and the rollout are `llmops.serving.kubernetes`; the API
client is the one kubernetes.core builds from its usual auth options. The module hands in its
parameters and gets back a result dict, so this file is tested without Ansible; `make_api` is
the one place a test replaces to stand in for a cluster.
"""

from __future__ import annotations

import json
import traceback

try:
    from llmops.planning.spec import InputError
    from llmops.serving import ServingSpecError, serving_spec
    from llmops.serving.kubernetes import (
        EgressRule,
        KubernetesRenderError,
        RenderOptions,
        VersionError,
        render_objects,
    )
    from llmops.serving.kubernetes.rollout import (
        DynamicClusterApi,
        RolloutError,  # noqa: F401 (the module catches it)
        rollout,
    )

    HAS_LLMOPS = True
    LLMOPS_IMPORT_ERROR = None
except ImportError:
    HAS_LLMOPS = False
    LLMOPS_IMPORT_ERROR = traceback.format_exc()

try:
    import kubernetes  # noqa: F401 (presence check, as kubernetes.core does)
    from ansible_collections.kubernetes.core.plugins.module_utils.k8s.client import get_api_client

    HAS_KUBERNETES = True
    KUBERNETES_IMPORT_ERROR = None
except ImportError:
    HAS_KUBERNETES = False
    KUBERNETES_IMPORT_ERROR = traceback.format_exc()

# The module's options that are kubernetes.core's auth options (passed to get_api_client as they are).
AUTH_OPTIONS = (
    "kubeconfig", "context", "host", "api_key", "username", "password", "validate_certs", "ca_cert",
    "client_cert", "client_key", "proxy", "no_proxy", "proxy_headers", "persist_config",
    "impersonate_user", "impersonate_groups",
)  # fmt: skip
# Module options that map one to one onto RenderOptions fields.
RENDER_OPTIONS = (
    "image", "plan_name", "fetch_image", "model_store_secret", "service_account", "autoscaler", "scaling_metric",
    "prometheus_url", "default_namespace", "render_namespaces", "gateway_namespace", "monitoring_namespace",
    "cpu_per_gpu", "memory_gib_per_gpu", "cpu_device_cores", "cpu_device_memory_gib", "model_cache_size_gib",
    "dns_policy",
)  # fmt: skip


class InvalidInput(Exception):
    """Bad parameters or inputs; `problems` holds one 'field: message' line each. Nothing was sent."""

    def __init__(self, problems):
        super().__init__("\n".join(problems))
        self.problems = problems


def read_plan(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except OSError as error:
        raise InvalidInput([f"plan_file: cannot read {path} ({error.strerror})"]) from error
    except ValueError as error:
        raise InvalidInput([f"plan_file: {path} is not JSON ({error})"]) from error


def render_options(params: dict) -> RenderOptions:
    values = {name: params[name] for name in RENDER_OPTIONS if params.get(name) is not None}
    if params.get("fetch_command"):
        values["fetch_command"] = tuple(params["fetch_command"])
    if params.get("gateway_cidrs") is not None:
        values["gateway_cidrs"] = tuple(params["gateway_cidrs"])
    if params.get("monitoring_cidrs") is not None:
        values["monitoring_cidrs"] = tuple(params["monitoring_cidrs"])
    if params.get("model_store_egress") is not None:
        values["model_store_egress"] = tuple(
            EgressRule(rule["cidr"], tuple(rule["ports"])) for rule in params["model_store_egress"]
        )
    return RenderOptions(**values)


def render(params: dict, kubernetes_version: str) -> list:
    """The objects for the plan, models and options in `params`; raises InvalidInput naming each problem."""
    plan = params["plan"] if params.get("plan") is not None else read_plan(params["plan_file"])
    models = params["models"] if params.get("models") is not None else params["models_file"]
    try:
        spec = serving_spec(
            plan,
            models,
            None,
            device=params["device"],
            model_cache_root=params["model_cache_root"],
            hf_config_dir=params.get("hf_config_dir"),
        )
        return render_objects(spec, kubernetes_version, render_options(params))
    except (ServingSpecError, KubernetesRenderError, InputError) as error:
        raise InvalidInput(error.problems) from error
    except VersionError as error:
        raise InvalidInput([str(error)]) from error


def make_api(params: dict):
    """The cluster, through the client kubernetes.core builds from the auth options."""
    auth = {name: params[name] for name in AUTH_OPTIONS if params.get(name) is not None}
    return DynamicClusterApi(get_api_client(**auth).client)


def run(params: dict, check_mode: bool) -> dict:
    """Render and roll out; returns the module's result (diff included), raises InvalidInput or RolloutError."""
    # Inputs are checked before any connection: bad input never reaches the cluster.
    version = params.get("kubernetes_version")
    objects = render(params, version or "1.33")
    api = make_api(params)
    if not version:
        version = api.server_version()
        objects = render(params, version)
    result = rollout(
        api,
        objects,
        plan_name=params["plan_name"],
        field_manager=params["field_manager"],
        force_conflicts=params["force_conflicts"],
        prune=params["prune"],
        prune_namespaces=params["prune_namespaces"],
        check_mode=check_mode,
        wait=params["wait"],
        wait_timeout=params["wait_timeout"],
    )
    summary = result.to_dict()
    return {
        **summary,
        "kubernetes_version": version,
        "objects": [
            {
                "apiVersion": o["apiVersion"],
                "kind": o["kind"],
                "namespace": o["metadata"].get("namespace", ""),
                "name": o["metadata"]["name"],
            }
            for o in objects
        ],
        "rendered": objects if params.get("return_objects") else None,
        "diff": {"before": result.before, "after": result.after},
    }
