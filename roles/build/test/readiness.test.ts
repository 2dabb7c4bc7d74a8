/**
 * How deploy waits for servers: @adt/fleet's waitReady against real local-cloud servers (cloud
 * `trd` on 198.19.36.0/24 + 198.19.37.0/24, in this process; its state under <tmp>/adt-test-trd, a
 * fixed place, so a run that died is cleaned up by the next one) and a real datastore (the embedded
 * S3 server on the cloud's private bridge, a ConfigStore over it). Each server's user-data reports
 * as a bootstrap does: it writes boot/<name>/<nnn>, boot/<name>/failed and ready/<role>/<name> to
 * the datastore (through signed links, with the stock image's curl). Progress comes from the
 * datastore; a failure from boot/<name>/failed or, before any bootstrap ran, from the cloud's
 * console (the user-data's exit code and output).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { isAdtError, pollUntil } from '@adt/core';
import { ConfigStore, keys } from '@adt/configstore';
import s3Driver from '@adt/configstore/drivers/s3';
import { booting, waitReady } from '@adt/fleet';
import { LocalCloud } from '@adt/localcloud';
import { startEmbeddedS3, type EmbeddedS3 } from '@adt/localcloud/services/s3';
import { serverName, type Server } from '@adt/providers';
import { cleanup, quietAwsSdk, rejects, setup } from '@adt/test-utils';

quietAwsSdk();
const BASE = join(tmpdir(), 'adt-test-trd');
const BUCKET = 'trd-ready-config';
const BUILD = 'r1';
const cloud = new LocalCloud({
  cloudId: 'trd',
  stateDir: join(BASE, 'cloud'),
  publicCidr: '198.19.36.0/24',
  privateCidr: '198.19.37.0/24',
});
const logHint = (role: string) => `the ${role}'s console (roles/build/ExecuteOn... -- tail /var/log/cloud-init-output.log)`;

interface Ctx {
  s3: EmbeddedS3;
  driver: ReturnType<typeof s3Driver>;
  store: ConfigStore;
  said: string[];
}
const test = suite<Ctx>('waiting for servers to be ready (@adt/fleet readiness, local cloud, embedded S3)');

setup(test, async (t) => {
  // A run that died left its servers in this fixed place: they go first.
  await cloud.teardown();
  await rm(BASE, { recursive: true, force: true });
  await cloud.ensureNetwork();
  // On the build machine's private address, where the servers reach the datastore (as the local cloud's own S3 is).
  t.s3 = await startEmbeddedS3({ directory: join(BASE, 's3'), address: cloud.buildMachine.privateIp });
  t.driver = s3Driver({ bucket: BUCKET, endpoint: t.s3.endpoint, region: t.s3.region, credentials: t.s3.credentials });
  t.store = new ConfigStore({ driver: t.driver, writeBudget: null });
  await t.store.ensureBucket();
});

test.before.each((t) => {
  t.said = [];
});

test.after(async (t) => {
  await cleanup('the readiness suite', [
    () => t.driver?.dispose?.(),
    () => t.s3?.stop(),
    () => cloud.teardown(),
    () => rm(BASE, { recursive: true, force: true }),
  ]);
});

// --- Internal helpers ---

/** A signed link to `key` of the datastore's bucket, for the server's curl (valid 15 min). */
function link(t: Ctx, method: 'GET' | 'PUT', key: string): Promise<string> {
  const command =
    method === 'GET' ? new GetObjectCommand({ Bucket: BUCKET, Key: key }) : new PutObjectCommand({ Bucket: BUCKET, Key: key });
  return getSignedUrl(t.driver.getInstance(), command, { expiresIn: 900 });
}

