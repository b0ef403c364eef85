"""Pulumi components that provision the cloud side of an llmops data center on AWS.

Each component is a ComponentResource with the type token `llmops:index:<Type>`; the
program in ../__main__.py reads stack config and composes them.
"""

from .addons import ClusterAddons, ClusterAddonsArgs
from .cluster import Cluster, ClusterArgs
from .gpu_node_pool import GpuNodePool, GpuNodePoolArgs
from .model_store import ModelStore, ModelStoreArgs
from .network import Network, NetworkArgs

__all__ = [
    "Cluster",
    "ClusterAddons",
    "ClusterAddonsArgs",
    "ClusterArgs",
    "GpuNodePool",
    "GpuNodePoolArgs",
    "ModelStore",
    "ModelStoreArgs",
    "Network",
    "NetworkArgs",
]
