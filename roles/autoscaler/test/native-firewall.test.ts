/**
 * The autoscaler keeps the cloud's firewall current where its rules name the servers' addresses
 * (no private network the cloud knows): a webserver it adds is let into the database, one it
 * destroys is let out; with a private network, nothing is applied.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ConfigStore, keys, type NativeFirewall } from '@adt/configstore';
import memoryDriver from '@adt/configstore/drivers/memory';
import memoryCompute, { MemoryNativeFirewall } from '@adt/providers/drivers/memory';
import { serverName, type NativeFirewallProvider, type Role } from '@adt/providers';
import { NativeFollower } from '../src/native-firewall.ts';

const settings: NativeFirewall = {
  buildMachine: ['198.18.9.1'],
  privateCidr: null,
  webMode: 'open',
  dbPort: 3306,
  http: true,
  roles: ['webserver', 'database', 'autoscaler'],
};

/** A firewall that counts its applies, per role. */
function counted() {
  const inner = new MemoryNativeFirewall();
  const applies: Role[] = [];
  const firewall: NativeFirewallProvider = {
    name: 'memory',
    apply: async (b, r, rules) => (applies.push(r), inner.apply(b, r, rules)),
    get: (b, r) => inner.get(b, r),
    remove: (b, r) => inner.remove(b, r),
  };
  return { inner, applies, firewall };
}

async function world(s: NativeFirewall | null) {
  const store = new ConfigStore({ driver: memoryDriver(), writeBudget: null });
  if (s) await store.put(keys.nativeFirewall, s);
  const compute = memoryCompute();
  const f = counted();
  const make = (role: Role, slot?: number) =>
    compute.create({ name: serverName({ role, buildId: 'n1', ...(slot ? { slot } : {}) }), role, buildId: 'n1', userData: '#!/bin/sh\n' });
  await make('database');
  await make('autoscaler', 1);
  let now = 0;
  const follower = new NativeFollower({
    store,
    compute,
    firewall: f.firewall,
    buildId: 'n1',
    log: () => {},
    now: () => now,
    refreshMs: 60_000,
  });
  const dbSources = async () => ((await f.inner.get('n1', 'database')) ?? []).find((r) => r.port === 3306)?.sources ?? [];
  return { store, compute, follower, make, dbSources, advance: (ms: number) => (now += ms), ...f };
}

test('a webserver added is let into the database, one destroyed let out; nothing changed, nothing applied', async () => {
  const w = await world(settings);
  const first = await w.follower.follow();
  assert.equal(first.sort(), ['autoscaler', 'database', 'webserver'], 'the first follow applies every role once');
  const before = await w.dbSources();
  assert.not.ok(before.length === 0, 'the database port is open to the fleet (its autoscaler) before any webserver');
  assert.equal(await w.follower.follow(), [], 'nothing changed: nothing applied');

  const web = await w.make('webserver', 1);
  const added = await w.follower.follow();
  assert.ok(added.includes('database'), `the database's rules are applied again (${added.join(', ')})`);
  assert.equal((await w.dbSources()).sort(), [...before, `${web.privateIp}/32`, `${web.publicIp}/32`].sort());

  await w.compute.destroy(web.id);
  assert.equal((await w.follower.follow()).sort(), added.sort(), 'the same roles follow the webserver out');
  assert.equal(await w.dbSources(), before, 'the destroyed webserver is let out');
  assert.equal(w.applies.length, 3 + 2 * added.length, 'an apply per changed role, no more');
  assert.equal(await w.follower.follow(), []);
});

test('every role again after refreshMs (older rules of another writer put right); a list without the database is not applied', async () => {
  const w = await world(settings);
  await w.follower.follow();
  // Another writer applied rules from an older list: the database's without anyone.
  await w.inner.apply('n1', 'database', []);
  assert.equal(await w.follower.follow(), [], 'unchanged for this autoscaler');
  w.advance(60_000);
  assert.equal((await w.follower.follow()).sort(), ['autoscaler', 'database', 'webserver'], 'refreshed');
  assert.ok((await w.dbSources()).length > 0, "the database's rules are back");
  const db = (await w.compute.list({ role: 'database' }))[0]!;
  await w.compute.destroy(db.id);
  await w.make('webserver', 1);
  const before = w.applies.length;
  assert.equal(await w.follower.follow(), [], 'the cloud listed no database: nothing applied');
  assert.is(w.applies.length, before);
});

test('with a private network the cloud knows, or before the deploy wrote its settings, nothing is applied', async () => {
  const vpc = await world({ ...settings, privateCidr: '198.19.0.0/24' });
  await vpc.make('webserver', 1);
  assert.equal(await vpc.follower.follow(), []);
  const none = await world(null);
  assert.equal(await none.follower.follow(), []);
  assert.equal([...vpc.applies, ...none.applies], []);
});

test.run();
