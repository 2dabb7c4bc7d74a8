/**
 * S3 driver over `@aws-sdk/client-s3`, for any S3-compatible endpoint (AWS, DigitalOcean Spaces,
 * Linode/Vultr/Exoscale object storage, the embedded s3rver).
 */
import {
  S3Client,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  ListObjectsV2Command,
  DeleteObjectsCommand,
  DeleteObjectCommand,
  HeadBucketCommand,
  CreateBucketCommand,
  DeleteBucketCommand,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { PreconditionFailed, s3Error } from '../errors.ts';
import { validateBucketName } from '../bucket-name.ts';
import type { ObjectDriver, WriteOptions } from '../types.ts';

export const DRIVER_NAME = 's3';

export interface S3DriverOptions {
  /** The deployment's config bucket. */
  bucket: string;
  /** An S3Client to use; when absent one is created lazily from the options below. */
  client?: S3Client;
  /** Endpoint URL, e.g. `https://ams3.digitaloceanspaces.com` or the embedded server's URL. Absent: AWS. */
  endpoint?: string;
  /** Region (default `us-east-1`). */
  region?: string;
  /** Access key pair. Never logged. */
  credentials?: { accessKeyId: string; secretAccessKey: string };
  /** Path-style URLs (`endpoint/bucket/key`); default true when `endpoint` is set. */
  forcePathStyle?: boolean;
  /** Attempts for transient errors (5xx, throttling, timeouts), with the SDK's backoff (default 4). */
  maxAttempts?: number;
  /** Socket/request timeout in ms (default 10 000). */
  requestTimeoutMs?: number;
  /** Page size of ListObjectsV2 (default and maximum 1,000); smaller values exist for tests. */
  pageSize?: number;
  /** Whether the backend honours conditional writes; `'detect'` (default) probes when first needed. */
  conditionalWrites?: boolean | 'detect';
}

export default function s3Driver(options: S3DriverOptions): ObjectDriver & { getInstance(): S3Client } {
  const bucket = validateBucketName(options.bucket);
  let client: S3Client | undefined = options.client;
  // Offset between the server's clock (from the Date header) and ours, so ages and lease expiry
  // compare server time with server time.
  let clockOffsetMs = 0;

  function getInstance(): S3Client {
    if (client) return client;
    const config: S3ClientConfig = {
      region: options.region ?? 'us-east-1',
      endpoint: options.endpoint,
      forcePathStyle: options.forcePathStyle ?? options.endpoint !== undefined,
      credentials: options.credentials,
      maxAttempts: options.maxAttempts ?? 4,
      // Only send/check checksums where the API requires them: S3-compatible services
      // (and s3rver) reject or mis-handle the newer default CRC trailers.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      requestHandler: {
        requestTimeout: options.requestTimeoutMs ?? 10_000,
        connectionTimeout: Math.min(options.requestTimeoutMs ?? 10_000, 5_000),
      },
    };
    client = new S3Client(config);
    client.middlewareStack.add(
      (next) => async (args) => {
        const result = await next(args);
        const date = (result.response as { headers?: Record<string, string> })?.headers?.date;
        if (date) {
          const server = Date.parse(date);
          if (!Number.isNaN(server)) clockOffsetMs = server - Date.now();
        }
        return result;
      },
      { step: 'deserialize', name: 'adtServerClock' },
    );
    return client;
  }

  const send = async <T>(op: string, key: string | undefined, fn: (c: S3Client) => Promise<T>): Promise<T> => {
    try {
      return await fn(getInstance());
    } catch (e) {
      throw mapError(e, op, bucket, key, options.endpoint);
    }
  };

  return {
    name: DRIVER_NAME,
    bucket,
    flags: { conditionalWrites: options.conditionalWrites ?? 'detect' },
    getInstance,

    // https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html
    async read(key) {
      try {
        const res = await getInstance().send(new GetObjectCommand({ Bucket: bucket, Key: key }));
        const body = res.Body ? await res.Body.transformToByteArray() : new Uint8Array();
        return { body, etag: res.ETag ?? '', lastModified: res.LastModified ?? new Date(this.now()) };
      } catch (e) {
        if (isNotFound(e) && !isNoSuchBucket(e)) return null;
        throw mapError(e, 'get', bucket, key, options.endpoint);
      }
    },

    // https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadObject.html
    async head(key) {
      try {
        const res = await getInstance().send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
        return { etag: res.ETag ?? '', lastModified: res.LastModified ?? new Date(this.now()), size: res.ContentLength ?? 0 };
      } catch (e) {
        if (isNotFound(e)) {
          // HEAD has no body, so a missing bucket also looks like 404: tell them apart once.
          if (!(await this.bucketExists())) throw s3Error('NO_SUCH_BUCKET', noBucketMessage(bucket, options.endpoint));
          return null;
        }
        // HEAD answers carry no error code: a GET of the same key tells a bad key pair from a denial.
        if (statusOf(e) === 403) await this.read(key);
        throw mapError(e, 'head', bucket, key, options.endpoint);
      }
    },

    // https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutObject.html (If-None-Match / If-Match: conditional writes)
    async write(key, body, w: WriteOptions = {}) {
      try {
        const res = await getInstance().send(
          new PutObjectCommand({
            Bucket: bucket,
            Key: key,
            Body: body,
            ContentType: w.contentType ?? 'application/octet-stream',
            IfNoneMatch: w.ifNoneMatch,
            IfMatch: w.ifMatch,
          }),
        );
        return { etag: res.ETag ?? '' };
      } catch (e) {
        const status = statusOf(e);
        // 412 PreconditionFailed; 409 ConditionalRequestConflict (a concurrent conditional write won);
        // 404 on If-Match when the object is gone.
        if ((w.ifNoneMatch || w.ifMatch) && (status === 412 || status === 409 || (w.ifMatch && isNotFound(e) && !isNoSuchBucket(e)))) {
          throw new PreconditionFailed(key);
        }
        throw mapError(e, 'put', bucket, key, options.endpoint);
      }
    },

    // https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListObjectsV2.html (all pages)
    async list(prefix) {
      const out: string[] = [];
      let token: string | undefined;
      // Bounded: 100,000 pages is 100 million keys.
      for (let page = 0; page < 100_000; page++) {
        const res = await send('list', prefix, (c) =>
          c.send(
            new ListObjectsV2Command({
              Bucket: bucket,
              Prefix: prefix || undefined,
              ContinuationToken: token,
              MaxKeys: options.pageSize ?? 1000,
            }),
          ),
        );
        for (const o of res.Contents ?? []) if (o.Key !== undefined) out.push(o.Key);
        if (!res.IsTruncated) return out;
        token = res.NextContinuationToken;
        if (!token) throw s3Error('BACKEND', `list "${prefix}" in bucket "${bucket}": truncated page without a continuation token`);
      }
      throw s3Error('BACKEND', `list "${prefix}" in bucket "${bucket}": too many pages`);
    },

    // https://docs.aws.amazon.com/AmazonS3/latest/API/API_DeleteObjects.html (at most 1,000 keys a call)
    async remove(keys) {
      if (keys.length === 1) {
        // https://docs.aws.amazon.com/AmazonS3/latest/API/API_DeleteObject.html (one key: one cheaper call)
        await send('delete', keys[0], (c) => c.send(new DeleteObjectCommand({ Bucket: bucket, Key: keys[0] })));
        return;
      }
      for (let i = 0; i < keys.length; i += 1000) {
        const batch = keys.slice(i, i + 1000);
        const res = await send('delete', batch[0], (c) =>
          c.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } })),
        );
        const failed = (res.Errors ?? []).filter((e) => e.Code !== 'NoSuchKey');
        if (failed.length) {
          throw s3Error(
            'BACKEND',
            (
              `delete in bucket "${bucket}" failed for ${failed.length} key(s), ` +
              `first "${failed[0]?.Key}": ${failed[0]?.Code} ${failed[0]?.Message ?? ''}`
            ).trim(),
          );
        }
      }
    },

    // https://docs.aws.amazon.com/AmazonS3/latest/API/API_CreateBucket.html
    async ensureBucket() {
      if (await this.bucketExists()) return;
      try {
        await getInstance().send(new CreateBucketCommand({ Bucket: bucket }));
      } catch (e) {
        const name = (e as { name?: string }).name;
        if (name === 'BucketAlreadyOwnedByYou') return;
        if (name === 'BucketAlreadyExists') {
          throw s3Error(
            'INVALID_BUCKET_NAME',
            `bucket "${bucket}" is taken by another account on this endpoint: choose another site name or build identifier`,
            { exitCode: 2 },
          );
        }
        throw mapError(e, 'create bucket', bucket, undefined, options.endpoint);
      }
    },

    // https://docs.aws.amazon.com/AmazonS3/latest/API/API_DeleteBucket.html
    async deleteBucket() {
      try {
        await getInstance().send(new DeleteBucketCommand({ Bucket: bucket }));
      } catch (e) {
        if (isNotFound(e)) return;
        throw mapError(e, 'delete bucket', bucket, undefined, options.endpoint);
      }
    },

    // https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadBucket.html
    async bucketExists() {
      try {
        await getInstance().send(new HeadBucketCommand({ Bucket: bucket }));
        return true;
      } catch (e) {
        if (isNotFound(e)) return false;
        // HEAD answers carry no error code: a one-key listing tells a bad key pair from a denial.
        if (statusOf(e) === 403) await send('list', undefined, (c) => c.send(new ListObjectsV2Command({ Bucket: bucket, MaxKeys: 1 })));
        throw mapError(e, 'head bucket', bucket, undefined, options.endpoint);
      }
    },

    now() {
      return Date.now() + clockOffsetMs;
    },

    async dispose() {
      if (client && !options.client) client.destroy();
      client = options.client;
    },
  };
}

