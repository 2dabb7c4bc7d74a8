import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { quietAwsSdk, S3RVER_CREDENTIALS, testS3Client, withTempDir, writeS3cmdConfig } from '../src/index.ts';

const VAR = 'AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED';

/** An HTTP server that records each request and answers 200, as S3 does to a PutObject. */
async function recorder(): Promise<{ server: Server; endpoint: string; seen: { url: string; headers: IncomingHttpHeaders }[] }> {
  const seen: { url: string; headers: IncomingHttpHeaders }[] = [];
  const server = createServer((req, res) => {
    seen.push({ url: req.url ?? '', headers: req.headers });
    req.resume();
    req.on('end', () => res.writeHead(200, { etag: '"0"' }).end());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

const quiet = suite<{ saved: string | undefined }>('quietAwsSdk');

quiet.before.each((ctx) => {
  ctx.saved = process.env[VAR];
});

quiet.after.each((ctx) => {
  if (ctx.saved === undefined) delete process.env[VAR];
  else process.env[VAR] = ctx.saved;
});

quiet("turns the SDK's Node-version notice off when nothing says otherwise", () => {
  delete process.env[VAR];
  quietAwsSdk();
  assert.is(process.env[VAR], 'true');
});

quiet('keeps a value already set', () => {
  process.env[VAR] = 'false';
  quietAwsSdk();
  assert.is(process.env[VAR], 'false');
});

quiet.run();

// ---

const client = suite('testS3Client');

client("defaults to us-east-1 and s3rver's credentials, and takes others", async () => {
  const c = testS3Client({ endpoint: 'http://127.0.0.1:9' });
  assert.is(await c.config.region(), 'us-east-1');
  const { accessKeyId, secretAccessKey } = await c.config.credentials();
  assert.equal({ accessKeyId, secretAccessKey }, S3RVER_CREDENTIALS);
  c.destroy();
  const other = testS3Client({
    endpoint: 'http://127.0.0.1:9',
    region: 'eu-west-1',
    credentials: { accessKeyId: 'a', secretAccessKey: 'b' },
    maxAttempts: 1,
  });
  assert.is(await other.config.region(), 'eu-west-1');
  assert.is((await other.config.credentials()).accessKeyId, 'a');
  assert.is(await other.config.maxAttempts(), 1);
  other.destroy();
});

client('addresses buckets by path and sends no checksum the API does not require', async () => {
  const { server, endpoint, seen } = await recorder();
  const c = testS3Client({ endpoint });
  try {
    await c.send(new PutObjectCommand({ Bucket: 'adt-bucket', Key: 'a/b.txt', Body: 'hello' }));
    assert.is(seen.length, 1);
    assert.is(new URL(seen[0]!.url, endpoint).pathname, '/adt-bucket/a/b.txt', 'path-style: the bucket is in the path, not the host');
    assert.is(seen[0]!.headers.host, new URL(endpoint).host);
    const checksums = Object.keys(seen[0]!.headers).filter((h) => h.startsWith('x-amz-checksum-') || h === 'x-amz-sdk-checksum-algorithm');
    assert.equal(checksums, [], 'no CRC checksum headers (requestChecksumCalculation: WHEN_REQUIRED)');
    assert.is(await c.config.requestChecksumCalculation(), 'WHEN_REQUIRED');
    assert.is(await c.config.responseChecksumValidation(), 'WHEN_REQUIRED');
    assert.is(process.env[VAR] !== undefined, true, 'the SDK is quiet');
  } finally {
    c.destroy();
    await new Promise((r) => server.close(r));
  }
});

client.run();

// ---

const s3cmd = suite('writeS3cmdConfig');

s3cmd('writes a private s3cmd config for the endpoint, path-style, http or https as the endpoint says', () =>
  withTempDir('unit', async (dir) => {
    const cfg = join(dir, 's3cfg');
    await writeS3cmdConfig(cfg, { endpoint: 'http://127.0.0.1:4568', credentials: { accessKeyId: 'AK', secretAccessKey: 'SK' } });
    assert.is((await stat(cfg)).mode & 0o777, 0o600);
    assert.is(
      await readFile(cfg, 'utf8'),
      [
        '[default]',
        'access_key = AK',
        'secret_key = SK',
        'host_base = 127.0.0.1:4568',
        'host_bucket = 127.0.0.1:4568',
        'use_https = False',
        '',
      ].join('\n'),
    );
    await writeS3cmdConfig(cfg, { endpoint: 'https://s3.example.test' });
    const text = await readFile(cfg, 'utf8');
    assert.match(text, /^access_key = S3RVER$/m);
    assert.match(text, /^host_base = s3\.example\.test$/m);
    assert.match(text, /^use_https = True$/m);
  }),
);

s3cmd.run();
