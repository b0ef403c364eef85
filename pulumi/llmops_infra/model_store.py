"""ModelStore: the S3 bucket that holds model weights, and the read-only role serving pods assume (IRSA)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pulumi_aws as aws

import pulumi

# Everything a model server needs to download weights, and nothing that writes or deletes.
READ_ONLY_BUCKET_ACTIONS = ("s3:ListBucket",)
READ_ONLY_OBJECT_ACTIONS = ("s3:GetObject",)
READ_ONLY_KEY_ACTIONS = ("kms:Decrypt",)


def tls_only_policy(bucket_arn: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "DenyPlainHttp",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": [bucket_arn, f"{bucket_arn}/*"],
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                }
            ],
        }
    )


def irsa_trust_policy(oidc_provider_arn: str, oidc_issuer: str, service_accounts: list[str]) -> str:
    """Only the named Kubernetes service accounts (namespace/name) may assume the role, and only via STS."""
    issuer_host = oidc_issuer.removeprefix("https://")
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Federated": oidc_provider_arn},
                    "Action": "sts:AssumeRoleWithWebIdentity",
                    "Condition": {
                        "StringEquals": {
                            f"{issuer_host}:aud": "sts.amazonaws.com",
                            f"{issuer_host}:sub": [f"system:serviceaccount:{sa}" for sa in service_accounts],
                        }
                    },
                }
            ],
        }
    )


def read_only_policy(bucket_arn: str, key_arn: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Sid": "ListModels", "Effect": "Allow", "Action": list(READ_ONLY_BUCKET_ACTIONS), "Resource": bucket_arn},
                {
                    "Sid": "ReadModels",
                    "Effect": "Allow",
                    "Action": list(READ_ONLY_OBJECT_ACTIONS),
                    "Resource": f"{bucket_arn}/*",
                },
                {"Sid": "DecryptModels", "Effect": "Allow", "Action": list(READ_ONLY_KEY_ACTIONS), "Resource": key_arn},
            ],
        }
    )


@dataclass
class ModelStoreArgs:
    oidc_provider_arn: pulumi.Input[str]
    oidc_issuer: pulumi.Input[str]
    # "namespace/name" of every service account allowed to read the models.
    reader_service_accounts: list[str]
    noncurrent_version_days: int = 30
    tags: dict[str, str] = field(default_factory=dict)


class ModelStore(pulumi.ComponentResource):
    bucket_name: pulumi.Output[str]
    bucket_arn: pulumi.Output[str]
    key_arn: pulumi.Output[str]
    reader_role_arn: pulumi.Output[str]

    def __init__(self, name: str, args: ModelStoreArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llmops:index:ModelStore", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        key = aws.kms.Key(
            f"{name}-key",
            description="Encryption of model artifacts",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            tags=args.tags,
            opts=child,
        )
        bucket = aws.s3.Bucket(f"{name}-bucket", force_destroy=False, tags=args.tags, opts=child)
        # Owner-enforced ownership turns ACLs off entirely: access is decided by policies alone.
        aws.s3.BucketOwnershipControls(
            f"{name}-ownership",
            bucket=bucket.id,
            rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
            opts=child,
        )
        public_access_block = aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            bucket=bucket.id,
            rules=[
                aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                    apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                        sse_algorithm="aws:kms", kms_master_key_id=key.arn
                    ),
                    # Bucket keys cut KMS requests (and cost) when servers read thousands of weight shards.
                    bucket_key_enabled=True,
                )
            ],
            opts=child,
        )
        versioning = aws.s3.BucketVersioning(
            f"{name}-versioning",
            bucket=bucket.id,
            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"),
            opts=child,
        )
        # Versioning protects against an overwritten checkpoint; old versions still cost, so they expire.
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle",
            bucket=bucket.id,
            rules=[
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="expire-replaced-model-versions",
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                    noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                        noncurrent_days=args.noncurrent_version_days
                    ),
                ),
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="abort-stalled-uploads",
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                    abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                        days_after_initiation=7
                    ),
                ),
            ],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[versioning]),
        )
        aws.s3.BucketPolicy(
            f"{name}-tls-only",
            bucket=bucket.id,
            policy=bucket.arn.apply(tls_only_policy),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[public_access_block]),
        )

        reader_role = aws.iam.Role(
            f"{name}-reader",
            description="Read-only access to model artifacts for serving pods (IRSA)",
            assume_role_policy=pulumi.Output.all(args.oidc_provider_arn, args.oidc_issuer).apply(
                lambda values: irsa_trust_policy(values[0], values[1], args.reader_service_accounts)
            ),
            tags=args.tags,
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-reader",
            role=reader_role.id,
            policy=pulumi.Output.all(bucket.arn, key.arn).apply(lambda values: read_only_policy(values[0], values[1])),
            opts=child,
        )

        self.bucket_name = bucket.bucket
        self.bucket_arn = bucket.arn
        self.key_arn = key.arn
        self.reader_role_arn = reader_role.arn
        self.register_outputs(
            {"bucket_name": self.bucket_name, "bucket_arn": self.bucket_arn, "reader_role_arn": self.reader_role_arn}
        )