const json = (v: unknown) => `'${JSON.stringify(v).replace(/'/g, `'\\''`)}'`;

/** What a bootstrap's user-data does, as sh lines over the stock image's tools. */
const sh = {
  /** The shell functions the lines below use: a bounded PUT and a bounded wait for an object. */
  prelude: [
    'set -u',
    'log() { echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) [boot] $*"; }',
    'put() { curl -fsS --retry 5 --retry-connrefused --max-time 20 -X PUT -H \'Content-Type: application/json\' --data-binary "$2" "$1"; }',
    // Up to 2 min: the test writes the object when it saw what came before.
    'wait_for() { for i in $(seq 1 240); do curl -fsS --max-time 5 -o /dev/null "$1" && return 0; sleep 0.5; done; exit 9; }',
  ],
  async step(t: Ctx, name: string, n: number, step: string, seconds: number): Promise<string> {
    const url = await link(t, 'PUT', keys.bootStep(name, n).path);
    return `put '${url}' ${json({ at: new Date().toISOString(), step, seconds })} && log '${step}'`;
  },
};

/** Boots a server `name` of the test's build whose user-data runs `lines`. */
function boot(name: string, lines: string[]): Promise<Server> {
  const role = name.startsWith('db-') ? 'database' : 'webserver';
  return cloud.create({ name, role, buildId: BUILD, userData: ['#!/bin/sh', ...sh.prelude, ...lines, ''].join('\n') });
}

// ---

test('a server whose user-data fails before its bootstrap stops the wait: its name, the exit code and its log (the console)', async (t) => {
  const s = await boot(serverName({ role: 'webserver', buildId: BUILD }), [
    'log "user-data started"',
    'echo "curl: (22) The requested URL returned error: 403 (the role bundle\'s link)" >&2',
    'exit 22',
  ]);
  try {
    const e = await rejects(waitReady(t.store, cloud, [booting('webserver', s, 300)], { say: (l) => t.said.push(l), logHint }));
    assert.ok(isAdtError(e), String(e));
    assert.is(e.code, 'SERVER_FAILED', e.message);
    assert.ok(
      e.message.includes(`the webserver server ${s.name} stopped before it was ready: its user-data exited with code 22`),
      e.message,
    );
    assert.ok(e.message.includes('last step it finished: "(before its bootstrap)"'), e.message);
    assert.ok(e.message.includes("curl: (22) The requested URL returned error: 403 (the role bundle's link)"), e.message);
    assert.ok(e.message.includes('[boot] user-data started'), e.message);
    assert.ok(e.message.includes(logHint('webserver')), e.message);
  } finally {
    await cloud.destroy(s.id);
  }
});

test('a bootstrap that records boot/<name>/failed stops the wait with the recorded step, error and log', async (t) => {
  const name = serverName({ role: 'database', buildId: BUILD });
  const failure = {
    at: new Date().toISOString(),
    lastStep: 'installed mariadb-server',
    error: 'the datastore refused the key',
    // Only in the record (the console has none of it): the message must come from the datastore.
    log: 'Setting up mariadb-server (1:10.11.6-0+deb12u1) ...\nE: the recorded end of the bootstrap log',
  };
  const lines = [
    // Its last step is in the record only (a step's own write is best effort): the message must name the recorded one.
    await sh.step(t, name, 0, 'bootstrap started', 0.3),
    `put '${await link(t, 'PUT', keys.bootFailure(name).path)}' ${json(failure)}`,
    'exit 1',
  ];
  const s = await boot(name, lines);
  try {
    const e = await rejects(waitReady(t.store, cloud, [booting('database', s, 300)], { say: (l) => t.said.push(l), logHint }));
    assert.ok(isAdtError(e), String(e));
    assert.is(e.code, 'SERVER_FAILED', e.message);
    assert.ok(e.message.includes(`the database server ${s.name} stopped before it was ready: the datastore refused the key`), e.message);
    assert.ok(e.message.includes('last step it finished: "installed mariadb-server"'), e.message);
    assert.ok(e.message.includes('    E: the recorded end of the bootstrap log'), e.message);
    assert.ok(e.message.includes(logHint('database')), e.message);
    assert.ok(t.said.includes('      database: bootstrap started (0.3s)'), t.said.join('\n'));
  } finally {
    await cloud.destroy(s.id);
  }
});

test('a server that is never ready times out (READY_TIMEOUT), naming its last step and showing its log', async (t) => {
  const name = serverName({ role: 'database', buildId: BUILD });
  const lines = [
    await sh.step(t, name, 0, 'bootstrap started', 0.2),
    await sh.step(t, name, 1, 'waiting for the package mirror', 1.1),
    'log "still waiting for the package mirror"',
    // Never ready; the cloud ends it (destroy).
    'sleep 900',
  ];
  const s = await boot(name, lines);
  try {
    // Its steps are in the datastore before its (short) deadline starts: the timeout names the last one.
    await pollUntil(() => t.store.exists(keys.bootStep(name, 1)), { timeoutMs: 120_000, intervalMs: 200, what: 'the second step' });
    const t0 = Date.now();
    const e = await rejects(waitReady(t.store, cloud, [booting('database', s, 3)], { say: (l) => t.said.push(l), logHint }));
    assert.ok(isAdtError(e), String(e));
    assert.is(e.code, 'SERVER_TIMEOUT', e.message);
    assert.ok(e.message.includes(`the database server ${s.name} was not ready in time (READY_TIMEOUT)`), e.message);
    assert.ok(e.message.includes('last step it finished: "waiting for the package mirror"'), e.message);
    assert.ok(e.message.includes('[boot] still waiting for the package mirror'), 'the end of its console');
    assert.ok(Date.now() - t0 < 60_000, 'bounded by its deadline');
    assert.equal(t.said, ['      database: bootstrap started (0.2s)', '      database: waiting for the package mirror (1.1s)']);
  } finally {
    await cloud.destroy(s.id);
  }
});

test('steps written to boot/<name>/<nnn> are shown as they come; a ready server ends the wait', async (t) => {
  const name = serverName({ role: 'database', buildId: BUILD });
  // Each next step waits for the test to have shown the one before: shown as it came, not at the end.
  const lines = [
    await sh.step(t, name, 0, 'bootstrap started', 0.4),
    `wait_for '${await link(t, 'GET', 'test/shown-0')}'`,
    await sh.step(t, name, 1, 'mariadb running', 1.5),
    `wait_for '${await link(t, 'GET', 'test/shown-1')}'`,
    `put '${await link(t, 'PUT', keys.ready('database', name).path)}' ${json({ at: new Date().toISOString() })}`,
    'log "ready"',
    'sleep 900',
  ];
  const s = await boot(name, lines);
  try {
    const writes: Promise<void>[] = [];
    const say = (line: string) => {
      t.said.push(line);
      const n = ['bootstrap started', 'mariadb running'].findIndex((x) => line.includes(x));
      if (n >= 0) writes.push(t.store.put(`test/shown-${n}`, { at: new Date().toISOString() }));
    };
    let ticks = 0;
    const b = booting('database', s, 300);
    await waitReady(t.store, cloud, [b], { say, logHint, onTick: async () => void ticks++ });
    await Promise.all(writes);
    assert.equal(t.said, ['      database: bootstrap started (0.4s)', '      database: mariadb running (1.5s)']);
    assert.ok(b.readyAt, 'ready');
    assert.ok(ticks >= 3, `onTick ran on every poll (${ticks})`);
    // A server kept by a re-run: its earlier steps are not shown again, and its readiness ends the wait at once.
    t.said.length = 0;
    await waitReady(t.store, cloud, [booting('database', s, 300, true)], { say: (l) => t.said.push(l), logHint });
    assert.equal(t.said, []);
  } finally {
    await cloud.destroy(s.id);
  }
});

test.run();
