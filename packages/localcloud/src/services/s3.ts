// s3rver ships no types: this reference brings ours to every package that imports this file.
// eslint-disable-next-line @typescript-eslint/triple-slash-reference
/// <reference path="./_s3rver.d.ts" />
/**
 * The embedded S3 server of the local provider and the tests: `s3rver` (filesystem backed) on an
 * address of ours, with three fixes at our side for what s3rver 3.7.1 gets wrong on this machine:
 *
 * 1. **Paginated ListObjectsV2** answered HTTP 500: s3rver makes continuation tokens with DES,
 *    which OpenSSL 3 (Node 18+) no longer offers. We answer `list-type=2` ourselves from its store,
 *    with an opaque base64url token.
 * 2. **Conditional writes** (`If-None-Match: *`, `If-Match: <etag>`) were ignored. We check them,
 *    with the check and the write serialised per key, and answer 412 / 404 like AWS S3
 *    (https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html).
 * 3. **Torn reads**: its putObject resolves before the file is flushed, so a GET right after a PUT
 *    could read a partial object. We write to a temporary file, wait for it, and rename it into place.
 *
 * s3rver accepts only its fixed test credentials (`S3RVER` / `S3RVER`) and checks signatures, so
 * wrong credentials fail as they would on a real endpoint.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createRequire } from 'node:module';
import S3rver from 's3rver';

const require = createRequire(import.meta.url);
// s3rver's signature verification, reused for the requests we answer ourselves.
const S3OBJECT_ALLOWED_METADATA = (require('s3rver/lib/models/object') as { ALLOWED_METADATA: string[] }).ALLOWED_METADATA;
const s3rverAuthentication = require('s3rver/lib/middleware/authentication') as () => (
  ctx: unknown,
  next: () => Promise<void>,
) => Promise<void>;

export interface EmbeddedS3Options {
  /** Directory holding the buckets (created when absent). */
  directory: string;
  /** Address to listen on (default 127.0.0.1; the local cloud uses its bridge address). */
  address?: string;
  /** Port (default 0: a free port). */
  port?: number;
  /** Honour conditional writes (default true). `false` behaves like plain s3rver, to test fallbacks. */
  conditionalWrites?: boolean;
}

export interface EmbeddedS3 {
  endpoint: string;
  address: string;
  port: number;
  directory: string;
  region: string;
  /** s3rver's fixed credentials; local only. */
  credentials: { accessKeyId: string; secretAccessKey: string };
  stop(): Promise<void>;
}

