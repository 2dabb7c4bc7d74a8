/**
 * The Scaler's slot leases with the memory drivers and an injected clock: an autoscaler acts on its
 * own slot, never on a slot whose autoscaler has not started, takes over a dead one's slot after its
 * lease expires, and hands it back when that autoscaler claims it again.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ConfigStore, keys, type ScalingSettings } from '@adt/configstore';
import memoryDriver from '@adt/configstore/drivers/memory';
import memoryCompute from '@adt/providers/drivers/memory';
import memoryDns from '@adt/providers/drivers/memory-dns';
import { serverName } from '@adt/providers';
import { Scaler } from '../src/scaler.ts';

const settings: ScalingSettings = {
  autoscalers: 2,
  maxWebservers: 10,
  probeIntervalSeconds: 1,
  probeTimeoutSeconds: 1,
  failuresBeforeUnhealthy: 2,
  buildTimeoutSeconds: 300,
  drainSeconds: 0,
  leaseTtlSeconds: 10,
  dnsTtlSeconds: 5,
};

function world(images?: string[]) {
  let now = Date.parse('2026-11-25T00:00:00Z');
  const clock = () => now;
  const store = new ConfigStore({ driver: memoryDriver({ now: clock }), writeBudget: null });
  const compute = memoryCompute({ now: clock, images });
  const dns = memoryDns();
  void dns.ensureZone('p.test');
  const scaler = (slot: number) =>
    new Scaler({
      store,
      compute,
      dns,
      buildId: 'p1',
      host: 'www.p.test',
      settings,
      now: clock,
      self: { name: serverName({ role: 'autoscaler', buildId: 'p1', slot }), slot },
      probe: async () => true,
      launch: ({ name, image }) =>
        compute.create({ name, role: 'webserver', buildId: 'p1', userData: '#!/bin/sh\n', ...(image ? { image } : {}) }),
      log: () => {},
    });
  return { store, compute, dns, scaler, advance: (ms: number) => (now += ms) };
}

const test = suite('autoscaler slot leases');

test('an autoscaler acts on its own slot only while the other has not started', async () => {
  const w = world();
  await w.store.put(keys.desiredWebservers(1), 1);
  await w.store.put(keys.desiredWebservers(2), 1);
  const a1 = w.scaler(1);
  const r = await a1.tick();
  assert.equal(r.slots, [1], 'slot 2 is not taken: its autoscaler never held it');
  assert.equal(
    r.actions.map((a) => `${a.slot}:${a.type}`),
    ['1:create'],
  );
});

test("a dead autoscaler's slot is taken over after its lease expires, and handed back when it returns", async () => {
  const w = world();
  await w.store.put(keys.desiredWebservers(1), 1);
  await w.store.put(keys.desiredWebservers(2), 1);
  const a1 = w.scaler(1);
  const a2 = w.scaler(2);
  assert.equal((await a1.tick()).slots, [1]);
  assert.equal((await a2.tick()).slots, [2]);
  // a2 stops (dead, its lease not given back). Before the TTL, a1 keeps off slot 2.
  w.advance(5_000);
  assert.equal((await a1.tick()).slots, [1]);
  w.advance(7_000);
  assert.equal((await a1.tick()).slots, [1, 2], 'taken over after the lease expired');
  const events = await Promise.all((await w.store.listOf(keys.events)).map((k) => w.store.get(keys.events.key(k))));
  assert.ok(events.some((e) => e?.action === 'take-over' && e.slot === 2));
  // a2 is back (a new process): it claims its slot, a1 hands it back, a2 takes it.
  const a2again = w.scaler(2);
  assert.equal((await a2again.tick()).slots, [], 'held by a1 for now: claimed');
  assert.ok(await w.store.exists(keys.slotClaim(2)));
  assert.equal((await a1.tick()).slots, [1], 'handed back');
  assert.equal((await a2again.tick()).slots, [2]);
  assert.not.ok(await w.store.exists(keys.slotClaim(2)), 'claim cleared');
  assert.equal((await a1.tick()).slots, [1], 'a1 does not take it again while a2 renews');
});

test('new webservers are built from the configured image; an image the cloud refuses falls back to the OS image', async () => {
  const w = world(['snap-1']);
  await w.store.put(keys.desiredWebservers(1), 2);
  await w.store.put(keys.webserverImage, { image: 'snap-1', from: 'ws-p1-s1-abcd', at: '2026-11-25T00:00:00Z' });
  const a1 = w.scaler(1);
  await a1.tick();
  assert.equal(
    [...w.compute.servers.values()].map((s) => s.image),
    ['snap-1', 'snap-1'],
  );
  await w.store.put(keys.desiredWebservers(1), 3);
  await w.store.put(keys.webserverImage, { image: 'snap-gone', from: 'ws-p1-s1-abcd', at: '2026-11-25T00:00:00Z' });
  await a1.tick();
  assert.equal(
    [...w.compute.servers.values()].map((s) => s.image),
    ['snap-1', 'snap-1', null],
  );
  const events = await Promise.all((await w.store.listOf(keys.events)).map((k) => w.store.get(keys.events.key(k))));
  assert.ok(
    events.some((e) => e?.action === 'image-refused' && /snap-gone/.test(e.reason)),
    'the refusal is an event',
  );
  assert.ok(events.some((e) => e?.action === 'create' && /from image snap-1/.test(e.reason)));
});

test.run();
