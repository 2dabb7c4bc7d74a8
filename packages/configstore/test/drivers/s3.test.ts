import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import s3Driver from '../../src/drivers/s3.ts';
import { ConfigStore } from '../../src/index.ts';
import { rejects, throws } from '@adt/test-utils';
import { testConfigStore } from '../fixtures/conformance.ts';
import { s3Backend, uniqueBucket, type TestBackend } from '../fixtures/s3.ts';

const target = process.env.ADT_TEST_S3_ENDPOINT ? `endpoint ${process.env.ADT_TEST_S3_ENDPOINT}` : 'embedded S3 (s3rver)';

testConfigStore(`s3 driver on ${target}`, async () => {
  const backend = await s3Backend();
  return {
    make: (options = {}) => backend.store(options),
    peer(store) {
      const d = store.driver;
      return new ConfigStore({
        driver: s3Driver({ bucket: d.bucket, endpoint: backend.endpoint, region: backend.region, credentials: backend.credentials }),
        writeBudget: null,
      });
    },
    close: () => backend.close(),
  };
});

// ---

const fallback = suite('s3 driver on a backend that ignores conditional writes');
let plain: TestBackend;
fallback.before(async () => {
  plain = await s3Backend({ conditionalWrites: false });
});
fallback.after(async () => plain?.close());

fallback('the store detects that conditional writes are ignored', async () => {
  const s = await plain.store();
  assert.is(await s.conditionalWrites(), false);
  assert.equal(await s.list(''), [], 'the probe object is cleaned up');
});

fallback('20 concurrent contenders still get exactly one holder (settle mode)', async () => {
  const s0 = await plain.store({ leaseSettleMs: 800 });
  const peers = Array.from(
    { length: 20 },
    () =>
      new ConfigStore({
        driver: s3Driver({ bucket: s0.bucket, endpoint: plain.endpoint, credentials: plain.credentials }),
        writeBudget: null,
        leaseSettleMs: 800,
      }),
  );
  const results = await Promise.all(peers.map((s, i) => s.acquire('contended', 60, `c${i}`)));
  const winners = results.filter(Boolean);
  assert.is(winners.length, 1);
  assert.is(winners[0]!.mode, 'settle');
  assert.is((await s0.holder('contended'))?.owner, winners[0]!.owner);
  await peers[results.indexOf(winners[0]!)]!.release(winners[0]!);
  assert.is(await s0.holder('contended'), null);
});

fallback.run();

// ---

const detect = suite('s3 driver on a backend with conditional writes');
let cond: TestBackend;
detect.before(async () => {
  cond = await s3Backend();
});
detect.after(async () => cond?.close());

detect('the store detects conditional writes and leases use them', async () => {
  const s = await cond.store();
  assert.is(await s.conditionalWrites(), true);
  const lease = await s.acquire('x', 60, 'me');
  assert.is(lease?.mode, 'conditional');
});

detect.run();

// ---

const errors = suite('s3 driver errors');
let backend: TestBackend;
errors.before(async () => {
  backend = await s3Backend();
});
errors.after(async () => backend?.close());

errors('an unknown access key gives AUTH_FAILED', async () => {
  const s = await backend.store();
  const bad = new ConfigStore({
    driver: s3Driver({
      bucket: s.bucket,
      endpoint: backend.endpoint,
      credentials: { accessKeyId: 'NOT-A-KEY', secretAccessKey: 'nope' },
      maxAttempts: 1,
    }),
  });
  for (const op of [
    () => bad.get('k'),
    () => bad.put('k', 1),
    () => bad.list(''),
    () => bad.exists('k'),
    () => bad.age('k'),
    () => bad.ensureBucket(),
  ]) {
    const e = await rejects(op(), 'AUTH_FAILED');
    assert.not.ok(e.message.includes('nope'), 'the secret is not in the message');
  }
});

errors('a missing bucket gives NO_SUCH_BUCKET for every operation', async () => {
  const s = new ConfigStore({
    driver: s3Driver({ bucket: uniqueBucket('missing'), endpoint: backend.endpoint, credentials: backend.credentials }),
  });
  for (const op of [
    () => s.get('k'),
    () => s.put('k', 1),
    () => s.list(''),
    () => s.exists('k'),
    () => s.age('k'),
    () => s.deletePrefix('a/'),
  ]) {
    const e = await rejects(op(), 'NO_SUCH_BUCKET');
    assert.match(e.message, /does not exist/);
  }
});

errors('an unreachable endpoint gives UNREACHABLE after retries', async () => {
  const closed = createServer();
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
  const port = (closed.address() as AddressInfo).port;
  await new Promise((r) => closed.close(r));
  const s = new ConfigStore({
    driver: s3Driver({ bucket: 'adt-unreachable', endpoint: `http://127.0.0.1:${port}`, credentials: backend.credentials, maxAttempts: 2 }),
  });
  const e = await rejects(s.get('k'), 'UNREACHABLE');
  assert.match(e.message, new RegExp(`127\\.0\\.0\\.1:${port}`));
});

errors('an invalid bucket name is refused before any request', () => {
  for (const bad of ['UPPER', 'a', 'has_underscore', '-dash', '198.18.0.1', 'x'.repeat(64)]) {
    throws(() => s3Driver({ bucket: bad }), { code: 'INVALID_BUCKET_NAME', exitCode: 2 }, bad);
  }
});

/** A real HTTP proxy in front of the S3 server that answers the first `failures` requests with `status`. */
async function faultyProxy(
  upstream: string,
  failures: number,
  status = 503,
): Promise<{ url: string; seen: () => number; close(): Promise<void> }> {
  const up = new URL(upstream);
  let count = 0;
  const server: Server = createServer((req, res) => {
    count++;
    if (count <= failures) {
      req.resume();
      res.writeHead(status, { 'content-type': 'application/xml' });
      const code = status === 503 ? 'SlowDown' : 'InternalError';
      res.end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>injected</Message></Error>`);
      return;
    }
    const proxied = httpRequest({ host: up.hostname, port: up.port, method: req.method, path: req.url, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    req.pipe(proxied);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen: () => count,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

errors('transient 5xx answers are retried with backoff and the operation succeeds', async () => {
  const s = await backend.store();
  const proxy = await faultyProxy(backend.endpoint, 2, 503);
  try {
    const through = new ConfigStore({
      driver: s3Driver({ bucket: s.bucket, endpoint: proxy.url, credentials: backend.credentials, maxAttempts: 4 }),
      writeBudget: null,
    });
    await through.put('retried', { ok: 1 });
    assert.equal(await s.get('retried'), { ok: 1 });
    assert.ok(proxy.seen() >= 3);
  } finally {
    await proxy.close();
  }
});

errors('a persistent 500 is reported as BACKEND with the status, after the configured attempts', async () => {
  const s = await backend.store();
  const proxy = await faultyProxy(backend.endpoint, 1000, 500);
  try {
    const through = new ConfigStore({
      driver: s3Driver({ bucket: s.bucket, endpoint: proxy.url, credentials: backend.credentials, maxAttempts: 3 }),
    });
    const e = await rejects(through.put('k', 1), 'BACKEND');
    assert.match(e.message, /HTTP 500/);
    assert.is(proxy.seen(), 3);
  } finally {
    await proxy.close();
  }
});

errors.run();
