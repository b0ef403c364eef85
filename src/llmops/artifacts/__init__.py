"""Model artifacts: manifests (every file's path, size, sha256 and the model's architecture) and
pushing model directories to an S3 store (SeaweedFS, MinIO or a cloud bucket).

The store layout and manifest schema are the contract with the collection's `model_fetch`
module, which reads them on GPU nodes:
    s3://<bucket>/<name>/<version>/manifest.json
    s3://<bucket>/<name>/<version>/files/<path>
"""

from llmops.artifacts.manifest import MANIFEST_SCHEMA, ManifestError, build_manifest
from llmops.artifacts.store import ObjectStore, PushError, PushResult, push_model

__all__ = [
    "MANIFEST_SCHEMA",
    "ManifestError",
    "ObjectStore",
    "PushError",
    "PushResult",
    "build_manifest",
    "push_model",
]
