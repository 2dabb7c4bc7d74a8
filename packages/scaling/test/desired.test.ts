import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { rejects } from '@adt/test-utils';
import { ConfigStore, keys, type ScalingSettings } from '@adt/configstore';
import memoryDriver from '@adt/configstore/drivers/memory';
import { describeSplit, setDesiredWebservers } from '../src/index.ts';

const SETTINGS: ScalingSettings = {
  autoscalers: 3,
  maxWebservers: 10,
  probeIntervalSeconds: 5,
  probeTimeoutSeconds: 3,
  failuresBeforeUnhealthy: 2,
  buildTimeoutSeconds: 300,
  drainSeconds: 10,
  leaseTtlSeconds: 30,
  dnsTtlSeconds: 60,
};

const store = () => new ConfigStore({ driver: memoryDriver(), writeBudget: null });

async function usageError(p: Promise<unknown>) {
  return (await rejects(p, { code: 'USAGE', exitCode: 2 })).message;
}

const desired = suite('setDesiredWebservers');

desired('the total is split between the autoscalers, each share in its own key', async () => {
  const s = store();
  await s.put(keys.scaling, SETTINGS);
  assert.equal(await setDesiredWebservers(s, '7', 'AdjustScaling'), { total: 7, split: [3, 2, 2], intervalSeconds: 5 });
  assert.equal(
    [await s.get(keys.desiredWebservers(1)), await s.get(keys.desiredWebservers(2)), await s.get(keys.desiredWebservers(3))],
    [3, 2, 2],
  );
});

desired('0 and the maximum are allowed; spaces around the number too', async () => {
  const s = store();
  await s.put(keys.scaling, SETTINGS);
  assert.equal((await setDesiredWebservers(s, ' 10 ', 'ManuallyScale')).split, [4, 3, 3]);
  assert.equal((await setDesiredWebservers(s, '0', 'ManuallyScale')).split, [0, 0, 0]);
});

desired('a count that is not a whole number, or above the maximum, is a usage error naming the command, and nothing changes', async () => {
  const s = store();
  await s.put(keys.scaling, SETTINGS);
  await setDesiredWebservers(s, '4', 'ManuallyScale');
  for (const bad of ['x', '-1', '2.5', ''])
    assert.match(
      await usageError(setDesiredWebservers(s, bad, 'ManuallyScale')),
      `ManuallyScale: "${bad}" is not a number of webservers: give a whole number from 0 to 10`,
    );
  assert.match(
    await usageError(setDesiredWebservers(s, '11', 'AdjustScaling')),
    'AdjustScaling: 11 webservers is above the configured maximum of 10',
  );
  assert.equal(
    [await s.get(keys.desiredWebservers(1)), await s.get(keys.desiredWebservers(2)), await s.get(keys.desiredWebservers(3))],
    [2, 1, 1],
  );
});

desired('outside production mode (no scaling settings) it says so and writes nothing', async () => {
  const s = store();
  assert.match(
    await usageError(setDesiredWebservers(s, '3', 'AdjustScaling')),
    'AdjustScaling: this deployment is not in production mode (no config/scaling in its datastore)',
  );
  assert.is(await s.get(keys.desiredWebservers(1)), null);
});

// ---

const describe = suite('describeSplit');

describe("names each autoscaler's share", () => {
  assert.is(describeSplit([3, 2, 2]), 'autoscaler 1: 3, autoscaler 2: 2, autoscaler 3: 2');
  assert.is(describeSplit([0]), 'autoscaler 1: 0');
});

desired.run();
describe.run();
