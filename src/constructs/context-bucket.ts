import { Construct } from "constructs";
import { S3Bucket } from "@cdktf/provider-aws/lib/s3-bucket/index.js";
import { S3BucketPublicAccessBlock } from "@cdktf/provider-aws/lib/s3-bucket-public-access-block/index.js";
import { S3BucketServerSideEncryptionConfigurationA } from "@cdktf/provider-aws/lib/s3-bucket-server-side-encryption-configuration/index.js";
import { S3BucketOwnershipControls } from "@cdktf/provider-aws/lib/s3-bucket-ownership-controls/index.js";
import { S3BucketLifecycleConfiguration } from "@cdktf/provider-aws/lib/s3-bucket-lifecycle-configuration/index.js";
import { S3BucketPolicy } from "@cdktf/provider-aws/lib/s3-bucket-policy/index.js";
import { S3BucketVersioningA } from "@cdktf/provider-aws/lib/s3-bucket-versioning/index.js";

export const CONTEXT_PREFIX = "contexts/";

export interface ContextBucketProps {
  /** Bucket name prefix (S3 adds a unique suffix). */
  readonly namePrefix: string;
  /** Delete a replaced context archive this many days after Terraform removed it. */
  readonly expireAfterDays: number;
}

/** The private bucket that holds build-context archives: no public access, SSE, TLS only. */
export class ContextBucket extends Construct {
  readonly bucket: S3Bucket;

  constructor(scope: Construct, id: string, props: ContextBucketProps) {
    super(scope, id);
    this.bucket = new S3Bucket(this, "bucket", { bucketPrefix: props.namePrefix, forceDestroy: true });
    new S3BucketPublicAccessBlock(this, "public-access", {
      bucket: this.bucket.id,
      blockPublicAcls: true,
      blockPublicPolicy: true,
      ignorePublicAcls: true,
      restrictPublicBuckets: true,
    });
    new S3BucketOwnershipControls(this, "ownership", {
      bucket: this.bucket.id,
      rule: { objectOwnership: "BucketOwnerEnforced" },
    });
    new S3BucketServerSideEncryptionConfigurationA(this, "encryption", {
      bucket: this.bucket.id,
      rule: [{ applyServerSideEncryptionByDefault: { sseAlgorithm: "AES256" }, bucketKeyEnabled: true }],
    });
    // Terraform deletes an image's previous archive when its content-addressed key changes; with
    // versioning that leaves a noncurrent version, kept a while (a failed build can be retried
    // from the console) and then expired. Current archives never expire, so no plan ever finds
    // one missing and wants to upload it again.
    const versioning = new S3BucketVersioningA(this, "versioning", {
      bucket: this.bucket.id,
      versioningConfiguration: { status: "Enabled" },
    });
    new S3BucketLifecycleConfiguration(this, "lifecycle", {
      bucket: this.bucket.id,
      rule: [
        {
          id: "expire-old-contexts",
          status: "Enabled",
          filter: [{ prefix: CONTEXT_PREFIX }],
          noncurrentVersionExpiration: [{ noncurrentDays: props.expireAfterDays }],
          expiration: [{ expiredObjectDeleteMarker: true }],
          abortIncompleteMultipartUpload: [{ daysAfterInitiation: 1 }],
        },
      ],
      dependsOn: [versioning],
    });
    new S3BucketPolicy(this, "tls-only", {
      bucket: this.bucket.id,
      policy: JSON.stringify({
        Version: "2012-10-17",
        Statement: [
          {
            Sid: "DenyInsecureTransport",
            Effect: "Deny",
            Principal: "*",
            Action: "s3:*",
            Resource: [this.bucket.arn, `${this.bucket.arn}/*`],
            Condition: { Bool: { "aws:SecureTransport": "false" } },
          },
        ],
      }),
    });
  }

  get name(): string {
    return this.bucket.bucket;
  }
  get arn(): string {
    return this.bucket.arn;
  }
}
