#!/usr/bin/python
# Copyright: llmops maintainers
# Apache License 2.0 (see galaxy.yml)

DOCUMENTATION = r"""
---
module: model_fetch
short_description: Deliver a model version from the object store into the node's cache, every file sha256-verified
version_added: "0.1.0"
description:
  - Reads the manifest C(s3://<bucket>/<name>/<version>/manifest.json) written by
    C(llmops model push) and downloads every file it lists (C(<name>/<version>/files/<path>)) into
    O(cache_dir)C(/<name>/<version>), in parallel, resuming partial downloads with HTTP range requests.
  - Every file's size and sha256 must match the manifest. Files land in a staging directory
    (O(cache_dir)C(/.staging)) and the version appears in place in one rename only when all match;
    on any mismatch the module fails naming the file and the previous copy stays untouched.
  - When the cached copy was verified against the same manifest and its files are whole, nothing
    is downloaded (C(changed=false)).
  - Keeps at most O(keep_versions) versions of the model, evicting the oldest fetched first;
    the version fetched is never evicted.
  - Runs on the target with the Python standard library only (no boto3 on GPU nodes).
author:
  - llmops maintainers
extends_documentation_fragment:
  - llmops.datacenter.object_store
options:
  name:
    description: Model name, as pushed (C(llmops model push --name)).
    type: str
    required: true
  version:
    description: Model version, as pushed (C(llmops model push --version)).
    type: str
    required: true
  cache_dir:
    description: The node's model cache; the model lands in C(<cache_dir>/<name>/<version>).
    type: path
    default: /var/lib/llmops/models
  parallel:
    description: Files downloaded at the same time.
    type: int
    default: 4
  keep_versions:
    description: Versions of this model kept in the cache, the fetched one included.
    type: int
    default: 2
  rehash:
    description:
      - Re-read and hash every cached file to decide whether the copy is current, instead of
        comparing the manifest and file sizes. Slower; catches silent disk corruption.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    details: The manifest is read and compared; nothing is downloaded, written or evicted.
  diff_mode:
    support: full
    details: Shows whether the version was present and verified before and after.
notes:
  - The store's credentials should be the tenant's read-only key; see the collection's object-store guide.
"""

EXAMPLES = r"""
- name: Fetch SmolLM2 for team-a into the node cache
  llmops.datacenter.model_fetch:
    name: smollm2-135m-instruct
    version: "2024-11-q4-bf16"
    endpoint_url: "{{ object_store_endpoint_url }}"
    ca_file: /etc/llmops/object-store-ca.pem
    bucket: "{{ object_store_tenants['team-a'].bucket }}"
    access_key: "{{ object_store_tenants['team-a'].read_access_key }}"
    secret_key: "{{ object_store_tenants['team-a'].read_secret_key }}"
  register: fetched

- name: Re-verify every byte of the cached copy
  llmops.datacenter.model_fetch:
    name: smollm2-135m-instruct
    version: "2024-11-q4-bf16"
    endpoint_url: "{{ object_store_endpoint_url }}"
    bucket: llmops-team-a
    access_key: "{{ team_a_read_key }}"
    secret_key: "{{ team_a_read_secret }}"
    rehash: true
"""

RETURN = r"""
path:
  description: Directory of the verified model on the node (what a serving engine loads).
  returned: success
  type: str
  sample: /var/lib/llmops/models/smollm2-135m-instruct/2024-11-q4-bf16
manifest:
  description: What the manifest says about the model.
  returned: success
  type: dict
  sample:
    name: smollm2-135m-instruct
    version: 2024-11-q4-bf16
    files: 7
    total_bytes: 272654012
    architecture: {architectures: [LlamaForCausalLM], model_type: llama, num_hidden_layers: 30}
downloaded_bytes:
  description: Bytes transferred from the store in this run (0 when the copy was current).
  returned: success
  type: int
  sample: 272654012
reused_files:
  description: Files found complete in the staging directory from an interrupted run and reused.
  returned: success
  type: int
  sample: 0
evicted:
  description: Cached versions removed (or that would be, in check mode) to respect O(keep_versions).
  returned: success
  type: list
  elements: str
  sample: [/var/lib/llmops/models/smollm2-135m-instruct/2024-10]
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.llmops.datacenter.plugins.module_utils.model_cache import (
    FetchError,
    client_factory_for,
    fetch_model,
)
from ansible_collections.llmops.datacenter.plugins.module_utils.s3_client import S3Error

OBJECT_STORE_OPTIONS = {
    "endpoint_url": {"type": "str", "required": True},
    "bucket": {"type": "str", "required": True},
    "access_key": {"type": "str", "required": True, "no_log": True},
    "secret_key": {"type": "str", "required": True, "no_log": True},
    "region": {"type": "str", "default": "us-east-1"},
    "ca_file": {"type": "path"},
    "validate_certs": {"type": "bool", "default": True},
    "timeout": {"type": "float", "default": 60},
}


def main():
    module = AnsibleModule(
        argument_spec={
            **OBJECT_STORE_OPTIONS,
            "name": {"type": "str", "required": True},
            "version": {"type": "str", "required": True},
            "cache_dir": {"type": "path", "default": "/var/lib/llmops/models"},
            "parallel": {"type": "int", "default": 4},
            "keep_versions": {"type": "int", "default": 2},
            "rehash": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    p = module.params
    try:
        factory = client_factory_for(
            p["endpoint_url"], p["access_key"], p["secret_key"], p["region"], p["ca_file"], p["validate_certs"], p["timeout"]
        )
        result = fetch_model(
            factory, p["bucket"], p["name"], p["version"], p["cache_dir"],
            parallel=p["parallel"], keep_versions=p["keep_versions"], rehash=p["rehash"], check_mode=module.check_mode,
        )
    except (FetchError, S3Error) as error:
        module.fail_json(msg=str(error))
    except OSError as error:
        module.fail_json(msg=f"cache_dir {p['cache_dir']}: {error}")
    if not module._diff:
        result.pop("diff")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
