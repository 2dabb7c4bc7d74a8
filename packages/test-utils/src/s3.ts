/**
 * S3 as tests use it: an SDK client for a local S3 server (the embedded s3rver, a proxy in front
 * of it), a quiet SDK, and a config file for Debian's s3cmd (the original toolkit's client).
 */
import { chmod, writeFile } from 'node:fs/promises';
import { S3Client } from '@aws-sdk/client-s3';

/** s3rver's default key pair, what the embedded S3 server accepts unless told otherwise. */
export const S3RVER_CREDENTIALS: Readonly<{ accessKeyId: string; secretAccessKey: string }> = Object.freeze({
  accessKeyId: 'S3RVER',
  secretAccessKey: 'S3RVER',
});

export interface TestS3ClientOptions {
  /** The server's URL, e.g. `http://127.0.0.1:4568` (`EmbeddedS3.endpoint`). */
  endpoint: string;
  /** The key pair; s3rver's default ({@link S3RVER_CREDENTIALS}) when left out. */
  credentials?: { accessKeyId: string; secretAccessKey: string };
  /** The signing region; `us-east-1` when left out. */
  region?: string;
  /** Attempts per request, the first included (the SDK's default, 3, when left out). */
  maxAttempts?: number;
}

/**
 * An `S3Client` for a local S3 server: path-style addressing (no bucket subdomains on 127.0.0.1),
 * and checksums only where the API requires them (s3rver rejects or mis-handles the SDK's newer
 * default CRC trailers), as the config store's S3 driver does. Calls {@link quietAwsSdk} first.
 * The caller destroys it (`client.destroy()`).
 *
 * https://docs.aws.amazon.com/AWSJavaScriptSDK/v3/latest/Package/-aws-sdk-client-s3/Interface/S3ClientConfig/
 */
export function testS3Client(options: TestS3ClientOptions): S3Client {
  quietAwsSdk();
  return new S3Client({
    endpoint: options.endpoint,
    region: options.region ?? 'us-east-1',
    forcePathStyle: true,
    credentials: options.credentials ?? { ...S3RVER_CREDENTIALS },
    ...(options.maxAttempts === undefined ? {} : { maxAttempts: options.maxAttempts }),
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

/**
 * Silences the SDK's notice that this Node version will lose support (printed once per process
 * when a client is made), so test and bench output holds only what they print. A value already
 * set (by the operator) is kept.
 */
export function quietAwsSdk(): void {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
}

/**
 * Writes an s3cmd config file (mode 0600: the key pair goes there, never on a command line) for
 * the S3 server at `endpoint`, path-style, over http or https as the endpoint says. Use it as
 * `s3cmd -c <path> ...`.
 *
 * https://s3tools.org/kb/item14.htm
 */
export async function writeS3cmdConfig(
  path: string,
  options: { endpoint: string; credentials?: { accessKeyId: string; secretAccessKey: string } },
): Promise<void> {
  const url = new URL(options.endpoint);
  const credentials = options.credentials ?? S3RVER_CREDENTIALS;
  const lines = [
    '[default]',
    `access_key = ${credentials.accessKeyId}`,
    `secret_key = ${credentials.secretAccessKey}`,
    `host_base = ${url.host}`,
    // The bucket goes in the path, not in a subdomain (as forcePathStyle in the SDK).
    `host_bucket = ${url.host}`,
    `use_https = ${url.protocol === 'https:' ? 'True' : 'False'}`,
  ];
  await writeFile(path, lines.join('\n') + '\n', { mode: 0o600 });
  // `mode` applies only to a new file: an existing one keeps its own.
  await chmod(path, 0o600);
}
