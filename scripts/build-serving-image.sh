#!/usr/bin/env bash
# Builds the vLLM CPU serving image for the lab's Kubernetes cluster locally with podman (no
# registry) and saves it as an OCI archive the site mirror loads:
#   .cache/serving-image/llmops-vllm-cpu_<tag>.oci.tar
#   .cache/serving-image/image.json   {"name", "tag", "archive", "sha256", "inputs", "build_seconds", "size_bytes"}
# image.json is one entry of the site mirror's image list ({name, tag, archive}); in the mirror's
# registry the image is <mirror>:5000/llmops/vllm-cpu:<tag>.
#
# Layers, most stable first, so a change to the llmops code rebuilds only the last one:
#   1. the lab image (localhost/llmops/debian12-systemd) + python3-venv and libnuma1 (vLLM's CPU
#      build loads it for thread binding);
#   2. /opt/llmops/venv: exactly the wheelhouse's pinned set (scripts/build-wheelhouse.sh), installed
#      as roles/model_serving does (--no-index --no-deps), the wheelhouse bind-mounted, not copied;
#   3. the llmops CLI's `model` command and the collection's model_cache/s3_client (the init
#      container's `llmops model fetch`; standard library only at run time).
# The tag is the engine version plus a hash of every input, so a changed image is a new tag and the
# Deployment rolls; the same inputs give the same tag and the script returns at once.
#   scripts/build-serving-image.sh [--force]
set -euo pipefail
source "$(dirname "$0")/env.sh"

ROOT="$LLMOPS_ROOT"
WHEELHOUSE="${LLMOPS_WHEELHOUSE:-$ROOT/.cache/wheelhouse}"
OUT="$ROOT/.cache/serving-image"
NAME="llmops/vllm-cpu"
ENGINE_VERSION="0.32.0"
MODULE_UTILS="collections/ansible_collections/llmops/datacenter/plugins/module_utils"

[[ -f "$WHEELHOUSE/requirements.txt" ]] || {
  echo "no wheelhouse at $WHEELHOUSE: run scripts/build-wheelhouse.sh first" >&2
  exit 2
}
podman image exists "$LLMOPS_IMAGE" || {
  echo "the lab image $LLMOPS_IMAGE is missing: run scripts/build-image.sh first" >&2
  exit 2
}

context="$(mktemp -d /var/tmp/llmops-serving-image.XXXXXX)"
trap 'rm -rf "$context"' EXIT

# Layer 3's content: the `llmops model` command (it imports no other llmops module and nothing
# outside the standard library for fetch) and the two module_utils the fetch reuses. Only these
# files, so an edit elsewhere in the package neither changes the tag nor rolls the pods.
mkdir -p "$context/app/lib/ansible_collections/llmops/datacenter/plugins/module_utils" \
  "$context/app/lib/llmops/commands"
for file in llmops/__init__.py llmops/cli.py llmops/commands/__init__.py llmops/commands/model.py; do
  cp "$ROOT/src/$file" "$context/app/lib/$file"
done
cp "$ROOT/$MODULE_UTILS/model_cache.py" "$ROOT/$MODULE_UTILS/s3_client.py" \
  "$context/app/lib/ansible_collections/llmops/datacenter/plugins/module_utils/"
cat > "$context/app/llmops" <<'EOF'
#!/opt/llmops/venv/bin/python
import sys

from llmops.cli import main

sys.exit(main())
EOF

cat > "$context/Containerfile" <<EOF
FROM $LLMOPS_IMAGE
RUN apt-get update \\
 && apt-get install -y --no-install-recommends python3-venv libnuma1 \\
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb
# requirements.txt's sha256 is in this layer's command, so a new wheelhouse lock rebuilds it.
RUN python3 -m venv /opt/llmops/venv \\
 && /opt/llmops/venv/bin/pip install --quiet --no-cache-dir --no-index --no-deps \\
      --find-links /wheelhouse -r /wheelhouse/requirements.txt \\
 && cp /wheelhouse/requirements.txt /opt/llmops/venv/llmops-requirements.txt \\
 && echo "$(sha256sum "$WHEELHOUSE/requirements.txt" | cut -d' ' -f1)" > /opt/llmops/venv/llmops-requirements.sha256
COPY app/lib /opt/llmops/lib
COPY app/llmops /opt/llmops/venv/bin/llmops
RUN chmod 0755 /opt/llmops/venv/bin/llmops \\
 && echo /opt/llmops/lib > /opt/llmops/venv/lib/python3.11/site-packages/llmops-lib.pth \\
 && /opt/llmops/venv/bin/llmops model fetch --help > /dev/null \\
 && /opt/llmops/venv/bin/python -c "import vllm.entrypoints.openai.api_server"
ENV PATH=/opt/llmops/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \\
    PYTHONDONTWRITEBYTECODE=1
# The lab image stops systemd with SIGRTMIN+3; the server stops on SIGTERM (the kubelet sends the
# image's stop signal, and vLLM ignores the other one until it is killed at the grace period's end).
STOPSIGNAL SIGTERM
# The pod's command names the server; without one the image runs nothing.
ENTRYPOINT []
CMD ["python3", "-m", "vllm.entrypoints.openai.api_server", "--help"]
EOF

# Every input of the image: the base image, the lock, the Containerfile and the copied sources.
inputs="$( {
  podman image inspect --format '{{.Id}}' "$LLMOPS_IMAGE"
  sha256sum "$WHEELHOUSE/requirements.txt" | cut -d' ' -f1
  cd "$context" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
} | sha256sum | cut -c1-12)"
TAG="$ENGINE_VERSION-$inputs"
ARCHIVE="$OUT/llmops-vllm-cpu_$TAG.oci.tar"

if [[ "${1:-}" != "--force" && -f "$OUT/image.json" && -f "$ARCHIVE" ]] \
   && grep -q "\"tag\": \"$TAG\"" "$OUT/image.json"; then
  echo "serving image already built: $NAME:$TAG ($ARCHIVE)"
  exit 0
fi

mkdir -p "$OUT"
start=$SECONDS
# -v: the wheelhouse (~850 MB) is read during the build, never part of the context or a layer.
podman build --quiet --layers --volume "$WHEELHOUSE:/wheelhouse:ro,Z" \
  --tag "localhost/$NAME:$TAG" --file "$context/Containerfile" "$context" >/dev/null
build_seconds=$((SECONDS - start))
size_bytes="$(podman image inspect --format '{{.Size}}' "localhost/$NAME:$TAG")"

rm -f "$OUT"/llmops-vllm-cpu_*.oci.tar
start=$SECONDS
podman save --format oci-archive --output "$ARCHIVE.tmp" "localhost/$NAME:$TAG"
mv "$ARCHIVE.tmp" "$ARCHIVE"
save_seconds=$((SECONDS - start))
archive_sha256="$(sha256sum "$ARCHIVE" | cut -d' ' -f1)"

python3 - "$OUT/image.json" <<EOF
import json, os, sys
json.dump({"name": "$NAME", "tag": "$TAG", "archive": "$ARCHIVE", "sha256": "$archive_sha256",
           "inputs": "$inputs", "engine": "vllm-cpu==$ENGINE_VERSION",
           "build_seconds": $build_seconds, "save_seconds": $save_seconds,
           "size_bytes": $size_bytes, "archive_bytes": os.path.getsize("$ARCHIVE")},
          open(sys.argv[1], "w"), indent=1)
EOF
echo "built $NAME:$TAG in ${build_seconds} s ($((size_bytes / 1024 / 1024)) MiB), saved in ${save_seconds} s: $ARCHIVE"