// --- Internal helpers ---

function statusOf(e: unknown): number | undefined {
  return (e as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
}

function isNotFound(e: unknown): boolean {
  const name = (e as { name?: string })?.name;
  return name === 'NoSuchKey' || name === 'NotFound' || name === 'NoSuchBucket' || statusOf(e) === 404;
}

function isNoSuchBucket(e: unknown): boolean {
  return (e as { name?: string; Code?: string })?.name === 'NoSuchBucket' || (e as { Code?: string })?.Code === 'NoSuchBucket';
}

function noBucketMessage(bucket: string, endpoint?: string): string {
  return `bucket "${bucket}" does not exist at ${endpoint ?? 'AWS S3'}: run the build (deploy) first, or check the bucket name and region`;
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
]);

/** Maps SDK errors to our codes (branch on `name` and the HTTP status, per the SDK's error model). */
function mapError(e: unknown, op: string, bucket: string, key: string | undefined, endpoint?: string) {
  const err = e as { name?: string; code?: string; message?: string; Code?: string };
  const status = statusOf(e);
  const what = `${op} ${key !== undefined ? `"${key}" ` : ''}in bucket "${bucket}"`;
  const name = err.name ?? '';
  if (name === 'InvalidAccessKeyId' || name === 'SignatureDoesNotMatch' || name === 'InvalidToken' || name === 'ExpiredToken') {
    return s3Error('AUTH_FAILED', `${what}: the endpoint refused the credentials (${name || status}): check the access key and secret`, {
      cause: e,
    });
  }
  if (name === 'AccessDenied' || status === 403) {
    return s3Error('ACCESS_DENIED', `${what}: access denied: the credentials are not allowed to do this (check the key's bucket policy)`, {
      cause: e,
    });
  }
  if (isNoSuchBucket(e) || (status === 404 && (op === 'list' || op === 'put' || op === 'delete'))) {
    return s3Error('NO_SUCH_BUCKET', noBucketMessage(bucket, endpoint), { cause: e });
  }
  const code = err.code ?? (err as { cause?: { code?: string } }).cause?.code;
  if (
    (code && NETWORK_CODES.has(code)) ||
    name === 'TimeoutError' ||
    name === 'RequestTimeout' ||
    /ECONNREFUSED|socket hang up|timed? ?out/i.test(err.message ?? '')
  ) {
    return s3Error(
      'UNREACHABLE',
      `${what}: cannot reach ${endpoint ?? 'AWS S3'} (${code ?? name}) after retries: check the endpoint URL and the network`,
      { cause: e },
    );
  }
  return s3Error('BACKEND', `${what}: ${name || 'error'}${status ? ` (HTTP ${status})` : ''}: ${err.message ?? ''}`.trim(), { cause: e });
}
