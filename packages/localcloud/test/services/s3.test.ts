/** The embedded S3 server (s3rver with our fixes) of the local cloud and the tests, on loopback, through the AWS SDK and s3cmd. */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, rm, writeFile, readFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { S3Client, ListObjectsV2Command, PutObjectCommand, GetObjectCommand, CreateBucketCommand } from '@aws-sdk/client-s3';
import { quietAwsSdk, rejects } from '@adt/test-utils';
import { startEmbeddedS3, type EmbeddedS3 } from '../../src/services/s3.ts';

quietAwsSdk();

const test = suite<{ s3: EmbeddedS3; dir: string; client: S3Client }>('embedded S3');

test.before(async (ctx) => {
  ctx.dir = await mkdtemp(join(tmpdir(), 'adt-embedded-'));
  ctx.s3 = await startEmbeddedS3({ directory: join(ctx.dir, 'data') });
  ctx.client = new S3Client({
    endpoint: ctx.s3.endpoint,
    region: ctx.s3.region,
    forcePathStyle: true,
    credentials: ctx.s3.credentials,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  await ctx.client.send(new CreateBucketCommand({ Bucket: 'adt-embedded' }));
});

test.after(async (ctx) => {
  ctx.client?.destroy();
  await ctx.s3?.stop();
  if (ctx.dir) await rm(ctx.dir, { recursive: true, force: true });
});

test('listens on loopback on a free port', ({ s3 }) => {
  assert.is(s3.address, '127.0.0.1');
  assert.ok(s3.port > 0);
  assert.is(s3.endpoint, `http://127.0.0.1:${s3.port}`);
});

test('paginates ListObjectsV2 with MaxKeys and continuation tokens (s3rver answered 500)', async ({ client }) => {
  for (let i = 0; i < 7; i++) await client.send(new PutObjectCommand({ Bucket: 'adt-embedded', Key: `page/${i}`, Body: String(i) }));
  const seen: string[] = [];
  let token: string | undefined;
  let pages = 0;
  do {
    const r = await client.send(
      new ListObjectsV2Command({ Bucket: 'adt-embedded', Prefix: 'page/', MaxKeys: 3, ContinuationToken: token }),
    );
    seen.push(...(r.Contents ?? []).map((o) => o.Key!));
    token = r.IsTruncated ? r.NextContinuationToken : undefined;
    pages++;
  } while (token && pages < 10);
  assert.is(pages, 3);
  assert.equal(
    seen,
    Array.from({ length: 7 }, (_, i) => `page/${i}`),
  );
});

test('rejects a forged continuation token', async ({ client }) => {
  const e = await rejects<{ $metadata: { httpStatusCode: number } }>(
    client.send(new ListObjectsV2Command({ Bucket: 'adt-embedded', ContinuationToken: 'bm90LW91cnM' })),
  );
  assert.is(e.$metadata.httpStatusCode, 400);
});

test('honours If-None-Match: * and If-Match like AWS S3', async ({ client }) => {
  await client.send(new PutObjectCommand({ Bucket: 'adt-embedded', Key: 'cond', Body: 'one', IfNoneMatch: '*' }));
  const status = async (p: Promise<unknown>) =>
    p.then(
      () => 200,
      (e) => e.$metadata.httpStatusCode as number,
    );
  assert.is(await status(client.send(new PutObjectCommand({ Bucket: 'adt-embedded', Key: 'cond', Body: 'two', IfNoneMatch: '*' }))), 412);
  assert.is(await status(client.send(new PutObjectCommand({ Bucket: 'adt-embedded', Key: 'cond', Body: 'two', IfMatch: '"0123"' }))), 412);
  assert.is(await status(client.send(new PutObjectCommand({ Bucket: 'adt-embedded', Key: 'absent', Body: 'x', IfMatch: '"0123"' }))), 404);
  const got = await client.send(new GetObjectCommand({ Bucket: 'adt-embedded', Key: 'cond' }));
  assert.is(await got.Body!.transformToString(), 'one');
  assert.is(
    await status(client.send(new PutObjectCommand({ Bucket: 'adt-embedded', Key: 'cond', Body: 'three', IfMatch: got.ETag }))),
    200,
  );
});

test('a read right after each write sees the whole object (no torn reads)', async ({ client }) => {
  for (let i = 0; i < 30; i++) {
    const body = `${i}:`.padEnd(64 * 1024, String(i % 10));
    await client.send(new PutObjectCommand({ Bucket: 'adt-embedded', Key: 'torn', Body: body }));
    const got = await client.send(new GetObjectCommand({ Bucket: 'adt-embedded', Key: 'torn' }));
    assert.is(await got.Body!.transformToString(), body);
  }
});

test('objects are plain S3: s3cmd reads what the SDK wrote, and the SDK reads what s3cmd wrote', async ({ s3, dir, client }) => {
  const cfg = join(dir, 's3cfg');
  // Credentials go in a 0600 config file, never on the command line.
  await writeFile(
    cfg,
    [
      '[default]',
      `access_key = ${s3.credentials.accessKeyId}`,
      `secret_key = ${s3.credentials.secretAccessKey}`,
      `host_base = 127.0.0.1:${s3.port}`,
      `host_bucket = 127.0.0.1:${s3.port}`,
      'use_https = False',
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  await chmod(cfg, 0o600);
  const s3cmd = (...args: string[]) => execa('s3cmd', ['-c', cfg, '--no-progress', ...args], { timeout: 30_000 });

  const record = { name: 'ws-1', role: 'webserver', at: '2026-11-24T00:00:00Z' };
  await client.send(new PutObjectCommand({ Bucket: 'adt-embedded', Key: 'webserverips/198.18.1.5', Body: JSON.stringify(record) }));
  const out = join(dir, 'got.json');
  await s3cmd('get', '--force', 's3://adt-embedded/webserverips/198.18.1.5', out);
  assert.equal(JSON.parse(await readFile(out, 'utf8')), record);

  const src = join(dir, 'from-s3cmd.json');
  await writeFile(src, JSON.stringify({ desired: 4 }));
  await s3cmd('put', src, 's3://adt-embedded/scaling/1/desired');
  const got = await client.send(new GetObjectCommand({ Bucket: 'adt-embedded', Key: 'scaling/1/desired' }));
  assert.equal(JSON.parse(await got.Body!.transformToString()), { desired: 4 });
  const ls = await s3cmd('ls', 's3://adt-embedded/webserverips/');
  assert.match(ls.stdout, /webserverips\/198\.18\.1\.5/);
});

test('stop closes the port', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'adt-embedded-stop-'));
  const s3 = await startEmbeddedS3({ directory: dir });
  await s3.stop();
  const r = await fetch(s3.endpoint).then(
    () => 'open',
    () => 'closed',
  );
  assert.is(r, 'closed');
  await rm(dir, { recursive: true, force: true });
});

test.run();
