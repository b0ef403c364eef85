"""`llmops model push`: upload a model directory (safetensors, config, tokenizer) with its manifest.

    llmops model push DIR --name N --version V --bucket B --endpoint-url URL [--ca-file PEM]

Credentials come from the environment, never from the command line (it shows in `ps`):
LLMOPS_S3_ACCESS_KEY and LLMOPS_S3_SECRET_KEY (a key that may write the bucket).
The manifest lists every file's path, size and sha256 and the architecture read from
config.json; it is written last, so a version exists only once all its files do. Pushing the
same files again changes nothing; different files under an existing name/version are refused.
Exit codes: 0 pushed or already there; 2 invalid input or refused; 1 the store failed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import urllib3

from llmops.artifacts import ManifestError, ObjectStore, PushError, push_model

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


def run_push(args: argparse.Namespace) -> int:
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
