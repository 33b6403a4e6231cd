import { Construct } from "constructs";
import { S3Bucket } from "@cdktf/provider-aws/lib/s3-bucket/index.js";
import { S3BucketPublicAccessBlock } from "@cdktf/provider-aws/lib/s3-bucket-public-access-block/index.js";
import { S3BucketServerSideEncryptionConfigurationA } from "@cdktf/provider-aws/lib/s3-bucket-server-side-encryption-configuration/index.js";
import { S3BucketOwnershipControls } from "@cdktf/provider-aws/lib/s3-bucket-ownership-controls/index.js";
import { S3BucketLifecycleConfiguration } from "@cdktf/provider-aws/lib/s3-bucket-lifecycle-configuration/index.js";
import { S3BucketPolicy } from "@cdktf/provider-aws/lib/s3-bucket-policy/index.js";

export const CONTEXT_PREFIX = "contexts/";

export interface ContextBucketProps {
  /** Bucket name prefix (S3 adds a unique suffix). */
  readonly namePrefix: string;
}

/** The private bucket that holds build-context archives: no public access, SSE, TLS only. */
export class ContextBucket extends Construct {
  readonly bucket: S3Bucket;

  constructor(scope: Construct, id: string, props: ContextBucketProps) {
    super(scope, id);
    // Only build inputs live here, all reproducible from the monorepo: destroy may empty it.
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
    // No versioning and no expiry of current archives. Terraform owns every archive: when an
    // image's content changes its key changes, and the AWS provider deletes the old object (all
    // of its versions, were the bucket versioned: resourceObjectDelete in the provider's
    // internal/service/s3/object.go), so the bucket holds exactly the current archives. Expiring
    // those would gain nothing: the provider's refresh drops a missing object from state and
    // the next plan uploads it again, so every plan after maxAgeDays would show uploads, and a
    // build started by that apply could race the expiry. A build reads its archive only while it
    // runs, but a retry (a tainted build, a base image change, CodeBuild's "Retry build") reads
    // it again later. Only abandoned multipart uploads (an interrupted upload) are cleaned up.
    new S3BucketLifecycleConfiguration(this, "lifecycle", {
      bucket: this.bucket.id,
      rule: [
        {
          id: "abort-incomplete-uploads",
          status: "Enabled",
          filter: [{ prefix: CONTEXT_PREFIX }],
          abortIncompleteMultipartUpload: [{ daysAfterInitiation: 1 }],
        },
      ],
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
