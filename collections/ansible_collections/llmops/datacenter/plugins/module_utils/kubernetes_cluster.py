# Copyright: llmops contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""Logic of the kubernetes_preflight and kubernetes_device_plugin modules (controller side).

Imports the `llmops` package; nothing here imports Ansible: the modules hand in their params
and get back a result dict or an InputError listing every problem, so this file is tested directly.
"""

from __future__ import annotations

import traceback

try:
    from llmops.cluster import (
        ClusterError,
        ClusterRequest,
        DevicePluginError,
        DevicePluginOptions,
        VersionError,
        check_cluster,
        render_device_plugin,
        validate_objects,
    )

    HAS_LLMOPS = True
    LLMOPS_IMPORT_ERROR = None
except ImportError:
    HAS_LLMOPS = False
    LLMOPS_IMPORT_ERROR = traceback.format_exc()

PREFLIGHT_PARAMS = (
    "kubernetes_version",
    "control_plane_hosts",
    "worker_hosts",
    "schedulable_control_planes",
    "control_plane_endpoint",
    "pod_subnet",
    "service_subnet",
    "node_addresses",
    "node_networks",
    "bundle",
    "upgrade_from",
)


class InputError(Exception):
    def __init__(self, problems):
        super().__init__("\n".join(problems))
        self.problems = problems


def run_preflight(params):
    """{'changed': False, 'cluster': {...}} or InputError with every problem."""
    request = ClusterRequest(**{name: params.get(name) for name in PREFLIGHT_PARAMS if params.get(name) is not None})
    try:
        cluster = check_cluster(request)
    except ClusterError as error:
        raise InputError(error.problems) from None
    return {"changed": False, "cluster": cluster.as_dict()}


def run_device_plugin(params):
    """{'changed': False, 'objects': [...], 'api_versions': {...}} or InputError."""
    options = DevicePluginOptions(
        image=params["image"],
        namespace=params["namespace"],
        node_selector=dict(params["node_selector"]),
        runtime_class=params["runtime_class"],
        runtime_handler=params["runtime_handler"],
        gpu_taint_key=params["gpu_taint_key"],
        image_pull_secret=params.get("image_pull_secret"),
    )
    try:
        objects = render_device_plugin(params["kubernetes_version"], options)
    except DevicePluginError as error:
        raise InputError(error.problems) from None
    except VersionError as error:
        raise InputError([str(error)]) from None
    problems = validate_objects(objects, params["kubernetes_version"])
    if problems:
        # A rendering the API server would refuse (or prune) is a defect, never applied.
        raise InputError(["rendered objects fail the API schema: " + p for p in problems])
    return {"changed": False, "objects": objects}
