/** Registering and forgetting a server, against the memory driver. */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import memoryDriver from '../src/drivers/memory.ts';
import { ConfigStore, forgetServer, keys, registerServer, type Registration } from '../src/index.ts';
import { rejects } from '@adt/test-utils';

const store = () => new ConfigStore({ driver: memoryDriver(), writeBudget: null });
const ws = { name: 'adt-dev1-webserver-1', role: 'webserver', privateIp: '198.18.1.11', publicIp: '198.18.0.11' };

const register = suite('registerServer');

register('a webserver registers by its private address, then by its public one', async () => {
  const s = store();
  const before = Date.now();
  await registerServer(s, ws);
  assert.equal(await s.list(''), ['webserverips/198.18.1.11', 'webserverpublicips/198.18.0.11']);
  for (const k of [keys.webserverIps.key(ws.privateIp), keys.webserverPublicIps.key(ws.publicIp)]) {
    const r = (await s.get(k)) as Registration;
    assert.equal({ ...r, at: undefined }, { ...ws, at: undefined }, k.path);
    assert.ok(Date.parse(r.at) >= before - 1000 && Date.parse(r.at) <= Date.now(), r.at);
  }
  assert.equal(await s.listOf(keys.webserverIps), ['198.18.1.11']);
});

register('the database, an autoscaler and the auth server each register by their private address in their own family', async () => {
  const s = store();
  await registerServer(s, { name: 'adt-dev1-database-1', role: 'database', privateIp: '198.18.1.31', publicIp: '198.18.0.31' });
  await registerServer(s, { name: 'adt-dev1-autoscaler-1', role: 'autoscaler', privateIp: '198.18.1.21', publicIp: '198.18.0.21' });
  await registerServer(s, { name: 'adt-dev1-auth-1', role: 'auth', privateIp: '198.18.1.41', publicIp: '198.18.0.41' });
  assert.equal((await s.list('')).sort(), ['authip/198.18.1.41', 'autoscalerips/198.18.1.21', 'databaseip/198.18.1.31']);
  assert.equal(await s.get(keys.databaseIps.key('198.18.1.31')), {
    name: 'adt-dev1-database-1',
    role: 'database',
    privateIp: '198.18.1.31',
    publicIp: '198.18.0.31',
    at: ((await s.get(keys.databaseIps.key('198.18.1.31'))) as Registration).at,
  });
});

register('registering again replaces the registration (a re-run bootstrap)', async () => {
  const s = store();
  await registerServer(s, ws);
  await registerServer(s, { ...ws, name: 'adt-dev1-webserver-2' });
  assert.is(((await s.get(keys.webserverIps.key(ws.privateIp))) as Registration).name, 'adt-dev1-webserver-2');
  assert.is((await s.list('')).length, 2);
});

register('a role that does not register, or a missing address, is refused before anything is written', async () => {
  const s = store();
  await rejects(registerServer(s, { name: 'build', role: 'build', privateIp: '198.18.0.1' }), { code: 'INVALID_VALUE', exitCode: 2 });
  await rejects(registerServer(s, { name: 'x', role: 'toString', privateIp: '198.18.0.1' }), { code: 'INVALID_VALUE', exitCode: 2 });
  await rejects(registerServer(s, { ...ws, publicIp: null }), { code: 'INVALID_VALUE', exitCode: 2 });
  await rejects(registerServer(s, { name: 'db', role: 'database' }), { code: 'INVALID_VALUE', exitCode: 2 });
  await rejects(registerServer(s, { ...ws, privateIp: 'not-an-ip' }), { code: 'INVALID_KEY', exitCode: 2 });
  assert.equal(await s.list(''), []);
});

// ---

const forget = suite('forgetServer');

forget('a webserver is forgotten: both registrations and its readiness', async () => {
  const s = store();
  await registerServer(s, ws);
  await s.put(keys.ready('webserver', ws.name), { at: new Date().toISOString(), steps: {} });
  await s.put(keys.webserverIps.key('198.18.1.12'), { name: 'other', role: 'webserver', at: new Date().toISOString() });
  await forgetServer(s, ws);
  assert.equal(await s.list(''), ['webserverips/198.18.1.12'], "another server's registration stays");
});

forget('every family is cleared, whatever role the server registered as', async () => {
  const s = store();
  const at = new Date().toISOString();
  const ip = '198.18.1.50';
  for (const family of [keys.webserverIps, keys.autoscalerIps, keys.databaseIps, keys.authIps])
    await s.put(family.key(ip), { name: 'srv', role: 'any', privateIp: ip, at });
  await s.put(keys.webserverPublicIps.key('198.18.0.50'), { name: 'srv', role: 'any', publicIp: '198.18.0.50', at });
  await s.put(keys.ready('autoscaler', 'srv'), { at, steps: {} });
  await s.put(keys.buildMachineIps.key(ip), { name: 'build', role: 'build', at });
  await forgetServer(s, { name: 'srv', role: 'autoscaler', privateIp: ip, publicIp: '198.18.0.50' });
  assert.equal(await s.list(''), [`buildmachineip/${ip}`], 'the build machine is not a server of the fleet');
});

forget('an autoscaler and an auth server are forgotten too (autoscalerips/, authip/)', async () => {
  const s = store();
  const a = { name: 'adt-dev1-autoscaler-1', role: 'autoscaler', privateIp: '198.18.1.21', publicIp: '198.18.0.21' };
  const h = { name: 'adt-dev1-auth-1', role: 'auth', privateIp: '198.18.1.41', publicIp: '198.18.0.41' };
  await registerServer(s, a);
  await registerServer(s, h);
  await forgetServer(s, a);
  assert.equal(await s.list(''), ['authip/198.18.1.41']);
  await forgetServer(s, h);
  assert.equal(await s.list(''), []);
});

forget('a server without addresses (never booted) loses its readiness only; absent keys are no error', async () => {
  const s = store();
  await s.put(keys.ready('webserver', ws.name), { at: new Date().toISOString(), steps: {} });
  await forgetServer(s, { name: ws.name, role: 'webserver', privateIp: null, publicIp: null });
  assert.equal(await s.list(''), []);
  await forgetServer(s, ws);
});

register.run();
forget.run();
