/** The local cloud's HTTP API and the driver that calls it, over real HTTP on loopback. */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { freePort } from '@adt/core';
import { serveLocalApi, type LocalApi } from '../src/local-api.ts';
import localRemoteDriver from '../src/drivers/local-remote.ts';
import memoryDriver from '../src/drivers/memory.ts';
import { serverName } from '../src/naming.ts';
import type { ComputeProvider } from '../src/types.ts';

const TOKEN = 'x'.repeat(40);

async function rejects(p: Promise<unknown>, re: RegExp) {
  try {
    await p;
  } catch (e) {
    assert.match((e as Error).message, re);
    return;
  }
  assert.unreachable(`expected a rejection matching ${re}`);
}
const test = suite<{ api: LocalApi; backend: ComputeProvider; remote: ComputeProvider }>(
  'local cloud API (HTTP) and the local-remote driver',
);

test.before(async (ctx) => {
  ctx.backend = memoryDriver();
  ctx.api = await serveLocalApi({ compute: ctx.backend, address: '127.0.0.1', port: await freePort(), token: TOKEN, buildId: 'p1' });
  ctx.remote = localRemoteDriver({ url: ctx.api.url, token: TOKEN });
});
test.after(async (ctx) => ctx.api?.close());

test('a webserver is created, listed, fetched and destroyed through the API', async ({ remote, backend }) => {
  const name = serverName({ role: 'webserver', buildId: 'p1', slot: 2 });
  const s = await remote.create({ name, role: 'webserver', buildId: 'p1', userData: '#!/bin/sh\n' });
  assert.is(s.name, name);
  assert.ok(await backend.get(s.id), 'it exists in the cloud behind the API');
  await backend.create({
    name: serverName({ role: 'webserver', buildId: 'other' }),
    role: 'webserver',
    buildId: 'other',
    userData: '#!/bin/sh\n',
  });
  assert.equal(
    (await remote.list({ role: 'webserver' })).map((x) => x.name),
    [name],
    "only this build's servers",
  );
  assert.is((await remote.waitUntilRunning(s.id, { timeoutMs: 5000 })).id, s.id);
  await remote.destroy(s.id);
  assert.is(await remote.get(s.id), null);
  await remote.destroy(s.id); // absent: not an error
});

test('the API refuses other roles, other builds, and anyone without the token', async ({ api, remote, backend }) => {
  await rejects(
    remote.create({ name: serverName({ role: 'database', buildId: 'p1' }), role: 'database', buildId: 'p1', userData: '#!/bin/sh\n' }),
    /HTTP 403 forbidden: role "database"/,
  );
  await rejects(
    remote.create({ name: serverName({ role: 'webserver', buildId: 'p2' }), role: 'webserver', buildId: 'p2', userData: '#!/bin/sh\n' }),
    /HTTP 403/,
  );
  const db = await backend.create({
    name: serverName({ role: 'database', buildId: 'p1' }),
    role: 'database',
    buildId: 'p1',
    userData: '#!/bin/sh\n',
  });
  await rejects(remote.destroy(db.id), /may not be destroyed/);
  assert.ok(await backend.get(db.id), 'still there');
  const wrong = localRemoteDriver({ url: api.url, token: 'y'.repeat(40) });
  await rejects(wrong.list(), /AUTH_FAILED|HTTP 401/);
  const raw = await fetch(`${api.url}/v1/servers`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` }, body: 'not json' });
  assert.is(raw.status, 400);
  assert.is(((await raw.json()) as { id: string }).id, 'bad_request');
});

test('an API that does not answer is retried, then reported clearly (bounded)', async () => {
  const dead = localRemoteDriver({ url: `http://127.0.0.1:${await freePort()}`, token: TOKEN, timeoutMs: 1000 });
  const t0 = Date.now();
  await rejects(dead.list(), /UNREACHABLE|local cloud API/);
  assert.ok(Date.now() - t0 < 20_000);
});

test.run();
