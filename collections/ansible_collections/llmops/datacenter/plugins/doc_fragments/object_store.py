# Copyright: llmops maintainers
# Apache-2.0 (see galaxy.yml)


class ModuleDocFragment:
    # How a module reaches the collection's object store (SeaweedFS, MinIO or any S3 service).
    DOCUMENTATION = r"""
options:
  endpoint_url:
    description:
      - The S3 endpoint, C(https://host:port) (or C(http://) on a trusted loopback). Path-style
        requests are used, so no wildcard DNS is needed.
      - Usually the inventory's C(object_store_endpoint_url).
    type: str
    required: true
  bucket:
    description:
      - The bucket that holds the models, one per tenant (C(object_store_tenants[tenant].bucket)).
    type: str
    required: true
  access_key:
    description:
      - Access key of the tenant's read-only identity. A key that may write is accepted but not needed.
    type: str
    required: true
  secret_key:
    description:
      - Secret key of that identity. Never logged.
    type: str
    required: true
  region:
    description:
      - The region the signature names; SeaweedFS and MinIO accept C(us-east-1).
    type: str
    default: us-east-1
  ca_file:
    description:
      - PEM bundle on the target that signs the endpoint's TLS certificate. The system trust store when unset.
    type: path
  validate_certs:
    description:
      - Verify the endpoint's TLS certificate. Turn off only for diagnosis.
    type: bool
    default: true
  timeout:
    description:
      - Seconds one request may wait for the store.
    type: float
    default: 60
"""
