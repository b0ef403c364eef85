# Copyright: llmops maintainers
# Apache-2.0 (see galaxy.yml)


class ModuleDocFragment:
    # How the minio_* modules reach a MinIO deployment (S3 API and admin API on the same port).
    DOCUMENTATION = r"""
options:
  endpoint_url:
    description:
      - The MinIO endpoint, C(https://host:port) (C(http://) only on a trusted loopback). No path.
    type: str
    required: true
  access_key:
    description:
      - Access key of an identity allowed to do what the task asks (the root user, or one with
        C(consoleAdmin) for users, policies and quotas). Never logged.
    type: str
    required: true
  secret_key:
    description:
      - Secret key of that identity. Never logged. The admin API also uses it to encrypt
        the secrets it sends (new users' secret keys).
    type: str
    required: true
  region:
    description:
      - The region the request signature names; MinIO accepts C(us-east-1) unless C(MINIO_SITE_REGION) says otherwise.
    type: str
    default: us-east-1
  ca_cert:
    description:
      - PEM bundle that signs the endpoint's TLS certificate (for the role's generated lab CA, its C(ca.pem)).
        certifi's bundle when unset.
    type: path
    aliases: [ca_file]
  validate_certs:
    description:
      - Verify the endpoint's TLS certificate. Turn off only for diagnosis.
    type: bool
    default: true
  timeout:
    description:
      - Seconds one request may wait for the server.
    type: float
    default: 60
requirements:
  - minio (the MinIO Python SDK, 7.2 or later) on the host that runs the module (usually the controller, with C(delegate_to: localhost))
"""
