import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import memoryDriver from '../../src/drivers/memory.ts';
import { ConfigStore, SPACES_WRITE_BUDGET } from '../../src/index.ts';
import { rejects } from '@adt/test-utils';
import { testConfigStore } from '../fixtures/conformance.ts';

testConfigStore('memory driver', async () => ({
  async make(options = {}) {
    return new ConfigStore({ driver: memoryDriver(), writeBudget: null, ...options });
  },
  peer(store) {
    return new ConfigStore({ driver: store.driver, writeBudget: null });
  },
  async close() {},
}));

// ---

const budget = suite('write budget');

budget('a write past the per-object budget is refused before it reaches the backend', async () => {
  const driver = memoryDriver();
  const s = new ConfigStore({ driver, writeBudget: { writes: 3, perSeconds: 300 } });
  await s.put('k', 1);
  await s.put('k', 2);
  await s.put('k', 3);
  await rejects(s.put('k', 4), 'WRITE_BUDGET_EXCEEDED');
  assert.is(await s.get('k'), 3, 'the refused write did not happen');
  await s.put('other', 1);
});

budget("the default budget is DigitalOcean Spaces' (5 writes per object per 5 minutes)", () => {
  assert.equal(SPACES_WRITE_BUDGET, { writes: 5, perSeconds: 300 });
  const s = new ConfigStore({ driver: memoryDriver() });
  assert.is(s.minLeaseTtlSeconds(), 150);
});

budget('lease TTLs shorter than the budget allows are refused with the minimum in the message', async () => {
  const s = new ConfigStore({ driver: memoryDriver() });
  const e = await rejects(s.acquire('x', 30, 'me'), { code: 'INVALID_VALUE', exitCode: 2 });
  assert.match(e.message, /150-86400/);
});

budget('a lease renewed at half its minimum TTL for a whole window stays within the budget', async () => {
  let now = 1_000_000;
  const driver = memoryDriver({ now: () => now });
  const s = new ConfigStore({ driver, writeBudget: SPACES_WRITE_BUDGET });
  const ttl = s.minLeaseTtlSeconds();
  const realNow = Date.now;
  // The budget counts with the process clock; drive both clocks together.
  let fake = realNow();
  Date.now = () => fake;
  try {
    let lease = await s.acquire('as-slot-1', ttl, 'as-1');
    assert.ok(lease);
    for (let t = 0; t < 3 * SPACES_WRITE_BUDGET.perSeconds; t += ttl / 2) {
      now += (ttl / 2) * 1000;
      fake += (ttl / 2) * 1000;
      lease = await s.renew(lease!);
    }
    await s.release(lease!);
  } finally {
    Date.now = realNow;
  }
});

budget.run();

// ---

const required = suite('require and requireAll');

required('a present key is returned; an absent one is MISSING_KEY naming the key and its writer', async () => {
  const s = new ConfigStore({ driver: memoryDriver({ bucket: 'b1' }), writeBudget: null });
  await s.put('config/site', { siteUrl: 'https://x.test/' });
  assert.equal(await s.require('config/site'), { siteUrl: 'https://x.test/' });
  const e = await rejects(s.require('config/auth', 'the build, with WEB_FIREWALL=auth'), 'MISSING_KEY');
  assert.match(e.message, /config\/auth is missing from the datastore \(b1\): the build, with WEB_FIREWALL=auth writes it/);
});

required('requireAll names every missing key in one error', async () => {
  const s = new ConfigStore({ driver: memoryDriver(), writeBudget: null });
  await s.put('config/a', 1);
  const [a] = await s.requireAll([{ path: 'config/a' }] as const);
  assert.is(a, 1);
  const e = await rejects(s.requireAll([{ path: 'config/a' }, { path: 'config/b' }, { path: 'config/c' }]), 'MISSING_KEY');
  assert.match(e.message, /config\/b, config\/c are missing/);
});

required.run();
