"""Write a small model directory: the lab model's config.json, a tokenizer file and four shards."""

import hashlib
import json
import pathlib
import sys

target, seed = pathlib.Path(sys.argv[1]), sys.argv[2]
root = pathlib.Path(__file__).resolve().parents[2]
config = root / "inventories/lab/group_vars/all/models/smollm2-135m-instruct/config.json"
target.mkdir(parents=True, exist_ok=True)
(target / "tokenizer.json").write_text(json.dumps({"seed": seed}))
for index in range(4):
    block = hashlib.sha256(f"{seed}-{index}".encode()).digest() * 32768  # 1 MiB per shard
    (target / f"model-{index + 1:05d}-of-00004.safetensors").write_bytes(block)
(target / "config.json").write_text(config.read_text())
