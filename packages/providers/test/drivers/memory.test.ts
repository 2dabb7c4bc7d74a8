import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { rejects } from '@adt/test-utils';
import memoryDriver, { MemoryDatabases, MemoryNativeFirewall } from '../../src/drivers/memory.ts';
import { serverName } from '../../src/naming.ts';

const test = suite('memory compute and firewall (for unit tests of the layers above)');

test('creates, lists by exact build and role, and destroys', async () => {
  const c = memoryDriver();
  const a = await c.create({
    name: serverName({ role: 'webserver', buildId: 'b1' }),
    role: 'webserver',
    buildId: 'b1',
    userData: '#!/bin/sh\n',
  });
  const db = await c.create({
    name: serverName({ role: 'database', buildId: 'b1' }),
    role: 'database',
    buildId: 'b1',
    userData: '#!/bin/sh\n',
  });
  await c.create({ name: serverName({ role: 'webserver', buildId: 'b12' }), role: 'webserver', buildId: 'b12', userData: '#!/bin/sh\n' });
  assert.is((await c.list({ buildId: 'b1' })).length, 2);
  assert.is((await c.list({ buildId: 'b1', role: 'webserver' })).length, 1);
  assert.is((await c.waitUntilRunning(a.id)).state, 'running');
  await c.destroy(a.id);
  assert.is(await c.get(a.id), null);
  await c.destroy(a.id);
  await rejects(c.create({ name: db.name, role: 'database', buildId: 'b1', userData: '#!/bin/sh\n' }), 'NAME_TAKEN');
  await rejects(
    c.create({ name: serverName({ role: 'webserver', buildId: 'b1' }), role: 'webserver', buildId: 'b1', userData: 'echo' }),
    'BAD_USER_DATA',
  );
});

test('the firewall keeps rules per build and role', async () => {
  const f = new MemoryNativeFirewall();
  await f.apply('b1', 'database', [{ protocol: 'tcp', port: 3306, sources: ['198.18.1.0/24'] }]);
  assert.equal(await f.get('b1', 'database'), [{ protocol: 'tcp', port: 3306, sources: ['198.18.1.0/24'] }]);
  assert.is(await f.get('b1', 'webserver'), null);
  await f.remove('b1', 'database');
  assert.is(await f.get('b1', 'database'), null);
});

test('managed databases: created once per name, allow-lists validated (never the whole internet)', async () => {
  const m = new MemoryDatabases();
  await rejects(m.create({ name: 'adt-b1-db', buildId: 'b1', engine: 'mysql', allow: ['0.0.0.0/0'] }), { exitCode: 2 });
  assert.is((await m.list()).length, 0);
  const a = await m.create({ name: 'adt-b1-db', buildId: 'b1', engine: 'mysql', allow: ['198.18.1.0/24'] });
  assert.is((await m.create({ name: 'adt-b1-db', buildId: 'b1', engine: 'mysql', allow: ['198.18.1.5'] })).id, a.id);
  assert.equal(await m.getAllowList(a.id), ['198.18.1.5']);
  assert.is((await m.waitUntilOnline(a.id)).state, 'online');
  await m.destroy(a.id);
  assert.is(await m.get(a.id), null);
});

test.run();
