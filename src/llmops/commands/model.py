"""`llmops model push` and `llmops model fetch`: model artifacts in an S3 store.

    llmops model push DIR --name N --version V --bucket B --endpoint-url URL [--ca-file PEM]
    llmops model fetch --name N --version V --cache-dir D [--bucket B] [--endpoint-url URL]

Credentials come from the environment, never from the command line (it shows in `ps`):
LLMOPS_S3_ACCESS_KEY and LLMOPS_S3_SECRET_KEY.

push: a key that may write the bucket. The manifest lists every file's path, size and sha256 and
the architecture read from config.json; it is written last, so a version exists only once all
its files do. Pushing the same files again changes nothing; different files under an existing
name/version are refused.

fetch: a key that may read the bucket (a tenant's read-only key). The store may also be named by
the environment, so a Kubernetes Secret mounted with envFrom configures the whole command:
LLMOPS_S3_ENDPOINT_URL, LLMOPS_S3_BUCKET, LLMOPS_S3_REGION, LLMOPS_S3_CA_FILE (a PEM file) or
LLMOPS_S3_CA_BUNDLE (the PEM text itself); options given on the command line win. The model lands
in D/N/V, every file checked against the manifest's size and sha256, in one rename, so a failed
fetch leaves any earlier copy untouched. A verified copy is not downloaded again (its files are
re-hashed unless --trust-cache). This is the model server's init step on Kubernetes; it uses the
collection's model_cache (standard library only) as the model_fetch module does on hosts.

Exit codes: 0 done (pushed, fetched or already there); 2 invalid input or refused; 1 the store
failed or a file did not verify.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

EXIT_OK = 0
EXIT_STORE_FAILED = 1
EXIT_INVALID_INPUT = 2


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("model", help="Model artifacts in the object store.", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = parser.add_subparsers(dest="model_command", required=True)
    push = actions.add_parser("push", help="Upload a model directory with its manifest.", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    push.add_argument("directory", metavar="DIR", help="model directory holding config.json")
    push.add_argument("--name", required=True, help="model name (the key prefix and node cache directory)")
    push.add_argument("--version", required=True, help="model version; immutable once pushed")
    push.add_argument("--bucket", required=True, help="the tenant's bucket")
    push.add_argument("--endpoint-url", required=True, help="S3 endpoint, e.g. https://store:8333")
    push.add_argument("--region", default="us-east-1", help="signature region (default us-east-1)")
    push.add_argument("--ca-file", help="PEM bundle that signs the endpoint's certificate")
    push.add_argument("--parallel", type=int, default=4, help="files hashed and uploaded at once (default 4)")
    push.add_argument("--json", action="store_true", help="print the result as JSON")
    push.set_defaults(handler=run_push)

    fetch = actions.add_parser("fetch", help="Fetch and verify one model version into a cache directory.",
                               description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    fetch.add_argument("--name", required=True, help="model name (the artifact's key prefix)")
    fetch.add_argument("--version", required=True, help="model version")
    fetch.add_argument("--cache-dir", required=True, help="cache root; the model lands in CACHE_DIR/NAME/VERSION")
    fetch.add_argument("--bucket", help="the tenant's bucket (default: $LLMOPS_S3_BUCKET)")
    fetch.add_argument("--endpoint-url", help="S3 endpoint (default: $LLMOPS_S3_ENDPOINT_URL)")
    fetch.add_argument("--region", help="signature region (default: $LLMOPS_S3_REGION or us-east-1)")
    fetch.add_argument("--ca-file", help="PEM bundle that signs the endpoint's certificate (default: $LLMOPS_S3_CA_FILE)")
    fetch.add_argument("--parallel", type=int, default=4, help="files downloaded at once (default 4)")
    fetch.add_argument("--keep-versions", type=int, default=2,
                       help="versions of this model kept in the cache, oldest evicted first (default 2)")
    fetch.add_argument("--trust-cache", action="store_true",
                       help="accept a cached copy by its stamp and file sizes without re-hashing it")
    fetch.add_argument("--json", action="store_true", help="print the result as JSON")
    fetch.set_defaults(handler=run_fetch)


def run_push(args: argparse.Namespace) -> int:
    # Imported here: `model fetch` runs in the serving image, which has no minio SDK.
    import urllib3

    from llmops.artifacts import ManifestError, ObjectStore, PushError, push_model

    access_key = os.environ.get("LLMOPS_S3_ACCESS_KEY")
    secret_key = os.environ.get("LLMOPS_S3_SECRET_KEY")
    missing = [name for name, value in (("LLMOPS_S3_ACCESS_KEY", access_key), ("LLMOPS_S3_SECRET_KEY", secret_key))
               if not value]
    if missing:
        print(f"llmops model push: set {' and '.join(missing)} in the environment", file=sys.stderr)
        return EXIT_INVALID_INPUT
    store = ObjectStore(args.endpoint_url, access_key, secret_key, args.region, args.ca_file)
    try:
        result = push_model(store, args.bucket, args.directory, args.name, args.version, parallel=args.parallel)
    except (ManifestError, PushError) as error:
        print(f"llmops model push: {error}", file=sys.stderr)
        return EXIT_INVALID_INPUT
    except (OSError, urllib3.exceptions.HTTPError) as error:
        print(f"llmops model push: {args.endpoint_url}: {error}", file=sys.stderr)
        return EXIT_STORE_FAILED
    if args.json:
        print(json.dumps({"changed": result.changed, "name": result.name, "version": result.version,
                          "bucket": result.bucket, "files": result.files, "total_bytes": result.total_bytes}))
    else:
        print(result.summary())
    return EXIT_OK


def model_cache_module() -> Any:
    """The collection's model_cache (what the model_fetch module runs on hosts).

    Installed images put the collection's module_utils on the path; a source checkout has them
    next to src/.
    """
    try:
        from ansible_collections.llmops.datacenter.plugins.module_utils import model_cache
    except ImportError:
        collections = Path(__file__).resolve().parents[3] / "collections"
        if not (collections / "ansible_collections/llmops/datacenter/plugins/module_utils/model_cache.py").is_file():
            raise
        sys.path.append(str(collections))
        from ansible_collections.llmops.datacenter.plugins.module_utils import model_cache
    return model_cache


def _setting(value: str | None, variable: str, default: str | None = None) -> str | None:
    return value or os.environ.get(variable) or default


def run_fetch(args: argparse.Namespace) -> int:
    model_cache = model_cache_module()
    bucket = _setting(args.bucket, "LLMOPS_S3_BUCKET")
    endpoint_url = _setting(args.endpoint_url, "LLMOPS_S3_ENDPOINT_URL")
    region = _setting(args.region, "LLMOPS_S3_REGION", "us-east-1")
    ca_file = _setting(args.ca_file, "LLMOPS_S3_CA_FILE")
    ca_bundle = os.environ.get("LLMOPS_S3_CA_BUNDLE")
    access_key = os.environ.get("LLMOPS_S3_ACCESS_KEY")
    secret_key = os.environ.get("LLMOPS_S3_SECRET_KEY")
    missing = [
        label for label, value in (
            ("--bucket or LLMOPS_S3_BUCKET", bucket),
            ("--endpoint-url or LLMOPS_S3_ENDPOINT_URL", endpoint_url),
            ("LLMOPS_S3_ACCESS_KEY", access_key),
            ("LLMOPS_S3_SECRET_KEY", secret_key),
        ) if not value
    ]
    if missing:
        print(f"llmops model fetch: set {', '.join(missing)}", file=sys.stderr)
        return EXIT_INVALID_INPUT
    try:
        model_cache.check_name("--name", args.name)
        model_cache.check_name("--version", args.version)
        model_cache.check_bucket(bucket)
        if args.parallel < 1 or args.keep_versions < 1:
            raise model_cache.FetchError("--parallel and --keep-versions must be at least 1")
    except model_cache.FetchError as error:
        print(f"llmops model fetch: {error}", file=sys.stderr)
        return EXIT_INVALID_INPUT
    with tempfile.TemporaryDirectory(prefix="llmops-fetch-") as scratch:
        if ca_bundle and not ca_file:
            # The CA came as text (a Secret key through envFrom); ssl wants a file.
            ca_file = os.path.join(scratch, "ca.pem")
            Path(ca_file).write_text(ca_bundle.strip() + "\n", encoding="utf-8")
        factory = model_cache.client_factory_for(endpoint_url, access_key, secret_key, region, ca_file)
        try:
            result = model_cache.fetch_model(
                factory, bucket, args.name, args.version, args.cache_dir, parallel=args.parallel,
                keep_versions=args.keep_versions, rehash=not args.trust_cache,
            )
        except (model_cache.FetchError, model_cache.S3Error, OSError) as error:
            print(f"llmops model fetch: {args.name} {args.version}: {error}", file=sys.stderr)
            return EXIT_STORE_FAILED
    result.pop("diff", None)
    if args.json:
        print(json.dumps(result, sort_keys=True))
    else:
        manifest = result["manifest"]
        if result["changed"]:
            verb = f"fetched {result['downloaded_bytes']} bytes of"
        else:
            verb = "already verified in the cache:"
        print(f"{verb} {args.name} {args.version} into {result['path']} "
              f"({manifest['files']} files, {manifest['total_bytes']} bytes, each sha256-checked)")
    return EXIT_OK
