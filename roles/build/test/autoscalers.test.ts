/**
 * Two autoscalers sharing a total of 4 webservers (cloud `tp2`, 198.19.44.0/24 + 198.19.45.0/24):
 * never more than 4 webservers exist at any sampled moment; when one autoscaler dies (its server
 * destroyed, so its lease is never given back), the other takes its slot over once the lease
 * expires and keeps acting on it.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { sleep } from '@adt/core';
import { parseServerName } from '@adt/providers';
import { cleanup, setup } from '@adt/test-utils';
import { aRecords, helper, localCloudOf, productionFleet, removeFleet, until, zx, type Fleet } from './_fleet.ts';

const test = suite<{ f: Fleet }>('two autoscalers: a split total, and a take-over');

setup(test, async (ctx) => {
  ctx.f = await productionFleet('tp2', 44, ['WEBSERVERS=4', 'AUTOSCALERS=2', 'MAX_WEBSERVERS=8', 'READY_TIMEOUT=600']);
});
test.after(async (ctx) => cleanup('the tp2 fleet', [() => removeFleet(ctx.f)]));

test("4 webservers split 2 + 2; never more than 4; the survivor takes the dead autoscaler's slot over", async ({ f }) => {
  // The cloud as its administrator sees it: to count what exists, and to kill an autoscaler as a crash would.
  const cloud = localCloudOf(f.file);
  const counts: number[] = [];
  let sampling = true;
  const sampler = (async () => {
    for (let i = 0; i < 12_000 && sampling; i++) {
      counts.push((await cloud.list({ role: 'webserver' })).length);
      await sleep(250);
    }
  })();
  try {
    const r = await zx('deploy.mjs', ['--config', f.file]);
    assert.is(r.exitCode, 0, r.stderr);
    const slots = async () => (await cloud.list({ role: 'webserver' })).map((s) => parseServerName(s.name)?.slot).sort();
    assert.equal(await slots(), [1, 1, 2, 2]);
    assert.is((await aRecords(f)).length, 4);
    // Both autoscalers act: a scale to 6 (3 + 3) lands on both slots.
    const six = await helper('AdjustScaling', ['--config', f.file, '6']);
    assert.is(six.exitCode, 0, six.stderr);
    assert.ok(await until(async () => (await aRecords(f)).length === 6, 600_000), 'six in DNS');
    assert.equal(await slots(), [1, 1, 1, 2, 2, 2]);
    const four = await helper('AdjustScaling', ['--config', f.file, '4']);
    assert.is(four.exitCode, 0, four.stderr);
    assert.ok(await until(async () => (await cloud.list({ role: 'webserver' })).length === 4, 120_000), 'back to four');

    // Autoscaler 1 dies without giving its lease back.
    const dead = (await cloud.list({ role: 'autoscaler' })).find((s) => parseServerName(s.name)?.slot === 1);
    assert.ok(dead, 'the autoscaler of slot 1');
    await cloud.destroy(dead!.id);
    assert.is(await cloud.get(dead!.id), null, 'it is gone');
    // Slot 1 now changes: only a live autoscaler acting on slot 1 can follow it.
    const two = await helper('AdjustScaling', ['--config', f.file, '2']);
    assert.is(two.exitCode, 0, two.stderr);
    assert.ok(
      await until(async () => JSON.stringify(await slots()) === JSON.stringify([1, 2]), 180_000),
      `slot 1 followed by the survivor (slots now ${(await slots()).join(',')})`,
    );
    const status = await helper('status', ['--config', f.file, '--json']);
    assert.is(status.exitCode, 0, status.stderr);
    const st = JSON.parse(status.stdout) as {
      events: { action: string; slot: number; autoscaler: string }[];
    };
    const takeOvers = st.events.filter((e) => e.action === 'take-over');
    // Only the dead one's slot, only by the survivor (no grab of a slot whose autoscaler was still starting).
    assert.equal(
      takeOvers.map((e) => `slot ${e.slot} by autoscaler ${parseServerName(e.autoscaler)?.slot}`),
      ['slot 1 by autoscaler 2'],
    );
    assert.is((await aRecords(f)).length, 2);
  } finally {
    sampling = false;
    await sampler;
  }
  // Scaling to 6 was asked for on purpose; apart from that window the fleet never exceeds what was asked.
  assert.ok(Math.max(...counts) <= 6, `at most 6 at once (max seen ${Math.max(...counts)})`);
  const beforeSix = counts.slice(
    0,
    counts.findIndex((c) => c > 4),
  );
  assert.ok(
    beforeSix.every((c) => c <= 4),
    'never more than 4 while 4 were wanted',
  );
});

test.run();