export const EMBEDDED_CREDENTIALS = Object.freeze({ accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' });

export async function startEmbeddedS3(options: EmbeddedS3Options): Promise<EmbeddedS3> {
  await mkdir(options.directory, { recursive: true });
  const server = new S3rver({
    address: options.address ?? '127.0.0.1',
    port: options.port ?? 0,
    silent: true,
    directory: options.directory,
  });
  patchPutObject(server);
  silenceLogger(server);
  // Before the router (the last middleware), after s3rver's logging/XML/vhost handling.
  server.middleware.splice(server.middleware.length - 1, 0, fixesMiddleware(options.conditionalWrites ?? true));
  const { address, port } = await server.run();
  const host = address.includes(':') ? `[${address}]` : address;
  return {
    endpoint: `http://${host}:${port}`,
    address,
    port,
    directory: options.directory,
    region: 'us-east-1',
    credentials: { ...EMBEDDED_CREDENTIALS },
    async stop() {
      await server.close();
    },
  };
}

// --- Internal helpers ---

type Ctx = Parameters<S3rver['middleware'][number]>[0];

/** One promise chain per key: the conditional check and the write happen with no other request on that key in between. */
function keyedLock() {
  const tails = new Map<string, Promise<void>>();
  return async <T>(key: string, fn: () => Promise<T>): Promise<T> => {
    const prev = tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const tail = prev.then(() => mine);
    tails.set(key, tail);
    await prev;
    try {
      return await fn();
    } finally {
      release();
      if (tails.get(key) === tail) tails.delete(key);
    }
  };
}

function fixesMiddleware(conditionalWrites: boolean) {
  const lock = keyedLock();
  return async (ctx: Ctx, next: () => Promise<void>) => {
    const m = /^\/([^/]+)(?:\/(.*))?$/.exec(ctx.path);
    if (!m) return next();
    const bucket = decodeURIComponent(m[1]!);
    const key = m[2] ? decodeURIComponent(m[2]) : '';
    if (!key) {
      if (ctx.method === 'GET' && ctx.query['list-type'] === '2') return listObjectsV2(ctx, bucket);
      return next();
    }
    return lock(`${bucket}/${key}`, async () => {
      if (conditionalWrites && ctx.method === 'PUT' && ctx.query.uploadId === undefined && !ctx.get('x-amz-copy-source')) {
        const ifNoneMatch = ctx.get('if-none-match');
        const ifMatch = ctx.get('if-match');
        if (ifNoneMatch || ifMatch) {
          const etag = await ctx.store.getMetadata(bucket, key).then(
            (md) => md.etag,
            (e: NodeJS.ErrnoException) => {
              if (e.code === 'ENOENT') return null;
              throw e;
            },
          );
          if (ifNoneMatch === '*' && etag !== null)
            return s3ErrorBody(
              ctx,
              412,
              'PreconditionFailed',
              'At least one of the pre-conditions you specified did not hold',
              'If-None-Match',
            );
          if (ifMatch && etag === null) return s3ErrorBody(ctx, 404, 'NoSuchKey', 'The specified key does not exist.');
          if (ifMatch && unquote(ifMatch) !== unquote(etag!))
            return s3ErrorBody(ctx, 412, 'PreconditionFailed', 'At least one of the pre-conditions you specified did not hold', 'If-Match');
        }
      }
      await next();
    });
  };
}

async function listObjectsV2(ctx: Ctx, bucket: string) {
  // s3rver's own signature check (it reads ctx.params like its router would set them), then our listing.
  (ctx as Ctx & { params: Record<string, string> }).params = { bucket };
  await s3rverAuthentication()(ctx, async () => {
    if (!(await ctx.store.getBucket(bucket))) return s3ErrorBody(ctx, 404, 'NoSuchBucket', 'The specified bucket does not exist');
    const maxKeysRaw = ctx.query['max-keys'];
    const maxKeys = maxKeysRaw === undefined ? 1000 : Number(maxKeysRaw);
    if (!Number.isInteger(maxKeys) || maxKeys < 0)
      return s3ErrorBody(ctx, 400, 'InvalidArgument', 'Provided max-keys not an integer or within integer range');
    const prefix = ctx.query.prefix ?? '';
    const delimiter = ctx.query.delimiter ?? '';
    const token = ctx.query['continuation-token'];
    let startAfter = ctx.query['start-after'] ?? '';
    if (token) {
      const decoded = Buffer.from(token, 'base64url').toString('utf8');
      if (!decoded.startsWith('adt1:')) return s3ErrorBody(ctx, 400, 'InvalidArgument', 'The continuation token provided is incorrect');
      startAfter = decoded.slice(5);
    }
    const result =
      maxKeys === 0
        ? { objects: [], commonPrefixes: [], isTruncated: false }
        : await ctx.store.listObjects(bucket, { prefix, startAfter, maxKeys: Math.min(1000, maxKeys), delimiter });
    const last = result.objects[result.objects.length - 1];
    ctx.body = {
      ListBucketResult: {
        '@': { xmlns: 'http://doc.s3.amazonaws.com/2006-03-01/' },
        Name: bucket,
        Prefix: prefix,
        StartAfter: token ? undefined : startAfter || undefined,
        ContinuationToken: token || undefined,
        NextContinuationToken: result.isTruncated && last ? Buffer.from(`adt1:${last.key}`).toString('base64url') : undefined,
        KeyCount: result.objects.length + result.commonPrefixes.length,
        MaxKeys: maxKeys,
        Delimiter: delimiter || undefined,
        IsTruncated: result.isTruncated,
        Contents: result.objects.map((o) => ({
          Key: o.key,
          LastModified: o.lastModifiedDate.toISOString(),
          ETag: o.metadata.etag,
          Size: o.size,
          StorageClass: 'STANDARD',
        })),
        CommonPrefixes: result.commonPrefixes.map((p) => ({ Prefix: p })),
      },
    };
  });
}

function s3ErrorBody(ctx: Ctx, status: number, code: string, message: string, condition?: string) {
  ctx.status = status;
  ctx.type = 'application/xml';
  const cond = condition ? `<Condition>${condition}</Condition>` : '';
  ctx.body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message>${cond}</Error>`;
}

function unquote(etag: string): string {
  return etag.trim().replace(/^W\//, '').replace(/^"|"$/g, '');
}

/**
 * s3rver logs through winston and koa-logger even when silent (every request formats its lines);
 * the embedded server has nothing to log, so both become no-ops.
 */
function silenceLogger(server: S3rver) {
  const noop = () => {};
  const logger = {
    info: noop,
    warn: noop,
    error: noop,
    debug: noop,
    verbose: noop,
    log: noop,
    exceptions: { unhandle: noop },
    close: noop,
  };
  const app = server as unknown as { logger: unknown; context: { logger: unknown } };
  app.logger = app.context.logger = logger;
  server.middleware[0] = (_ctx, next) => next();
}

/** Replaces s3rver's putObject with one that resolves only when the object is on disk, and swaps it in atomically. */
function patchPutObject(server: S3rver) {
  const store = server.store;
  const knownDirs = new Set<string>();
  store.putObject = async (object) => {
    const objectPath = store.getResourcePath(object.bucket, object.key, 'object');
    const dir = dirname(objectPath);
    if (!knownDirs.has(dir)) {
      await mkdir(dir, { recursive: true });
      if (knownDirs.size > 10_000) knownDirs.clear();
      knownDirs.add(dir);
    }
    const tmp = `${objectPath}.tmp-${randomBytes(6).toString('hex')}`;
    try {
      let digest: string;
      let size: number;
      const small = await readSmall(object.content);
      if (small) {
        // Config values are small: one write instead of a stream pipeline.
        digest = createHash('md5').update(small).digest('hex');
        size = small.length;
        // Object, checksum and metadata files in parallel (the per-key lock keeps readers out meanwhile).
        await Promise.all([
          writeFile(tmp, small).then(() => rename(tmp, objectPath)),
          writeFile(store.getResourcePath(object.bucket, object.key, 'object.md5'), digest),
          writeFile(
            store.getResourcePath(object.bucket, object.key, 'metadata.json'),
            JSON.stringify(storedMetadata(object.metadata), null, 2),
          ),
        ]);
        return { size, md5: digest };
      } else {
        const md5 = createHash('md5');
        size = 0;
        await pipeline(
          object.content as NodeJS.ReadableStream,
          new Transform({
            transform(chunk: Buffer, _enc, cb) {
              md5.update(chunk);
              size += chunk.length;
              cb(null, chunk);
            },
          }),
          createWriteStream(tmp),
        );
        digest = md5.digest('hex');
      }
      await rename(tmp, objectPath);
      await store.putMetadata(object.bucket, object.key, object.metadata, digest);
      return { size, md5: digest };
    } catch (e) {
      knownDirs.delete(dir);
      await rm(tmp, { force: true });
      throw e;
    }
  };
}

const SMALL_BODY = 256 * 1024;

/** What s3rver keeps of a PUT's headers (its putMetadata rule): the allowed standard headers and x-amz-meta-*. */
function storedMetadata(metadata: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(metadata).filter(([k]) => S3OBJECT_ALLOWED_METADATA.includes(k) || k.startsWith('x-amz-meta-')));
}

/** The whole body when it is a Buffer or a request with a small Content-Length; otherwise null (stream it). */
async function readSmall(content: Buffer | NodeJS.ReadableStream): Promise<Buffer | null> {
  if (Buffer.isBuffer(content)) return content;
  const length = Number((content as { headers?: Record<string, string> }).headers?.['content-length'] ?? NaN);
  if (!(length <= SMALL_BODY)) return null;
  const chunks: Buffer[] = [];
  for await (const chunk of content as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}
